import { type Kysely, sql } from 'kysely'

// Full-text search over messages (issue 15).
//
// parley_search copies `simple` (no stemming and no stop words, so every language is searched alike) and puts
// the `unaccent` dictionary before it for the token types that can carry accents: "cafe", "Café" and "CAFÉ" are
// all the lexeme "cafe". `asciiword` needs no unaccenting and is left to `simple` alone, which is cheaper.
//
// The column is generated, so no write path can forget it and an edit re-indexes the new text in the same
// UPDATE. Deleted and system messages get NULL: they are never found, and cost the index nothing. `<` and `>`
// are read as spaces: the parser would take `<b>word</b>` for HTML tags and drop them, and a chat message is text.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE EXTENSION IF NOT EXISTS unaccent;
    CREATE TEXT SEARCH CONFIGURATION parley_search (COPY = simple);
    ALTER TEXT SEARCH CONFIGURATION parley_search
      ALTER MAPPING FOR word, numword, hword, numhword, hword_part, hword_numpart WITH unaccent, simple;
    ALTER TABLE messages ADD COLUMN search tsvector GENERATED ALWAYS AS (
      CASE WHEN is_deleted OR message_type = 'system' THEN NULL ELSE to_tsvector('parley_search', translate(coalesce(content, ''), '<>', '  ')) END
    ) STORED;
    CREATE INDEX messages_search ON messages USING gin (search);
  `.execute(db)
}
