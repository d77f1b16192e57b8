// What every benchmark part shares: starting node processes, reading their CPU and memory, percentiles.
import { type ChildProcess, spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import http, { type RequestListener } from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'

export const root = path.resolve(import.meta.dirname, '..')
export const JWT_SECRET = 'bench-secret-that-is-at-least-32-characters'

export interface Proc {
  proc: ChildProcess
  /** What the process printed on the line that matched `ready` (its first capture group). */
  ready: string
}

/**
 * `node [execArgv] --import tsx <script>`. Its stdout goes to `stdout` (a file descriptor: Parley's request log
 * at the default level, which a deployment ships to a file or a collector) or is passed through; stderr is passed through.
 */
export function spawnNode(script: string, env: Record<string, string>, opts: { stdout?: number; execArgv?: string[] } = {}): ChildProcess {
  return spawn(process.execPath, [...(opts.execArgv ?? []), '--import', 'tsx', script], {
    cwd: root,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', opts.stdout ?? 'inherit', 'inherit'],
  })
}

/** Starts `node --import tsx <script>` and resolves once a line of its output matches `ready`. */
export function startNode(script: string, env: Record<string, string>, ready: RegExp): Promise<Proc> {
  const proc = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: root,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const tail: string[] = []
  return new Promise((resolve, reject) => {
    proc.on('exit', (code) => reject(new Error(`${script} exited with ${code}:\n${tail.join('\n')}`)))
    for (const stream of [proc.stdout!, proc.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        tail.push(line)
        if (tail.length > 20) tail.shift()
        const m = ready.exec(line)
        if (m) resolve({ proc, ready: m[1] ?? line })
      })
    }
  })
}

export async function stop(procs: ChildProcess[]): Promise<void> {
  await Promise.all(
    procs.map((p) => {
      if (p.exitCode !== null || p.signalCode !== null) return
      return new Promise<void>((resolve) => {
        const kill = setTimeout(() => p.kill('SIGKILL'), 5000)
        p.once('exit', () => {
          clearTimeout(kill)
          resolve()
        })
        p.kill('SIGTERM')
      })
    }),
  )
}

/**
 * An access token as Parley signs them (HS256, `sub`, `sid`), minted here so that seeding 10,000 users costs no
 * logins (an argon2id check each). `sid` must name a row of `sessions` that has not ended: the seed inserts one per user.
 */
export function mintToken(sub: string, sid: string, ttlSeconds = 3600): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, sid, iat: now, exp: now + ttlSeconds })}`
  return `${head}.${createHmac('sha256', JWT_SECRET).update(head).digest('base64url')}`
}

/** Monotonic milliseconds, the same clock in every process of this machine (CLOCK_MONOTONIC). */
export const monoMs = () => Number(process.hrtime.bigint()) / 1e6

/**
 * Where a run writes its figures: the repository's bench/results/ (and docs/ for the plot) with BENCH_SAVE=1, the
 * run that is to be committed; otherwise a folder under the OS's temp dir, so that trying the bench leaves the
 * working tree as it found it.
 */
export function outputDirs(): { results: string; docs: string } {
  if (process.env.BENCH_SAVE === '1') return { results: path.join(root, 'bench/results'), docs: path.join(root, 'docs') }
  const dir = path.join(tmpdir(), 'parley-bench-results')
  return { results: dir, docs: dir }
}

/** Now as a file name's stamp: 2026-12-01T1327 (UTC). */
export const stamp = () => new Date().toISOString().slice(0, 16).replace(':', '')

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

const TICK = 100 // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux.

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICK
  } catch {
    return 0
  }
}

export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : Number.NaN
}

/** The postmaster and every backend it forked: the database's whole CPU. */
export function postgresPids(postmasterPid: number): number[] {
  const pids = [postmasterPid]
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === postmasterPid) pids.push(Number(entry))
    } catch {
      // gone meanwhile
    }
  }
  return pids
}

export const round = (x: number, digits = 1) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null)

/** The peer's and the floor's one route, `POST /send {room, content}`: 204 once `send` is done, 500 if it fails. */
export function sendRoute(send: (room: string, content: string) => unknown): RequestListener {
  return (req, res) => {
    if (req.method !== 'POST' || req.url !== '/send') {
      res.writeHead(404).end()
      return
    }
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk) => (body += chunk))
    req.on('end', () => {
      const { room, content } = JSON.parse(body) as { room: string; content: string }
      Promise.resolve(send(room, content)).then(
        () => res.writeHead(204).end(),
        () => res.writeHead(500).end(),
      )
    })
  }
}

/** GETs of one instance as one user, over a single kept-alive connection: what one client scrolling or searching does. */
export function authedGet(base: string, token: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const get = (path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      http.get(`${base}${path}`, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (c) => (body += c)).on('end', () => resolve({ status: res.statusCode!, body }))
      }).on('error', reject)
    })
  return { get, close: () => agent.destroy() }
}
