import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE EXTENSION IF NOT EXISTS pg_trgm;

    CREATE TABLE users (
      id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      username      text NOT NULL CHECK (username ~ '^[A-Za-z0-9_]{3,32}$'),
      email         text,
      display_name  text NOT NULL,
      password_hash text NOT NULL,
      avatar_url    text,
      last_seen     timestamptz(3),
      created_at    timestamptz(3) NOT NULL DEFAULT now(),
      updated_at    timestamptz(3) NOT NULL DEFAULT now(),
      deleted_at    timestamptz(3)
    );
    -- Usernames and emails stay reserved after a soft delete: old messages still name their sender.
    CREATE UNIQUE INDEX users_username_key ON users (lower(username));
    CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;
    CREATE INDEX users_search_username ON users USING gin (lower(username) gin_trgm_ops) WHERE deleted_at IS NULL;
    CREATE INDEX users_search_display_name ON users USING gin (lower(display_name) gin_trgm_ops) WHERE deleted_at IS NULL;

    CREATE TABLE refresh_tokens (
      id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      family_id   uuid NOT NULL,
      token_hash  text NOT NULL UNIQUE,
      expires_at  timestamptz(3) NOT NULL,
      created_at  timestamptz(3) NOT NULL DEFAULT now(),
      used_at     timestamptz(3),
      revoked_at  timestamptz(3)
    );
    CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
    CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id) WHERE revoked_at IS NULL;

    CREATE TABLE conversations (
      id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      is_group    boolean NOT NULL,
      name        text CHECK (char_length(name) BETWEEN 1 AND 255),
      avatar_url  text,
      created_by  uuid NOT NULL REFERENCES users (id),
      -- "<smaller user id>:<larger user id>" for direct conversations, so the pair is unique.
      direct_key  text UNIQUE,
      last_seq    bigint NOT NULL DEFAULT 0,
      created_at  timestamptz(3) NOT NULL DEFAULT now(),
      updated_at  timestamptz(3) NOT NULL DEFAULT now(),
      CHECK (is_group = (direct_key IS NULL))
    );

    CREATE INDEX conversations_activity ON conversations (updated_at DESC, id DESC);

    CREATE TABLE participants (
      conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
      user_id         uuid NOT NULL REFERENCES users (id),
      role            text NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
      joined_at       timestamptz(3) NOT NULL DEFAULT now(),
      -- Everything up to last_read_seq is read; everything up to cleared_seq is hidden from this member.
      last_read_seq   bigint NOT NULL DEFAULT 0,
      cleared_seq     bigint NOT NULL DEFAULT 0,
      PRIMARY KEY (conversation_id, user_id)
    );
    CREATE INDEX participants_user ON participants (user_id);

    CREATE TABLE messages (
      id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
      sender_id       uuid NOT NULL REFERENCES users (id),
      seq             bigint NOT NULL,
      message_type    text NOT NULL CHECK (message_type IN ('text', 'image', 'video', 'file', 'system')),
      content         text CHECK (char_length(content) <= 5000),
      file_url        text,
      file_name       text,
      file_size       bigint,
      mime_type       text,
      reply_to_id     uuid REFERENCES messages (id),
      client_id       text,
      is_edited       boolean NOT NULL DEFAULT false,
      is_deleted      boolean NOT NULL DEFAULT false,
      created_at      timestamptz(3) NOT NULL DEFAULT now(),
      updated_at      timestamptz(3) NOT NULL DEFAULT now(),
      UNIQUE (conversation_id, seq)
    );
    CREATE UNIQUE INDEX messages_client_id ON messages (sender_id, client_id) WHERE client_id IS NOT NULL;

    -- One row each time a member's read pointer moves forward: a message was read by a user
    -- at the read_at of the first row whose seq reaches it.
    CREATE TABLE read_receipts (
      conversation_id uuid NOT NULL,
      user_id         uuid NOT NULL,
      seq             bigint NOT NULL,
      message_id      uuid NOT NULL REFERENCES messages (id),
      read_at         timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (conversation_id, user_id, seq),
      FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE
    );

    CREATE TABLE conversation_events (
      conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
      seq             bigint NOT NULL,
      type            text NOT NULL,
      payload         jsonb NOT NULL,
      created_at      timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (conversation_id, seq)
    );
  `.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE conversation_events, read_receipts, messages, participants, conversations, refresh_tokens, users`.execute(db)
}
