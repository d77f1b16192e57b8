import { createServer } from 'node:net'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import Cursor from 'pg-cursor'
import type { Database } from '../db/types.ts'

// bigint columns (seq, counts) fit comfortably in a JS number.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number.parseInt(v, 10))

export type DB = Kysely<Database>

// Kysely keeps its pool private; the metrics read the pool's counts through this.
const pools = new WeakMap<DB, pg.Pool>()

/** The pg Pool under a database made by createDatabase. */
export const poolOf = (db: DB): pg.Pool | undefined => pools.get(db)

export function createDatabase(connectionString: string, max: number): { db: DB; pool: pg.Pool } {
  const pool = new pg.Pool({ connectionString, max, connectionTimeoutMillis: 5000 })
  // An idle client that loses its server must not crash the process; the pool discards it.
  pool.on('error', () => {})
  // The cursor lets a query stream its rows (`.stream()`, the data export) instead of loading them all.
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool, cursor: Cursor }) })
  pools.set(db, pool)
  return { db, pool }
}

/** A port free on 127.0.0.1 right now (for a server about to listen on it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}
