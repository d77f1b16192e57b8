// The three systems the benchmark drives with the same load: Parley, the peer (Socket.IO + its PostgreSQL
// adapter) and the floor (bare INSERT + NOTIFY → LISTEN → ws.send). Each starts N real nodes on one
// database and seeds users and groups; the workers then see them all through the same Plan.
import type { ChildProcess } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import argon2 from 'argon2'
import pg from 'pg'
import { freePort } from '../src/database.ts'
import { JWT_SECRET, mintToken, spawnNode, startNode, stop } from './lib.ts'

export type SystemName = 'parley' | 'peer' | 'floor'

/** One client socket: where it connects and as whom (Parley) or to which rooms (peer, floor). */
export interface SocketSpec {
  node: number
  url: string
  token?: string
  rooms?: string[]
  /** The group it belongs to, so that a worker knows how many frames each message should make. */
  group: number
  /** Its place in the group (Parley): the sender's socket is the one with the sender's `member`. */
  member?: number
}

/** One group's sender: it POSTs its messages to `url` on `node` (or, Parley, sends them over its socket on that node). */
export interface SenderSpec {
  group: number
  /** Parley: which member of the group sends; its socket (on `node`) carries the `send` frames. */
  member?: number
  node: number
  url: string
  token?: string
  /** The JSON body without `content`. */
  body: Record<string, string>
}

export interface Plan {
  system: SystemName
  sockets: SocketSpec[]
  senders: SenderSpec[]
  groupSize: number
}

export interface Running {
  name: SystemName
  procs: ChildProcess[]
  bases: string[]
  /** Users in groups of `groupSize`, member i of a group on node i % nodes, the group's sender on node g % nodes. */
  seed(groups: number, groupSize: number): Promise<Plan>
  stop(): Promise<void>
}

const PARLEY_ENV = {
  NODE_ENV: 'production',
  JWT_SECRET,
  // LOG_LEVEL is left at its default (info: a line per request received and one per response), as users run it;
  // the log goes to a file per node (see startParley). BENCH_PARLEY_LOG_LEVEL=warn measures without it.
  ...(process.env.BENCH_PARLEY_LOG_LEVEL && { LOG_LEVEL: process.env.BENCH_PARLEY_LOG_LEVEL }),
  // The load comes from two local processes at rates far above any person's (a group's sender sends up to
  // 20 msg/s, each WebSocket frame spending the same budget as a request): per-user limits would measure
  // themselves, so the global limit (REST and WebSocket frames) and the auth limits are set out of reach.
  RATE_LIMIT_MAX: '100000000',
  AUTH_RATE_LIMIT_MAX: '100000000',
}

export interface ParleyOptions {
  /** More environment (MESSAGE_BATCH_MAX=1, say). */
  env?: Record<string, string>
  /** Node's own flags for node i (`--cpu-prof`, say). */
  execArgv?: (i: number) => string[]
  /** Where each node's request log goes (node i to `<logDir>/parley-<i>.log`); by default a folder under the OS's temp dir. */
  logDir?: string
}

async function nodeUrls(count: number, start: (i: number) => Promise<{ proc: ChildProcess; base: string }>) {
  const started: { proc: ChildProcess; base: string }[] = []
  // One at a time: the first one migrates.
  for (let i = 0; i < count; i++) started.push(await start(i))
  return { procs: started.map((s) => s.proc), bases: started.map((s) => s.base) }
}

/** Error lines (pino level ≥ 50) in a node's log: a run that logged some says so, with the first. */
function logErrors(file: string): { count: number; first?: string } {
  let count = 0
  let first: string | undefined
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /"level":(\d+)/.exec(line)
      if (m && Number(m[1]) >= 50) {
        count++
        first ??= line.slice(0, 500)
      }
    }
  } catch {
    // no log
  }
  return { count, first }
}

export async function startParley(databaseUrl: string, nodes = 2, opts: ParleyOptions = {}): Promise<Running> {
  const logDir = opts.logDir ?? path.join(tmpdir(), 'parley-bench-logs')
  mkdirSync(logDir, { recursive: true })
  const logs: string[] = []
  const { procs, bases } = await nodeUrls(nodes, async (i) => {
    // The port is chosen here and readiness is asked for, rather than read from the start-up line.
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const logFile = path.join(logDir, `parley-${i}.log`)
    logs.push(logFile)
    const fd = openSync(logFile, 'w')
    const proc = spawnNode('src/server.ts', { ...PARLEY_ENV, ...opts.env, PORT: String(port), DATABASE_URL: databaseUrl }, { stdout: fd, execArgv: opts.execArgv?.(i) })
    closeSync(fd)
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`Parley exited with ${proc.exitCode}; its log: ${logFile}`)
      const ok = await fetch(`${base}/health/ready`).then((r) => r.ok, () => false)
      if (ok) return { proc, base }
      await new Promise((r) => setTimeout(r, 100))
    }
  })
  const db = new pg.Pool({ connectionString: databaseUrl, max: 2 })
  return {
    name: 'parley',
    procs,
    bases,
    async seed(groups, groupSize) {
      // Users straight into the table (one real argon2id hash for all, nobody logs in), each with an open
      // session as a login makes one (no refresh token: nobody refreshes), and tokens minted for them.
      const hash = await argon2.hash('bench-password', { type: argon2.argon2id })
      const run = Date.now().toString(36)
      const { rows } = await db.query<{ id: string; sid: string }>(
        `WITH u AS (
           INSERT INTO users (username, display_name, password_hash)
           SELECT 'b' || $1 || '_' || i, 'Bench user ' || i, $2 FROM generate_series(1, $3::int) i
           RETURNING id, username)
         , s AS (INSERT INTO sessions (id, user_id, user_agent) SELECT gen_random_uuid(), id, 'parley-bench' FROM u RETURNING id, user_id)
         SELECT u.id, s.id AS sid FROM u JOIN s ON s.user_id = u.id`,
        [run, hash, groups * groupSize],
      )
      const users = rows.map((r) => ({ id: r.id, token: mintToken(r.id, r.sid) }))
      const sockets: SocketSpec[] = []
      const senders: SenderSpec[] = []
      // Groups through the API, as a client makes them (their creation events go through the triggers).
      const createGroup = async (g: number) => {
        const members = users.slice(g * groupSize, (g + 1) * groupSize)
        const res = await fetch(`${bases[0]}/conversations`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${members[0].token}` },
          body: JSON.stringify({ is_group: true, name: `group ${g}`, participant_ids: members.slice(1).map((m) => m.id) }),
        })
        if (res.status !== 201) throw new Error(`creating a group: ${res.status} ${await res.text()}`)
        const conv = (await res.json()) as { id: string }
        members.forEach((m, i) => sockets.push({ group: g, member: i, node: i % bases.length, url: `${bases[i % bases.length].replace('http', 'ws')}/ws?token=${m.token}` }))
        // The sender is the member whose socket is on the sender's node: a `send` frame goes over that socket.
        const node = g % bases.length
        const member = node
        senders.push({ group: g, member, node, url: `${bases[node]}/messages`, token: members[member].token, body: { conversation_id: conv.id } })
      }
      for (let g = 0; g < groups; g += 8) await Promise.all(Array.from({ length: Math.min(8, groups - g) }, (_, i) => createGroup(g + i)))
      return { system: 'parley', sockets: sockets.sort((a, b) => a.group - b.group), senders: senders.sort((a, b) => a.group - b.group), groupSize }
    },
    async stop() {
      await db.end()
      await stop(procs)
      for (const file of logs) {
        const errors = logErrors(file)
        if (errors.count > 0) process.stderr.write(`${file}: ${errors.count} error lines, the first: ${errors.first}\n`)
      }
    },
  }
}

/** The peer and the floor: one node script each, rooms named after the group. */
async function startRoomSystem(name: 'peer' | 'floor', script: string, databaseUrl: string, nodes: number): Promise<Running> {
  const { procs, bases } = await nodeUrls(nodes, async () => {
    const { proc, ready } = await startNode(script, { DATABASE_URL: databaseUrl }, /listening on (http:\/\/\S+)/)
    return { proc, base: ready }
  })
  return {
    name,
    procs,
    bases,
    async seed(groups, groupSize) {
      const sockets: SocketSpec[] = []
      const senders: SenderSpec[] = []
      for (let g = 0; g < groups; g++) {
        for (let i = 0; i < groupSize; i++) {
          const node = i % bases.length
          sockets.push({ group: g, node, url: name === 'peer' ? bases[node] : `${bases[node].replace('http', 'ws')}/`, rooms: [`g${g}`] })
        }
        const node = g % bases.length
        senders.push({ group: g, node, url: `${bases[node]}/send`, body: { room: `g${g}` } })
      }
      return { system: name, sockets, senders, groupSize }
    },
    stop: () => stop(procs),
  }
}

export const startPeer = (databaseUrl: string, nodes = 2) => startRoomSystem('peer', 'bench/peer-node.ts', databaseUrl, nodes)
export const startFloor = (databaseUrl: string, nodes = 2) => startRoomSystem('floor', 'bench/floor-node.ts', databaseUrl, nodes)
