import { type Kysely, sql } from 'kysely'

// Reactions and edit history (issue 14).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    -- Who reacted with what. The truth; messages.reactions is its summary, kept by triggers/reactions.sql.
    -- created_at at microseconds: the summary lists emoji in order of first use.
    CREATE TABLE reactions (
      message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
      emoji      text NOT NULL,
      user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      PRIMARY KEY (message_id, emoji, user_id)
    );
    CREATE INDEX reactions_user ON reactions (user_id);

    -- [{emoji, count, user_ids}] in order of each emoji's first use: a page of history reads it with the row,
    -- no join and no aggregate per message.
    ALTER TABLE messages ADD COLUMN reactions jsonb NOT NULL DEFAULT '[]';

    -- Each edit keeps the content it replaced; edited_at is when it was replaced.
    CREATE TABLE message_edits (
      id         bigserial PRIMARY KEY,
      message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
      content    text,
      edited_at  timestamptz(3) NOT NULL
    );
    CREATE INDEX message_edits_message ON message_edits (message_id, id);
  `.execute(db)
}
