import { type Kysely, sql } from 'kysely'

// Threads and mentions (issue 14).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    -- A reply in a thread names its root; the root counts its replies (triggers/threads.sql).
    ALTER TABLE messages
      ADD COLUMN thread_id uuid REFERENCES messages (id),
      ADD COLUMN thread_reply_count integer NOT NULL DEFAULT 0,
      ADD COLUMN thread_last_reply_at timestamptz(3),
      -- The members a message names as @username, as of its last send or edit.
      ADD COLUMN mentions uuid[] NOT NULL DEFAULT '{}';
    CREATE INDEX messages_thread ON messages (thread_id, seq) WHERE thread_id IS NOT NULL;
  `.execute(db)
}
