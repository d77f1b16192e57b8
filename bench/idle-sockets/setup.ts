// What both of bench/idle-sockets.ts's measures share: the embedded database, the users and their groups, and
// the process of clients.
import { type ChildProcess, fork } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { APP_ROLE, startEmbeddedPostgres } from '../../src/embedded-postgres.ts'

export const N = Number(process.env.IDLE_SOCKETS ?? 10_000)
export const GROUP = 10
export const perSocketKb = (bytes: number, sockets = N) => Math.round((bytes / sockets / 1024) * 100) / 100
export const log = (s: string) => console.log(`[idle-sockets] ${s}`)

/** An embedded PostgreSQL in a temporary folder with an empty database of the app's role, for `use`; removed after. */
export async function withIdleDatabase(use: (databaseUrl: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'parley-idle-'))
  const embedded = await startEmbeddedPostgres(dir)
  try {
    const admin = new pg.Client({ connectionString: embedded.adminUrl })
    await admin.connect()
    await admin.query(`CREATE DATABASE parley_idle OWNER ${APP_ROLE}`)
    await admin.end()
    const url = new URL(embedded.url)
    url.pathname = '/parley_idle'
    await use(url.toString(), dir)
  } finally {
    await embedded.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

/** The clients' process, each user's socket open: it and the number of sockets it opened. */
export async function openClients(dir: string, port: number, users: { token: string }[]): Promise<{ child: ChildProcess; opened: number }> {
  const urlsFile = path.join(dir, 'urls.json')
  await writeFile(urlsFile, JSON.stringify(users.map((u) => `ws://127.0.0.1:${port}/ws?token=${u.token}`)))
  const child = fork(path.join(import.meta.dirname, 'clients.ts'), [], { env: { ...process.env, IDLE_URLS: urlsFile }, execArgv: ['--import', 'tsx'] })
  const opened = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { open: number }) => resolve(m.open))
    child.once('exit', (code) => reject(new Error(`client exited with ${code}`)))
  })
  return { child, opened }
}

export async function closeClients(child: ChildProcess): Promise<void> {
  child.send('close')
  await new Promise((r) => child.once('exit', r))
}

/**
 * N users with real sessions, in groups of GROUP made through the API as the bench makes them (each socket's user
 * is in one conversation). The first registers through the API; the others (N argon2id hashes would take minutes)
 * are inserted with its password hash and a session row each, and get tokens from `sign` (the app's own key, as
 * /auth/register signs them: sub, sid).
 */
export async function seedUsers(base: string, databaseUrl: string, sign: (sub: string, sid: string) => string) {
  const first = await fetch(`${base}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'idle_first', password: 'Passw0rd-idle' }),
  })
  if (first.status !== 201) throw new Error(`register: ${first.status} ${await first.text()}`)
  const registered = (await first.json()) as { access_token: string; user: { id: string } }
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 })
  const { rows: [{ password_hash: hash }] } = await pool.query('SELECT password_hash FROM users WHERE id = $1', [registered.user.id])
  const { rows } = await pool.query<{ id: string; sid: string }>(
    `WITH u AS (
       INSERT INTO users (username, display_name, password_hash)
       SELECT 'idle_' || i, 'Idle user ' || i, $1 FROM generate_series(2, $2::int) i RETURNING id)
     INSERT INTO sessions (id, user_id, user_agent) SELECT gen_random_uuid(), id, 'idle-sockets' FROM u RETURNING user_id AS id, id AS sid`,
    [hash, N],
  )
  await pool.end()
  const users = [{ id: registered.user.id, token: registered.access_token }, ...rows.map((r) => ({ id: r.id, token: sign(r.id, r.sid) }))]
  const groups = Math.ceil(N / GROUP)
  const createGroup = async (g: number) => {
    const members = users.slice(g * GROUP, (g + 1) * GROUP)
    if (members.length < 2) return
    const res = await fetch(`${base}/conversations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${members[0].token}` },
      body: JSON.stringify({ is_group: true, name: `idle ${g}`, participant_ids: members.slice(1).map((m) => m.id) }),
    })
    if (res.status !== 201) throw new Error(`group: ${res.status} ${await res.text()}`)
  }
  for (let g = 0; g < groups; g += 8) await Promise.all(Array.from({ length: Math.min(8, groups - g) }, (_, i) => createGroup(g + i)))
  return users
}
