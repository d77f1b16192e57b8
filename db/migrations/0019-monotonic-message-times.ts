import { type Kysely, sql } from 'kysely'

// From here on a message's created_at never decreases with seq within its conversation (the insert trigger takes
// the later of now() and the conversation's last activity; search relies on it). Messages written before could
// be out of that order by the milliseconds between two writers' transactions: each such message takes the time
// of the latest message before it.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    UPDATE messages m SET created_at = f.at, updated_at = greatest(m.updated_at, f.at)
    FROM (SELECT id, max(created_at) OVER (PARTITION BY conversation_id ORDER BY seq) AS at FROM messages) f
    WHERE m.id = f.id AND f.at > m.created_at
  `.execute(db)
}
