import { Logger, runMigrations as migrateJobQueue } from 'graphile-worker'
import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely'
import pg from 'pg'
import { type DB, poolOf } from '../src/database.ts'
import { applyRepeatable } from './repeatable.ts'
import * as schema from './migrations/0001-schema.ts'
import * as triggers from './migrations/0002-triggers.ts'
import * as presence from './migrations/0003-presence.ts'
import * as files from './migrations/0004-files.ts'
import * as notifyTime from './migrations/0005-notify-time.ts'
import * as eventKeys from './migrations/0006-event-keys.ts'
import * as sessions from './migrations/0007-sessions.ts'
import * as uploadQuota from './migrations/0008-upload-quota.ts'
import * as systemEvents from './migrations/0009-system-events.ts'
import * as activityIndex from './migrations/0010-activity-index.ts'
import * as rateLimits from './migrations/0011-rate-limits.ts'
import * as fileChunks from './migrations/0012-file-chunks.ts'
import * as reactionsAndEdits from './migrations/0013-reactions-and-edits.ts'
import * as threadsAndMentions from './migrations/0014-threads-and-mentions.ts'
import * as pinsAndForwards from './migrations/0015-pins-and-forwards.ts'
import * as search from './migrations/0016-search.ts'
import * as filePreviews from './migrations/0017-file-previews.ts'
import * as blocksAndSettings from './migrations/0018-blocks-and-settings.ts'
import * as monotonicMessageTimes from './migrations/0019-monotonic-message-times.ts'
import * as webhooksAndPush from './migrations/0020-webhooks-and-push.ts'
import * as outgoingFlag from './migrations/0021-outgoing-flag.ts'
import * as messageRendered from './migrations/0022-message-rendered.ts'

// Listed here rather than read from the folder, so the set of migrations is fixed at build time.
const migrations: Record<string, Migration> = {
  '0001-schema': schema,
  '0002-triggers': triggers,
  '0003-presence': presence,
  '0004-files': files,
  '0005-notify-time': notifyTime,
  '0006-event-keys': eventKeys,
  '0007-sessions': sessions,
  '0008-upload-quota': uploadQuota,
  '0009-system-events': systemEvents,
  '0010-activity-index': activityIndex,
  '0011-rate-limits': rateLimits,
  '0012-file-chunks': fileChunks,
  '0013-reactions-and-edits': reactionsAndEdits,
  '0014-threads-and-mentions': threadsAndMentions,
  '0015-pins-and-forwards': pinsAndForwards,
  '0016-search': search,
  '0017-file-previews': filePreviews,
  '0018-blocks-and-settings': blocksAndSettings,
  '0019-monotonic-message-times': monotonicMessageTimes,
  '0020-webhooks-and-push': webhooksAndPush,
  '0021-outgoing-flag': outgoingFlag,
  '0022-message-rendered': messageRendered,
}

const provider: MigrationProvider = { getMigrations: async () => migrations }

/**
 * The versioned migrations, then graphile-worker's own (its schema, graphile_worker, versioned by itself: the job
 * queue of webhooks and Web Push), then the repeatable scripts (triggers/*.sql) that changed, which add its jobs.
 */
export async function migrateToLatest(db: Kysely<any>): Promise<void> {
  const pgPool = poolOf(db as DB)
  if (!pgPool) throw new Error('migrateToLatest: the database must come from createDatabase (the job queue migrates through its pool)')
  // Instances starting together on one database take turns here, for the whole of it: Kysely's own lock covers
  // only its migrations, and what it does before taking that lock (reading every table's columns, the job
  // queue's included) fails if another instance's job-queue migration swaps a table underneath. The lock is held
  // by a connection of its own, not from the pool, which may have one connection only.
  const lock = new pg.Client(pgPool.options)
  await lock.connect()
  try {
    await lock.query(`SELECT pg_advisory_lock(hashtext('${MIGRATION_LOCK}'))`)
    await migrateVersioned(db)
    await migrateJobQueue({ pgPool, logger: quietLogger })
    await applyRepeatable(db)
  } finally {
    await lock.end()
  }
}

/** The advisory lock (a `hashtext` key) that one migrating instance holds. */
export const MIGRATION_LOCK = 'parley_migrations'

async function migrateVersioned(db: Kysely<any>): Promise<void> {
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest()
  const failed = results?.find((r) => r.status === 'Error')
  if (error || failed) {
    const what = failed ? `Migration ${failed.migrationName}` : 'Migrating'
    throw new Error(`${what} failed: ${(error as Error | undefined)?.message ?? 'unknown error'}`)
  }
}

// graphile-worker says what it migrates at info level; a migration that fails throws.
const quietLogger = new Logger(() => () => {})
