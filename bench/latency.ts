// End-to-end latency of live delivery across instances: POST /messages on instance A until the
// `new_message` frame arrives on a socket connected to instance B. Two real instances (separate processes)
// on one embedded PostgreSQL, messages sent one at a time (unloaded latency; load is issue 7's benchmark).
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import WebSocket from 'ws'
import { startEmbeddedPostgres } from '../src/database.ts'

const COUNT = Number(process.env.BENCH_MESSAGES ?? 1000)
const WARMUP = 100
const root = path.resolve(import.meta.dirname, '..')

function instance(env: Record<string, string>): Promise<{ proc: ChildProcess; base: string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'info', NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    proc.on('exit', (code) => reject(new Error(`instance exited with ${code}`)))
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const m = /API docs at (http:\/\/\S+)\/docs/.exec(line)
      if (m) resolve({ proc, base: m[1] })
    })
  })
}

async function post(base: string, url: string, body: unknown, token?: string) {
  const res = await fetch(`${base}${url}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  })
  return res.json()
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]

const dir = await mkdtemp(path.join(tmpdir(), 'parley-bench-'))
const pg = await startEmbeddedPostgres(dir, { persistent: false })
const env = { DATABASE_URL: pg.url, JWT_SECRET: 'bench-secret-that-is-at-least-32-characters' }
const a = await instance(env) // migrates first
const b = await instance(env)
try {
  const alice = await post(a.base, '/auth/register', { username: 'bench_alice', password: 'Passw0rd' })
  const bob = await post(a.base, '/auth/register', { username: 'bench_bob', password: 'Passw0rd' })
  const conv = await post(a.base, '/conversations', { participant_ids: [bob.user.id] }, alice.access_token)

  const socket = new WebSocket(`${b.base.replace('http', 'ws')}/ws?token=${bob.access_token}`)
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject))
  const arrivals = new Map<string, number>()
  let wake: (() => void) | undefined
  socket.on('message', (data) => {
    const frame = JSON.parse(data.toString())
    if (frame.type === 'new_message') {
      arrivals.set(frame.data.content, performance.now())
      wake?.()
    }
  })

  const e2e: number[] = []
  const rest: number[] = []
  for (let i = 0; i < WARMUP + COUNT; i++) {
    const content = `m${i}`
    const t0 = performance.now()
    await post(a.base, '/messages', { conversation_id: conv.id, content }, alice.access_token)
    const t1 = performance.now()
    while (!arrivals.has(content)) await new Promise<void>((resolve) => (wake = resolve))
    if (i >= WARMUP) {
      rest.push(t1 - t0)
      e2e.push(arrivals.get(content)! - t0)
    }
  }
  socket.close()

  const row = (name: string, xs: number[]) => {
    const s = [...xs].sort((x, y) => x - y)
    return { measure: name, n: s.length, p50_ms: +pct(s, 50).toFixed(2), p95_ms: +pct(s, 95).toFixed(2), p99_ms: +pct(s, 99).toFixed(2), max_ms: +s[s.length - 1].toFixed(2) }
  }
  const results = [row('POST /messages on A → 201', rest), row('POST on A → new_message frame on B', e2e)]
  console.table(results)
  await mkdir(path.join(root, 'bench/results'), { recursive: true })
  const file = path.join(root, 'bench/results', `${new Date().toISOString().slice(0, 10)}-latency.json`)
  await writeFile(file, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, messages: COUNT, results }, null, 2)}\n`)
  console.log(`wrote ${path.relative(root, file)}`)
} finally {
  a.proc.kill('SIGTERM')
  b.proc.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 500))
  await pg.stop()
  await rm(dir, { recursive: true, force: true })
}
