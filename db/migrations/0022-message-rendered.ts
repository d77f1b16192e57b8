import { type Kysely, sql } from 'kysely'

// messages.rendered: the API's Message as JSON text, kept on the row by triggers/messages.sql (written on every
// insert and update of the row, and on a reply's when its quoted message is edited or deleted), so that a read
// (a replay, a page of history, an answer) copies it instead of building it again: building it was most of what
// a replayed event cost the database. The script fills it for the rows already there.
// The index finds a message's replies, whose copies quote it.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE messages ADD COLUMN rendered text;
    CREATE INDEX messages_reply_to ON messages (reply_to_id) WHERE reply_to_id IS NOT NULL;
  `.execute(db)
}
