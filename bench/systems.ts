// The three systems the benchmark drives with the same load: Parley, the peer (Socket.IO + its PostgreSQL
// adapter) and the floor (bare INSERT + NOTIFY → LISTEN → ws.send). Each starts N real nodes on one
// database and seeds users and groups; the workers then see them all through the same Plan.
import type { ChildProcess } from 'node:child_process'
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
}

/** One group's sender: it POSTs its messages to `url` on `node`. */
export interface SenderSpec {
  group: number
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
  LOG_LEVEL: 'warn',
  // The load comes from two local processes at rates far above any person's: per-client limits would measure themselves.
  RATE_LIMIT_MAX: '100000000',
  AUTH_RATE_LIMIT_MAX: '100000000',
}

async function nodeUrls(count: number, start: (i: number) => Promise<{ proc: ChildProcess; base: string }>) {
  const started: { proc: ChildProcess; base: string }[] = []
  // One at a time: the first one migrates.
  for (let i = 0; i < count; i++) started.push(await start(i))
  return { procs: started.map((s) => s.proc), bases: started.map((s) => s.base) }
}

export async function startParley(databaseUrl: string, nodes = 2, env: Record<string, string> = {}): Promise<Running> {
  const { procs, bases } = await nodeUrls(nodes, async () => {
    // Request logs off (the peer and the floor log nothing either), so the port is chosen here and
    // readiness is asked for rather than read from the start-up line.
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const proc = spawnNode('src/server.ts', { ...PARLEY_ENV, ...env, PORT: String(port), DATABASE_URL: databaseUrl })
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`Parley exited with ${proc.exitCode}`)
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
      // Users straight into the table (one real argon2id hash for all, nobody logs in); tokens minted.
      const hash = await argon2.hash('bench-password', { type: argon2.argon2id })
      const run = Date.now().toString(36)
      const { rows } = await db.query<{ id: string }>(
        `INSERT INTO users (username, display_name, password_hash)
         SELECT 'b' || $1 || '_' || i, 'Bench user ' || i, $2 FROM generate_series(1, $3::int) i
         RETURNING id`,
        [run, hash, groups * groupSize],
      )
      const users = rows.map((r) => ({ id: r.id, token: mintToken(r.id) }))
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
        members.forEach((m, i) => sockets.push({ group: g, node: i % bases.length, url: `${bases[i % bases.length].replace('http', 'ws')}/ws?token=${m.token}` }))
        const node = g % bases.length
        senders.push({ group: g, node, url: `${bases[node]}/messages`, token: members[0].token, body: { conversation_id: conv.id } })
      }
      for (let g = 0; g < groups; g += 8) await Promise.all(Array.from({ length: Math.min(8, groups - g) }, (_, i) => createGroup(g + i)))
      return { system: 'parley', sockets: sockets.sort((a, b) => a.group - b.group), senders: senders.sort((a, b) => a.group - b.group), groupSize }
    },
    async stop() {
      await db.end()
      await stop(procs)
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
