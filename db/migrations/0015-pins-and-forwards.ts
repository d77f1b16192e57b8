import { type Kysely, sql } from 'kysely'

// Pins and forwarded copies (issue 14).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE messages
      ADD COLUMN pinned_at timestamptz(3),
      ADD COLUMN pinned_by uuid REFERENCES users (id),
      -- A forwarded copy says whose message it was and when it was first sent; never where it came from.
      ADD COLUMN forwarded_sender_id uuid REFERENCES users (id),
      ADD COLUMN forwarded_created_at timestamptz(3);
    CREATE INDEX messages_pins ON messages (conversation_id, pinned_at DESC) WHERE pinned_at IS NOT NULL;
  `.execute(db)
}
