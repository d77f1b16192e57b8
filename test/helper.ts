import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { sql } from 'kysely'
import pg from 'pg'
import tap, { type Test } from 'tap'
import { migrateToLatest } from '../db/migrate.ts'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { createDatabase, type DB } from '../src/database.ts'
import { APP_ROLE, startEmbeddedPostgres } from '../src/embedded-postgres.ts'
import { WsClient } from './ws-client.ts'

export const JWT_SECRET = 'test-secret-that-is-at-least-32-characters-long'

/** Where test databases are made (`admin`), and how the app connects to them (`app`, its database name replaced). */
interface TestServer {
  admin: string
  app: string
  owner?: string
}

let server: Promise<TestServer> | undefined

/**
 * The PostgreSQL server of this test process: DATABASE_URL's, or an embedded one started once. On the embedded one
 * the app connects as the service does, as a role that is no superuser and owns its database: the suite proves
 * that the service needs nothing more.
 */
function testServer(): Promise<TestServer> {
  if (process.env.DATABASE_URL) return Promise.resolve({ admin: process.env.DATABASE_URL, app: process.env.DATABASE_URL })
  server ??= (async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'parley-test-'))
    // A throwaway server: commits still write their WAL (a killed PostgreSQL loses nothing acknowledged), but
    // nothing waits for the disk to flush it, which on a slow disk is most of what a test's commit costs.
    const embedded = await startEmbeddedPostgres(dir, { flags: ['-c', 'fsync=off'] })
    tap.teardown(async () => {
      await embedded.stop()
      await rm(dir, { recursive: true, force: true })
    })
    return { admin: embedded.adminUrl, app: embedded.url, owner: APP_ROLE }
  })()
  return server
}

const adminQuery = async (admin: string, query: string) => {
  const c = new pg.Client({ connectionString: admin })
  await c.connect()
  await c.query(query).finally(() => c.end())
}

/** A new database on the test server (a copy of `template` if given), dropped when the test ends; its URL. */
async function newDatabase(t: Test, template?: string): Promise<string> {
  const { admin, app, owner } = await testServer()
  const name = `parley_test_${randomBytes(6).toString('hex')}`
  await adminQuery(admin, `CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}${owner ? ` OWNER ${owner}` : ''}`)
  t.teardown(() => adminQuery(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
  const url = new URL(app)
  url.pathname = `/${name}`
  return url.toString()
}

/** A fresh, empty database for one test, dropped when it ends. */
export const testDatabase = (t: Test): Promise<string> => newDatabase(t)

let template: Promise<string> | undefined

/**
 * A database migrated once per test process, that each test's database copies: a copy takes a few milliseconds
 * where running every migration takes most of a second. Migrated by the app's own role, as the service migrates.
 */
function migratedTemplate(): Promise<string> {
  template ??= (async () => {
    const { admin, app, owner } = await testServer()
    const name = `parley_template_${process.pid}_${randomBytes(4).toString('hex')}`
    await adminQuery(admin, `CREATE DATABASE ${name}${owner ? ` OWNER ${owner}` : ''}`)
    tap.teardown(() => adminQuery(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
    const url = new URL(app)
    url.pathname = `/${name}`
    const { db } = createDatabase(url.toString(), 1)
    // A template must have no open connection when it is copied.
    await migrateToLatest(db).finally(() => db.destroy())
    return name
  })()
  return template
}

/** A database with every migration applied, for one test, dropped when it ends. */
export const migratedDatabase = async (t: Test): Promise<string> => newDatabase(t, await migratedTemplate())

/** A temporary folder, removed when the test ends. */
export async function tempDir(t: Test, prefix = 'parley-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export type TestApp = Awaited<ReturnType<typeof buildApp>>

/** The whole app on its own migrated database, closed when the test ends. */
export async function buildTestApp(t: Test, env: Record<string, string> = {}) {
  const url = await migratedDatabase(t)
  const config = loadConfig({ NODE_ENV: 'test', DATABASE_URL: url, JWT_SECRET, ...env })
  const { db } = createDatabase(url, 5)
  const app = await buildApp({ config, db, jwtSecret: JWT_SECRET, databaseUrl: url })
  t.teardown(async () => {
    await app.close()
    await db.destroy()
  })
  return { app, db, url, config }
}

/** The app listening on a port, and `open(who)` for real sockets to it; all closed when the test ends. */
export async function buildLiveApp(t: Test, env: Record<string, string> = {}) {
  const ctx = await buildTestApp(t, env)
  await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = ctx.app.server.address() as { port: number }
  const base = `http://127.0.0.1:${port}`
  const sockets: WsClient[] = []
  t.teardown(() => sockets.forEach((s) => s.close()))
  const open = async (who?: { token: string }, opts?: { protocol?: boolean }) => {
    const s = await WsClient.open(base, who?.token, opts)
    sockets.push(s)
    return s
  }
  return { ...ctx, base, open }
}

/** Kills the app's LISTEN connection from the server side (as a failover or an admin would) and waits until the listener notices. */
export async function dropListener(t: Test, app: TestApp, url: string): Promise<void> {
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  t.teardown(() => admin.end())
  const down = new Promise((resolve) => app.realtime.listener.once('down', resolve))
  await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'parley-listener' AND datname = current_database()")
  await down
}

export interface Session {
  token: string
  refresh: string
  user: { id: string; username: string; display_name: string; email: string | null }
}

let counter = 0
/** A unique, valid username for this test process. */
export const uniqueName = (prefix = 'u') => `${prefix}_${process.pid}_${++counter}`

export async function register(app: TestApp, username = uniqueName(), extra: Record<string, unknown> = {}): Promise<Session> {
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { username, password: 'Passw0rd', ...extra } })
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
  const body = res.json()
  return { token: body.access_token, refresh: body.refresh_token, user: body.user }
}

/** The session an access token names (its `sid` claim), unverified. */
export const sessionIdOf = (token: string): string => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sid

/** A small client bound to one user: `as(session).post('/messages', {...})`. */
export function client(app: TestApp, session?: { token: string }) {
  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE') => (url: string, payload?: unknown) =>
    app.inject({
      method,
      url,
      headers: session ? { authorization: `Bearer ${session.token}` } : {},
      ...(payload !== undefined && { payload: payload as Record<string, unknown> }),
    })
  return { get: call('GET'), post: call('POST'), patch: call('PATCH'), delete: call('DELETE') }
}

/** Asserts the one error shape of API.md and returns the body. */
export function assertError(t: Test, res: { statusCode: number; json(): any }, status: number, code?: string) {
  t.equal(res.statusCode, status, `status ${status}`)
  const body = res.json()
  t.type(body.error, 'string', 'error is a sentence')
  t.match(body.code, /^[A-Z_]+$/, 'code is a machine code')
  if (code) t.equal(body.code, code)
  t.notOk('statusCode' in body || 'stack' in body || 'message' in body, 'nothing but error, code, details')
  return body
}

/** A group of `admin` with `members`, by REST; its id. */
export async function groupOf(app: TestApp, admin: Session, members: Session[], name = 'team'): Promise<string> {
  const res = await client(app, admin).post('/conversations', { participant_ids: members.map((m) => m.user.id), is_group: true, name })
  if (res.statusCode !== 201) throw new Error(`group failed: ${res.statusCode} ${res.body}`)
  return res.json().id
}

/** A message sent by REST (201 or the test stops); the Message. */
export async function sendAs(app: TestApp, who: Session, conversationId: string, content: string, extra: Record<string, unknown> = {}) {
  const res = await client(app, who).post('/messages', { conversation_id: conversationId, content, ...extra })
  if (res.statusCode !== 201) throw new Error(`send failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

/** Jobs in graphile-worker's queue (it deletes a job once it is done or has failed for good). */
export const queuedJobs = async (db: DB): Promise<number> =>
  Number((await sql<{ n: string }>`SELECT count(*) AS n FROM graphile_worker.jobs`.execute(db)).rows[0].n)
