import { type Kysely, sql } from 'kysely'

// The rate limits that hold across instances (src/services/shared-limits.ts): one row per key and window, in the
// shape rate-limiter-flexible's PostgreSQL store reads and writes (it is told the table exists and makes none at
// run time). Unlogged: no WAL, so an attempt's upsert waits for no flush and no replica; a crash of PostgreSQL
// empties it, which forgives every client their current window once. No index on expire: an update that
// touches no indexed column stays HOT, and the sweep of ended windows (every 5 minutes) scans the table anyway.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE UNLOGGED TABLE rate_limits (
      key    varchar(255) PRIMARY KEY,
      points integer NOT NULL DEFAULT 0,
      expire bigint
    )
  `.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE rate_limits`.execute(db)
}
