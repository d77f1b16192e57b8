// What holding the global rate limit across instances costs per request, each way it can be held
// (docs/SCALING.md, "Rate limits across instances"):
//   divided   — RATE_LIMIT_STORE=divided (the default): counted in memory, each instance allowing its share;
//   postgres  — RATE_LIMIT_STORE=postgres: one count in PostgreSQL, an upsert per request and per WebSocket frame.
// One real Parley instance (src/server.ts, its own process, LOG_LEVEL info as users run it) on an embedded
// PostgreSQL, the same database for both, started once per round; rounds alternate divided, postgres, divided,
// postgres... so that the two are measured in the same run, under the same neighbours. Per round and load:
//   - GET /users/me, closed loop, 8 at a time: requests/s, latency, and CPU (Parley, PostgreSQL) per request;
//   - POST /messages, open loop at 200 msg/s (issue 12's load), 20 senders: time to the answer, CPU per message;
//   - `send` frames at 200 msg/s over the senders' sockets: time to the ack (spendBudget's cost).
// Also the shared store's upsert alone, from this process (one round trip, as the auth limits pay it).
// Run: `npx tsx bench/rate-limits.ts` (about 4 minutes; BENCH_ROUNDS=n, default 3 of each); the figures go where
// npm run bench's go (bench/results/ with BENCH_SAVE=1).
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import WebSocket from 'ws'
import { migrateToLatest } from '../db/migrate.ts'
import { createDatabase } from '../src/database.ts'
import { APP_ROLE, startEmbeddedPostgres } from '../src/embedded-postgres.ts'
import { SharedLimits } from '../src/services/shared-limits.ts'
import { cpuSeconds, JWT_SECRET, monoMs, outputDirs, percentile, postgresPids, round, stamp } from './lib.ts'
import { type Plan, startParley } from './systems.ts'

type Store = 'divided' | 'postgres'
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const SECONDS = 10
const RATE = 200
const log = (line: string) => process.stderr.write(`${line}\n`)
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })

function call(url: string, method: string, token: string, body?: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = http.request(url, { method, agent, headers: { authorization: `Bearer ${token}`, ...(payload && { 'content-type': 'application/json' }) } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode!))
    })
    req.on('error', reject)
    req.end(payload)
  })
}

interface Load {
  count: number
  failed: number
  latencies: number[]
}

/** Closed loop: `concurrency` clients, each sending its next request when the last is answered. */
async function closedLoop(send: () => Promise<number>, concurrency: number, ms: number): Promise<Load> {
  const load: Load = { count: 0, failed: 0, latencies: [] }
  const end = monoMs() + ms
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (monoMs() < end) {
      const t0 = monoMs()
      const status = await send()
      load.latencies.push(monoMs() - t0)
      load.count++
      if (status >= 400) load.failed++
    }
  }))
  return load
}

/** Open loop: `rate` a second spread over `senders`, each answer timed from when it was due. */
async function openLoop(senders: number, send: (sender: number, n: number) => Promise<boolean>, ms: number): Promise<Load> {
  const load: Load = { count: 0, failed: 0, latencies: [] }
  const start = monoMs()
  const total = Math.floor((RATE * ms) / 1000)
  const pending: Promise<void>[] = []
  for (let n = 0; n < total; n++) {
    const due = start + (n * 1000) / RATE
    const wait = due - monoMs()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    pending.push(send(n % senders, n).then((ok) => {
      load.latencies.push(monoMs() - due)
      load.count++
      if (!ok) load.failed++
    }))
  }
  await Promise.all(pending)
  return load
}

/**
 * PostgreSQL's CPU seconds so far: its live processes', and those of the backends that have exited (the
 * postmaster's cutime and cstime), so that a connection closed during a load still counts.
 */
function databaseCpu(postmaster: number): number {
  const stat = readFileSync(`/proc/${postmaster}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const reaped = (Number(fields[13]) + Number(fields[14])) / 100
  return reaped + postgresPids(postmaster).reduce((s, pid) => s + cpuSeconds(pid), 0)
}

/** The load, with the CPU Parley and PostgreSQL spent on it, per request. */
async function measured(pids: { node: number; postmaster: number }, run: () => Promise<Load>) {
  const [node0, db0, t0] = [cpuSeconds(pids.node), databaseCpu(pids.postmaster), monoMs()]
  const load = await run()
  const [node1, db1, t1] = [cpuSeconds(pids.node), databaseCpu(pids.postmaster), monoMs()]
  const sorted = load.latencies.sort((a, b) => a - b)
  return {
    per_s: round((load.count / (t1 - t0)) * 1000, 0),
    failed: load.failed,
    p50_ms: round(percentile(sorted, 50), 2),
    p95_ms: round(percentile(sorted, 95), 2),
    p99_ms: round(percentile(sorted, 99), 2),
    node_cpu_ms: round(((node1 - node0) * 1000) / load.count, 3),
    db_cpu_ms: round(((db1 - db0) * 1000) / load.count, 3),
  }
}

/** Each sender's socket, answering `send` frames with an ack of the same ref. */
async function senderSockets(plan: Plan) {
  const awaiting = new Map<string, (ok: boolean) => void>()
  const sockets = await Promise.all(plan.senders.map((s) => new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(`${s.url.replace(/^http/, 'ws').replace('/messages', '/ws')}?token=${s.token}`)
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString())
      if (frame.ref === undefined) return
      awaiting.get(frame.ref)?.(frame.type === 'ack')
      awaiting.delete(frame.ref)
    })
  })))
  const send = (sender: number, n: number, content: string) => new Promise<boolean>((resolve) => {
    const ref = `${sender}:${n}`
    awaiting.set(ref, resolve)
    sockets[sender].send(JSON.stringify({ type: 'send', ref, conversation_id: plan.senders[sender].body.conversation_id, content, client_id: crypto.randomUUID() }))
  })
  return { send, close: () => sockets.forEach((ws) => ws.close()) }
}

async function round1(store: Store, url: string, postmaster: number, tag: string) {
  const parley = await startParley(url, 1, { env: { RATE_LIMIT_STORE: store } })
  try {
    const plan = await parley.seed(20, 2)
    const pids = { node: parley.procs[0].pid!, postmaster }
    const base = parley.bases[0]
    const me = plan.senders[0].token!
    // Warm: the code paths, each pool connection's prepared statements.
    await closedLoop(() => call(`${base}/users/me`, 'GET', me), 8, 2000)
    const get = await measured(pids, () => closedLoop(() => call(`${base}/users/me`, 'GET', me), 8, SECONDS * 1000))
    const postOne = (sender: number, n: number) => {
      const s = plan.senders[sender]
      return call(s.url, 'POST', s.token!, { ...s.body, content: `${tag} ${n}`, client_id: crypto.randomUUID() }).then((status) => status === 201)
    }
    await openLoop(plan.senders.length, postOne, 2000)
    const post = await measured(pids, () => openLoop(plan.senders.length, postOne, SECONDS * 1000))
    const ws = await senderSockets(plan)
    await openLoop(plan.senders.length, (s, n) => ws.send(s, n, `${tag} warm ${n}`), 2000)
    const frames = await measured(pids, () => openLoop(plan.senders.length, (s, n) => ws.send(s, n, `${tag} ws ${n}`), SECONDS * 1000))
    ws.close()
    return { get, post, ws: frames }
  } finally {
    await parley.stop()
  }
}

/** The shared store's upsert alone, one at a time from here: what one shared limit adds to a request. */
async function upsertAlone(url: string) {
  const { db, pool } = createDatabase(url, 2)
  const limit = new SharedLimits(pool, JWT_SECRET).limit('bench', 1_000_000_000, 60_000)
  const times: number[] = []
  for (let i = 0; i < 3000; i++) {
    const t0 = monoMs()
    await limit(`user:${i % 100}`)
    if (i >= 500) times.push(monoMs() - t0)
  }
  await db.destroy()
  times.sort((a, b) => a - b)
  return { p50_ms: round(percentile(times, 50), 3), p99_ms: round(percentile(times, 99), 3) }
}

const dir = await mkdtemp(path.join(tmpdir(), 'parley-bench-limits-'))
const database = await startEmbeddedPostgres(dir)
try {
  const postmaster = Number((await readFile(path.join(dir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0])
  const admin = new pg.Client({ connectionString: database.adminUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE bench_limits OWNER ${APP_ROLE}`)
  await admin.end()
  const url = Object.assign(new URL(database.url), { pathname: '/bench_limits' }).toString()
  const migrated = createDatabase(url, 1)
  await migrateToLatest(migrated.db)
  await migrated.db.destroy()

  const rounds: Array<{ store: Store; result: Awaited<ReturnType<typeof round1>> }> = []
  for (let r = 0; r < ROUNDS; r++) {
    for (const store of ['divided', 'postgres'] as const) {
      const result = await round1(store, url, postmaster, `r${r}`)
      rounds.push({ store, result })
      log(`${store} round ${r + 1}: ${JSON.stringify(result)}`)
    }
  }
  const upsert = await upsertAlone(url)
  log(`the shared store's upsert alone: ${JSON.stringify(upsert)}`)

  // Per store and load, the median over the rounds of each figure.
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const summary: Record<string, Record<string, Record<string, number>>> = {}
  for (const store of ['divided', 'postgres'] as const) {
    const mine = rounds.filter((r) => r.store === store).map((r) => r.result)
    summary[store] = {}
    for (const load of ['get', 'post', 'ws'] as const) {
      summary[store][load] = Object.fromEntries(Object.keys(mine[0][load]).map((k) => [k, median(mine.map((m) => (m[load] as Record<string, number>)[k]))]))
    }
  }
  const file = path.join(outputDirs().results, `rate-limits-${stamp()}.json`)
  await mkdir(path.dirname(file), { recursive: true })
  await writeFile(file, `${JSON.stringify({ date: new Date().toISOString(), rounds: ROUNDS, seconds: SECONDS, rate: RATE, summary, upsert, all: rounds }, null, 2)}\n`)
  console.log(JSON.stringify(summary, null, 2))
  log(`wrote ${file}`)
} finally {
  await database.stop()
  await rm(dir, { recursive: true, force: true })
}
