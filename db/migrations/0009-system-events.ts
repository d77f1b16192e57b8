import { type Kysely, sql } from 'kysely'

// A system message said what happened in words only, with display names baked in; `system_event` says it by ids
// ({action, actor_id, user_ids?, name?, role?}), so clients render it with the names they know now. Earlier
// system messages keep their words only (null here).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE messages ADD COLUMN system_event jsonb`.execute(db)
}
