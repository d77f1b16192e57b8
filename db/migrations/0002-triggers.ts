import { readFile } from 'node:fs/promises'
import { type Kysely, sql } from 'kysely'

// The trigger SQL lives in triggers/, one file per table; every file is idempotent
// (CREATE OR REPLACE, DROP TRIGGER IF EXISTS), so a later migration that changes one re-applies it;
// a file for a table added later is applied by that table's migration.
export const TRIGGER_FILES = ['conversation-events', 'messages', 'participants', 'read-receipts', 'conversations']

export async function applyTriggers(db: Kysely<any>, files = TRIGGER_FILES): Promise<void> {
  for (const name of files) {
    const text = await readFile(new URL(`../../triggers/${name}.sql`, import.meta.url), 'utf8')
    await sql.raw(text).execute(db)
  }
}

export async function up(db: Kysely<any>): Promise<void> {
  await applyTriggers(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP FUNCTION parley_log_event, parley_next_seq, parley_actor, parley_iso, parley_message_json CASCADE`.execute(db)
}
