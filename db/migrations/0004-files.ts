import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    -- Uploaded files live on disk under a generated name; this row says who may read them.
    CREATE TABLE files (
      id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      storage_name  text NOT NULL UNIQUE,
      purpose       text NOT NULL CHECK (purpose IN ('message', 'avatar')),
      mime_type     text NOT NULL,
      size          bigint NOT NULL,
      original_name text NOT NULL,
      uploaded_by   uuid NOT NULL REFERENCES users (id),
      created_at    timestamptz(3) NOT NULL DEFAULT now()
    );
    ALTER TABLE messages ADD COLUMN file_id uuid REFERENCES files (id);
    CREATE INDEX messages_file ON messages (file_id) WHERE file_id IS NOT NULL;
  `.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE messages DROP COLUMN file_id; DROP TABLE files;`.execute(db)
}
