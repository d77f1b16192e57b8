// What an idle Parley socket costs, byte by byte: `npx tsx bench/idle-sockets.ts` (about 2 minutes).
//
// This process is the server: Parley built in-process (buildApp, as src/server.ts runs it: production,
// LOG_LEVEL=warn, as the bench runs it) on an embedded PostgreSQL. IDLE_SOCKETS users (default 10,000) in groups
// of 10, each with a real session, open one socket each from a child process, so that the clients' memory is
// not the server's. The server then measures:
//   - RSS per socket as bench/run.ts measures it (3 s after the last open, no forced GC), and after a full GC;
//   - a heap snapshot before and after the sockets (v8.writeHeapSnapshot, which collects first). A third
//     process parses both (its own streaming parser, no library), computes the dominator tree and attributes
//     each byte of the heap's growth to the nearest dominating object of a known kind (ws WebSocket, Receiver,
//     net.Socket, IncomingMessage, Connection, the Hub...), then tallies it by constructor.
// IDLE_SPAWN=1 measures as bench/run.ts does instead: Parley as its own process (src/server.ts of IDLE_TREE, default
// this tree), RSS read from /proc 1 s after seeding and 3 s after the last open, no GC, no snapshot.
// Env: IDLE_SOCKETS, IDLE_KEEP=1 (keep the .heapsnapshot files; they are printed), IDLE_SNAPSHOT=0 (RSS only).
import { fork } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import v8 from 'node:v8'
import vm from 'node:vm'
import { inspect, printGrowth } from './heap-growth.ts'

const self = fileURLToPath(import.meta.url)
const mode = process.env.IDLE_MODE ?? 'server'
const N = Number(process.env.IDLE_SOCKETS ?? 10_000)
const GROUP = 10


// ---------------------------------------------------------------------------------------------------------
// The clients: one process, N sockets, opened 100 at a time, then idle until told to close.

async function client() {
  const { default: WebSocket } = await import('ws')
  const urls = JSON.parse(await readFile(process.env.IDLE_URLS!, 'utf8')) as string[]
  const sockets: InstanceType<typeof WebSocket>[] = []
  let next = 0
  const open = (url: string) =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(url)
      ws.once('open', () => resolve())
      ws.once('error', reject)
      ws.once('close', (code) => reject(new Error(`closed ${code} before open`)))
      sockets.push(ws)
    })
  await Promise.all(Array.from({ length: 100 }, async () => {
    while (next < urls.length) await open(urls[next++])
  }))
  process.send!({ open: sockets.length })
  process.on('message', () => {
    for (const ws of sockets) ws.terminate()
    process.exit(0)
  })
}

// ---------------------------------------------------------------------------------------------------------
// The server.

async function server() {
  const { default: pg } = await import('pg')
  const { migrateToLatest } = await import('../db/migrate.ts')
  const { buildApp } = await import('../src/app.ts')
  const { loadConfig } = await import('../src/config.ts')
  const { createDatabase } = await import('../src/database.ts')
  const { APP_ROLE, startEmbeddedPostgres } = await import('../src/embedded-postgres.ts')

  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  const fullGc = async () => {
    for (let i = 0; i < 4; i++) {
      gc()
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  const mem = () => {
    const m = process.memoryUsage()
    return { rss: m.rss, heap: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }
  }
  const kb = (bytes: number) => Math.round((bytes / N / 1024) * 100) / 100
  const log = (s: string) => console.log(`[idle-sockets] ${s}`)

  const dir = await mkdtemp(path.join(tmpdir(), 'parley-idle-'))
  const embedded = await startEmbeddedPostgres(dir)
  try {
    const admin = new pg.Client({ connectionString: embedded.adminUrl })
    await admin.connect()
    await admin.query(`CREATE DATABASE parley_idle OWNER ${APP_ROLE}`)
    await admin.end()
    const url = new URL(embedded.url)
    url.pathname = '/parley_idle'
    const databaseUrl = url.toString()
    const JWT_SECRET = randomUUID() + randomUUID()
    const config = loadConfig({
      NODE_ENV: 'production',
      DATABASE_URL: databaseUrl,
      JWT_SECRET,
      LOG_LEVEL: 'warn',
      RATE_LIMIT_MAX: '100000000',
      AUTH_RATE_LIMIT_MAX: '100000000',
      DATA_DIR: dir,
    })
    const { db } = createDatabase(databaseUrl, config.DB_POOL_MAX)
    await migrateToLatest(db)
    const app = await buildApp({ config, db, jwtSecret: JWT_SECRET, databaseUrl, logger: { level: 'warn' } })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    const base = `http://127.0.0.1:${port}`

    const users = await seedUsers(base, databaseUrl, (sub, sid) => app.jwt.sign({ sub, sid }))
    const urlsFile = path.join(dir, 'urls.json')
    await writeFile(urlsFile, JSON.stringify(users.map((u) => `ws://127.0.0.1:${port}/ws?token=${u.token}`)))
    log(`${N} users, ${Math.ceil(N / GROUP)} groups; server pid ${process.pid}`)

    // Before: settled, collected.
    await new Promise((r) => setTimeout(r, 1000))
    await fullGc()
    const before = mem()
    const snapshot = process.env.IDLE_SNAPSHOT !== '0'
    const beforeFile = snapshot ? v8.writeHeapSnapshot(path.join(dir, 'before.heapsnapshot')) : ''
    await fullGc()
    const beforeRss = mem().rss

    const child = fork(self, [], { env: { ...process.env, IDLE_MODE: 'client', IDLE_URLS: urlsFile }, execArgv: ['--import', 'tsx'] })
    const t0 = performance.now()
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve())
      child.once('exit', (code) => reject(new Error(`client exited with ${code}`)))
    })
    const openedIn = (performance.now() - t0) / 1000
    const socketCount = app.realtime.hub.socketCount
    if (socketCount !== N) throw new Error(`${socketCount} sockets registered, ${N} expected`)
    // As bench/run.ts measures: 3 s after the last open, no GC forced.
    await new Promise((r) => setTimeout(r, 3000))
    const asBench = mem()
    await fullGc()
    const after = mem()
    const afterFile = snapshot ? v8.writeHeapSnapshot(path.join(dir, 'after.heapsnapshot')) : ''

    const result = {
      sockets: N,
      opened_in_s: Math.round(openedIn * 10) / 10,
      rss_mb: { before: Math.round(beforeRss / 2 ** 20), as_bench: Math.round(asBench.rss / 2 ** 20), after_gc: Math.round(after.rss / 2 ** 20) },
      kb_per_socket: {
        rss_as_bench: kb(asBench.rss - beforeRss),
        rss_after_gc: kb(after.rss - beforeRss),
        heap_after_gc: kb(after.heap - before.heap),
        external_after_gc: kb(after.external - before.external),
      },
    }
    console.log(JSON.stringify(result, null, 2))

    child.send('close')
    await new Promise((r) => child.once('exit', r))
    await app.close()
    await db.destroy()

    if (snapshot) {
      // Parsing two large snapshots takes more memory than this process should hold: a fresh one does it.
      const analyzer = fork(self, [], {
        env: { ...process.env, IDLE_MODE: 'analyze', IDLE_BEFORE: beforeFile, IDLE_AFTER: afterFile },
        execArgv: ['--import', 'tsx', '--max-old-space-size=8192'],
      })
      await new Promise((r) => analyzer.once('exit', r))
      if (process.env.IDLE_KEEP === '1') {
        const { copyFile } = await import('node:fs/promises')
        for (const f of [beforeFile, afterFile]) await copyFile(f, path.join(tmpdir(), path.basename(f)))
        log(`kept ${tmpdir()}/before.heapsnapshot and after.heapsnapshot`)
      }
    }
  } finally {
    await embedded.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

if (mode === 'client') await client()
else if (process.env.IDLE_SPAWN === '1') await spawned()
else if (mode === 'inspect') inspect(process.env.IDLE_AFTER!, process.env.IDLE_OWNER!, process.env.IDLE_LABEL!)
else if (mode === 'analyze') printGrowth(process.env.IDLE_BEFORE!, process.env.IDLE_AFTER!, N)
else await server()

// ---------------------------------------------------------------------------------------------------------
// IDLE_SPAWN=1: the bench's measure, on a server of its own.

async function spawned() {
  const { spawn } = await import('node:child_process')
  const { createHmac } = await import('node:crypto')
  const { readFileSync } = await import('node:fs')
  const { default: pg } = await import('pg')
  const { freePort } = await import('../src/database.ts')
  const { APP_ROLE, startEmbeddedPostgres } = await import('../src/embedded-postgres.ts')
  const tree = path.resolve(process.env.IDLE_TREE ?? path.join(path.dirname(self), '..'))
  const rss = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024
  const dir = await mkdtemp(path.join(tmpdir(), 'parley-idle-'))
  const embedded = await startEmbeddedPostgres(dir)
  try {
    const admin = new pg.Client({ connectionString: embedded.adminUrl })
    await admin.connect()
    await admin.query(`CREATE DATABASE parley_idle OWNER ${APP_ROLE}`)
    await admin.end()
    const url = new URL(embedded.url)
    url.pathname = '/parley_idle'
    const databaseUrl = url.toString()
    const JWT_SECRET = randomUUID() + randomUUID()
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const env = { ...process.env, NODE_ENV: 'production', JWT_SECRET, LOG_LEVEL: 'warn', RATE_LIMIT_MAX: '100000000', AUTH_RATE_LIMIT_MAX: '100000000', PORT: String(port), DATABASE_URL: databaseUrl, DATA_DIR: dir }
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: tree, env, stdio: ['ignore', 'inherit', 'inherit'] })
    try {
      while (!(await fetch(`${base}/health/ready`).then((r) => r.ok, () => false))) {
        if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}`)
        await new Promise((r) => setTimeout(r, 100))
      }
      const sign = (sub: string, sid: string) => {
        const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
        const now = Math.floor(Date.now() / 1000)
        const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, sid, iat: now, exp: now + 3600 })}`
        return `${head}.${createHmac('sha256', JWT_SECRET).update(head).digest('base64url')}`
      }
      const users = await seedUsers(base, databaseUrl, sign)
      const urlsFile = path.join(dir, 'urls.json')
      await writeFile(urlsFile, JSON.stringify(users.map((u) => `ws://127.0.0.1:${port}/ws?token=${u.token}`)))
      // The server's own heap figures (prom-client's default metrics), to tell live heap from heap kept.
      const heapOf = async () => {
        const text = await (await fetch(`${base}/metrics`)).text()
        const get = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN)
        return { used: get('nodejs_heap_size_used_bytes'), total: get('nodejs_heap_size_total_bytes'), external: get('nodejs_external_memory_bytes') }
      }
      await new Promise((r) => setTimeout(r, 1000))
      const heapBefore = await heapOf()
      const before = rss(proc.pid!)
      const child = fork(self, [], { env: { ...process.env, IDLE_MODE: 'client', IDLE_URLS: urlsFile }, execArgv: ['--import', 'tsx'] })
      const opened = await new Promise<number>((resolve, reject) => {
        child.once('message', (m: { open: number }) => resolve(m.open))
        child.once('exit', (code) => reject(new Error(`client exited with ${code}`)))
      })
      await new Promise((r) => setTimeout(r, 3000))
      const after = rss(proc.pid!)
      const heapAfter = await heapOf()
      // And later, once V8 has collected the garbage of the connection storm by itself (no GC forced).
      const later: Record<string, number> = {}
      for (const at of [10, 30]) {
        await new Promise((r) => setTimeout(r, at === 10 ? 7000 : 20000))
        later[`${at}s`] = Math.round(((rss(proc.pid!) - before) / opened / 1024) * 100) / 100
      }
      const perSocket = (bytes: number) => Math.round((bytes / opened / 1024) * 100) / 100
      console.log(JSON.stringify({
        tree,
        sockets: opened,
        rss_mb: { before: Math.round(before / 2 ** 20), after: Math.round(after / 2 ** 20) },
        kb_per_socket: perSocket(after - before),
        kb_per_socket_later: later,
        heap_kb_per_socket: { used: perSocket(heapAfter.used - heapBefore.used), total: perSocket(heapAfter.total - heapBefore.total), external: perSocket(heapAfter.external - heapBefore.external) },
      }))
      child.send('close')
      await new Promise((r) => child.once('exit', r))
    } finally {
      proc.kill('SIGTERM')
      await new Promise((r) => proc.once('exit', r))
    }
  } finally {
    await embedded.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * N users with real sessions, in groups of GROUP made through the API as the bench makes them (each socket's user
 * is in one conversation). The first registers through the API; the others (N argon2id hashes would take minutes)
 * are inserted with its password hash and a session row each, and get tokens from `sign` (the app's own key, as
 * /auth/register signs them: sub, sid).
 */
async function seedUsers(base: string, databaseUrl: string, sign: (sub: string, sid: string) => string) {
  const { default: pg } = await import('pg')
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
