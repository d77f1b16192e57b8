import { type Kysely, sql } from 'kysely'

// Files leave the instance's disk, so that every instance can serve every file (issue 13).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    -- FILE_STORAGE=postgres: a file's bytes as 256 KiB rows, written in the transaction that writes its files row
    -- (the key is deferred for that: the chunks come first, the row once its size and type are known), and
    -- deleted with it. Media is already compressed: stored out of line as it is, without trying again.
    CREATE TABLE file_chunks (
      storage_name text NOT NULL REFERENCES files (storage_name) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
      n            integer NOT NULL CHECK (n >= 0),
      data         bytea NOT NULL,
      PRIMARY KEY (storage_name, n)
    );
    ALTER TABLE file_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

    -- FILE_STORAGE=s3: objects that may be in the bucket with no files row, because they are being uploaded
    -- (until expires_at, past the upload's deadline) or deleted. Whatever is left here past expires_at (an
    -- instance died) is deleted from the bucket by the next sweep.
    CREATE TABLE file_objects_pending (
      storage_name text PRIMARY KEY,
      expires_at   timestamptz NOT NULL
    );
    CREATE INDEX file_objects_pending_expiry ON file_objects_pending (expires_at);
  `.execute(db)
}
