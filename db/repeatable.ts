import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { type Kysely, sql } from 'kysely'

// The SQL the database runs on its own (triggers/*.sql: functions and triggers, each file idempotent) is
// applied as repeatable scripts, as Flyway does: after the versioned migrations, each script whose text changed
// since it was last applied is run again, and so is each script after it. Versioned migrations never read these files, so what a migration did
// stays what it did; a script is free to name any column the migrations have made.
// Order matters where one script calls another's functions at creation (SQL-language bodies are checked then).
export const SCRIPTS = ['conversation-events', 'messages', 'reactions', 'threads', 'participants', 'read-receipts', 'conversations', 'presence', 'users', 'event-replay', 'outgoing'] as const

const checksum = (text: string) => createHash('sha256').update(text).digest('hex')

/** Applies every changed script in one transaction; instances starting together take turns on a lock. */
export async function applyRepeatable(db: Kysely<any>): Promise<string[]> {
  const scripts = await Promise.all(
    SCRIPTS.map(async (name) => {
      const text = await readFile(new URL(`../triggers/${name}.sql`, import.meta.url), 'utf8')
      return { name, text, checksum: checksum(text) }
    }),
  )
  return db.transaction().execute(async (trx) => {
    // migrateToLatest already holds parley_migrations; this lock is the one an instance of the previous release
    // takes, which may start beside this one during an upgrade.
    await sql`SELECT pg_advisory_xact_lock(hashtext('parley_repeatable'))`.execute(trx)
    await sql`CREATE TABLE IF NOT EXISTS parley_repeatable (
      name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz(3) NOT NULL DEFAULT now())`.execute(trx)
    const applied = new Map(
      (await sql<{ name: string; checksum: string }>`SELECT name, checksum FROM parley_repeatable`.execute(trx)).rows.map((r) => [r.name, r.checksum]),
    )
    // A changed script runs again with every script after it: a later one may build on what it drops and
    // makes again (a view on a function, dropped with it).
    const first = scripts.findIndex((s) => applied.get(s.name) !== s.checksum)
    const changed = first < 0 ? [] : scripts.slice(first)
    for (const s of changed) {
      await sql.raw(s.text).execute(trx)
      await sql`INSERT INTO parley_repeatable (name, checksum) VALUES (${s.name}, ${s.checksum})
        ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now()`.execute(trx)
    }
    return changed.map((s) => s.name)
  })
}
