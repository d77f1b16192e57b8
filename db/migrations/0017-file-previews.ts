import { type Kysely, sql } from 'kysely'

// Image previews (issue 15, point 7).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    -- A preview is a file of its own (its bytes in the same storage), made from one image at upload and deleted
    -- with it: the database removes it with its source, whichever path removes that.
    ALTER TABLE files
      DROP CONSTRAINT files_purpose_check,
      ADD CONSTRAINT files_purpose_check CHECK (purpose IN ('message', 'avatar', 'preview')),
      ADD COLUMN preview_of uuid REFERENCES files (id) ON DELETE CASCADE,
      ADD CONSTRAINT files_preview_has_source CHECK ((purpose = 'preview') = (preview_of IS NOT NULL));
    CREATE UNIQUE INDEX files_preview_of ON files (preview_of) WHERE preview_of IS NOT NULL;
    -- What a Message shows of an image, written with its other file fields: a page of history joins nothing.
    ALTER TABLE messages
      ADD COLUMN thumbnail_url text,
      ADD COLUMN width integer,
      ADD COLUMN height integer;
  `.execute(db)
}
