import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely'
import * as schema from './migrations/0001-schema.ts'
import * as triggers from './migrations/0002-triggers.ts'
import * as presence from './migrations/0003-presence.ts'
import * as files from './migrations/0004-files.ts'
import * as notifyTime from './migrations/0005-notify-time.ts'

// Listed here rather than read from the folder, so the set of migrations is fixed at build time.
const migrations: Record<string, Migration> = {
  '0001-schema': schema,
  '0002-triggers': triggers,
  '0003-presence': presence,
  '0004-files': files,
  '0005-notify-time': notifyTime,
}

const provider: MigrationProvider = { getMigrations: async () => migrations }

export async function migrateToLatest(db: Kysely<any>): Promise<void> {
  const migrator = new Migrator({ db, provider })
  const { error, results } = await migrator.migrateToLatest()
  const failed = results?.find((r) => r.status === 'Error')
  if (error || failed) {
    throw new Error(`Migration ${failed?.migrationName ?? ''} failed: ${(error as Error | undefined)?.message ?? 'unknown error'}`)
  }
}
