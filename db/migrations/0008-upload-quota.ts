import { type Kysely, sql } from 'kysely'

// The upload quota sums a user's file sizes on every upload: an index that answers it alone.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`CREATE INDEX files_uploaded_by ON files (uploaded_by) INCLUDE (size)`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX files_uploaded_by`.execute(db)
}
