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
  // Nor one checked out between two queries (a transaction awaiting its next statement): pg-pool takes its
  // own listener off while a client is lent, and an 'error' event with no listener throws. The next query on
  // it fails instead, and the pool drops it when it comes back (pg_terminate_backend showed it, `npm run chaos`).
  pool.on('connect', (client) => client.on('error', () => {}))
  // The cursor lets a query stream its rows (`.stream()`, the data export) instead of loading them all.
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool, cursor: Cursor }) })
  pools.set(db, pool)
  return { db, pool }
}

/**
 * A named statement: prepared on each connection the first time it runs there, then only executed. When a newer
 * release's scripts have changed what it returns (a function's result type), its plan on a connection prepared
 * before fails with "cached plan must not change result type", before doing anything: that connection is
 * dropped by the pool (pg-pool drops a client on any error) and the statement runs again, prepared afresh.
 */
export async function queryPrepared<R extends pg.QueryResultRow>(pool: pg.Pool, config: { name: string; text: string; values: unknown[]; rowMode?: 'array' }): Promise<pg.QueryResult<R>> {
  try {
    return await pool.query<R>(config as pg.QueryConfig)
  } catch (err) {
    if ((err as { code?: string }).code !== STALE_PLAN) throw err
    return pool.query<R>(config as pg.QueryConfig)
  }
}

// feature_not_supported, which is what a prepared plan whose result type changed raises.
const STALE_PLAN = '0A000'

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
