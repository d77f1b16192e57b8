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
import { closeSync, openSync, readSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import v8 from 'node:v8'
import vm from 'node:vm'

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

    // Users with real sessions. The first registers through the API; the others (N argon2id hashes would
    // take minutes) are inserted with its password hash and a session row each, and get tokens signed by
    // the app's own key, as /auth/register signs them (sub, sid).
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
    const users = [
      { id: registered.user.id, token: registered.access_token },
      ...rows.map((r) => ({ id: r.id, token: app.jwt.sign({ sub: r.id, sid: r.sid }) })),
    ]
    // Groups of 10 through the API, as the bench makes them: each socket's user is in one conversation.
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
    const urlsFile = path.join(dir, 'urls.json')
    await writeFile(urlsFile, JSON.stringify(users.map((u) => `ws://127.0.0.1:${port}/ws?token=${u.token}`)))
    log(`${N} users, ${groups} groups; server pid ${process.pid}`)

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

// ---------------------------------------------------------------------------------------------------------
// The analysis: a .heapsnapshot parsed without JSON.parse of the whole file (it may be larger than a string
// may be), its dominator tree (Cooper, Harvey and Kennedy), and each node's self size given to its nearest
// dominator of a known kind.

interface Snapshot {
  nodeCount: number
  /** Per node: the index of its type in `types`, of its name in `strings`, its self size, its first edge. */
  type: Uint8Array
  name: Uint32Array
  size: Float64Array
  firstEdge: Uint32Array
  /** Per edge: its type, and the index of the node it points to. */
  edgeType: Uint8Array
  edgeName: Uint32Array
  edgeTo: Uint32Array
  types: string[]
  edgeTypes: string[]
  strings: string[]
}

function readSnapshot(file: string): Snapshot {
  const fd = openSync(file, 'r')
  const chunk = Buffer.allocUnsafe(1 << 24)
  let pos = 0
  let len = 0
  let off = 0
  const fill = () => {
    if (off < len) return true
    len = readSync(fd, chunk, 0, chunk.length, pos)
    pos += len
    off = 0
    return len > 0
  }
  // The meta object comes first and is small: read until `"nodes":[`.
  let head = ''
  while (!head.includes('"nodes":[')) {
    const n = readSync(fd, chunk, 0, 65536, pos)
    if (n === 0) throw new Error('no nodes in snapshot')
    head += chunk.toString('latin1', 0, n)
    pos += n
  }
  const at = head.indexOf('"nodes":[')
  const meta = JSON.parse(`${head.slice(0, at).replace(/,\s*$/, '')}}`).snapshot
  pos = Buffer.byteLength(head.slice(0, at + '"nodes":['.length), 'latin1')
  len = off = 0
  const nodeFields: string[] = meta.meta.node_fields
  const edgeFields: string[] = meta.meta.edge_fields
  const nodeCount: number = meta.node_count
  const edgeCount: number = meta.edge_count
  /** Reads the next `count` integers of the current array into `sink(i, value)`. */
  const readInts = (count: number, sink: (i: number, v: number) => void) => {
    let i = 0
    let v = 0
    let inNum = false
    while (i < count && fill()) {
      for (; off < len && i < count; off++) {
        const c = chunk[off]
        if (c >= 48 && c <= 57) {
          v = v * 10 + (c - 48)
          inNum = true
        } else if (inNum) {
          sink(i++, v)
          v = 0
          inNum = false
        }
      }
    }
    if (inNum && i < count) sink(i++, v)
    if (i !== count) throw new Error(`read ${i} of ${count} numbers`)
  }
  const seek = (marker: string) => {
    const m = Buffer.from(marker)
    let k = 0
    while (fill()) {
      for (; off < len; off++) {
        k = chunk[off] === m[k] ? k + 1 : chunk[off] === m[0] ? 1 : 0
        if (k === m.length) {
          off++
          return
        }
      }
    }
    throw new Error(`${marker} not found`)
  }
  const nf = nodeFields.length
  const fType = nodeFields.indexOf('type')
  const fName = nodeFields.indexOf('name')
  const fSize = nodeFields.indexOf('self_size')
  const fEdges = nodeFields.indexOf('edge_count')
  const type = new Uint8Array(nodeCount)
  const name = new Uint32Array(nodeCount)
  const size = new Float64Array(nodeCount)
  const edgesOf = new Uint32Array(nodeCount)
  readInts(nodeCount * nf, (i, v) => {
    const n = (i / nf) | 0
    const f = i - n * nf
    if (f === fType) type[n] = v
    else if (f === fName) name[n] = v
    else if (f === fSize) size[n] = v
    else if (f === fEdges) edgesOf[n] = v
  })
  const firstEdge = new Uint32Array(nodeCount + 1)
  for (let n = 0; n < nodeCount; n++) firstEdge[n + 1] = firstEdge[n] + edgesOf[n]
  seek('"edges":[')
  const ef = edgeFields.length
  const eType = edgeFields.indexOf('type')
  const eTo = edgeFields.indexOf('to_node')
  const eName = edgeFields.indexOf('name_or_index')
  const edgeName = new Uint32Array(edgeCount)
  const edgeType = new Uint8Array(edgeCount)
  const edgeTo = new Uint32Array(edgeCount)
  readInts(edgeCount * ef, (i, v) => {
    const e = (i / ef) | 0
    const f = i - e * ef
    if (f === eType) edgeType[e] = v
    else if (f === eTo) edgeTo[e] = v / nf
    else if (f === eName) edgeName[e] = v
  })
  seek('"strings":[')
  // Strings: JSON string literals, one after another.
  const strings: string[] = []
  let inStr = false
  let escaped = false
  let hasEscape = false
  const bytes: Buffer[] = []
  outer: while (fill()) {
    let start = off
    for (; off < len; off++) {
      const c = chunk[off]
      if (!inStr) {
        if (c === 34) {
          inStr = true
          hasEscape = false
          start = off + 1
        } else if (c === 93) break outer
        continue
      }
      if (escaped) {
        escaped = false
        continue
      }
      if (c === 92) {
        escaped = hasEscape = true
        continue
      }
      if (c === 34) {
        bytes.push(chunk.subarray(start, off))
        const raw = Buffer.concat(bytes).toString('utf8')
        bytes.length = 0
        strings.push(hasEscape ? (JSON.parse(`"${raw}"`) as string) : raw)
        inStr = false
      }
    }
    if (inStr) bytes.push(Buffer.from(chunk.subarray(start, len)))
  }
  closeSync(fd)
  return { nodeCount, type, name, size, firstEdge, edgeType, edgeName, edgeTo, types: meta.meta.node_types[0], edgeTypes: meta.meta.edge_types[0], strings }
}

/** Immediate dominators (node 0 is the root), and the nodes in DFS postorder. Weak edges do not retain. */
function dominators(s: Snapshot) {
  const n = s.nodeCount
  const weak = s.edgeTypes.indexOf('weak')
  const post = new Int32Array(n).fill(-1) // node → postorder number
  const order = new Uint32Array(n) // postorder number → node
  let count = 0
  // Iterative DFS.
  const stack = new Uint32Array(n)
  const edgeAt = new Uint32Array(n)
  const seen = new Uint8Array(n)
  let sp = 0
  stack[sp++] = 0
  seen[0] = 1
  edgeAt[0] = s.firstEdge[0]
  while (sp > 0) {
    const v = stack[sp - 1]
    let pushed = false
    while (edgeAt[v] < s.firstEdge[v + 1]) {
      const e = edgeAt[v]++
      if (s.edgeType[e] === weak) continue
      const w = s.edgeTo[e]
      if (!seen[w]) {
        seen[w] = 1
        edgeAt[w] = s.firstEdge[w]
        stack[sp++] = w
        pushed = true
        break
      }
    }
    if (!pushed) {
      sp--
      post[v] = count
      order[count++] = v
    }
  }
  // Predecessors (reachable ones only), as CSR.
  const predCount = new Uint32Array(n + 1)
  for (let v = 0; v < n; v++) {
    if (post[v] < 0) continue
    for (let e = s.firstEdge[v]; e < s.firstEdge[v + 1]; e++) if (s.edgeType[e] !== weak) predCount[s.edgeTo[e] + 1]++
  }
  for (let v = 0; v < n; v++) predCount[v + 1] += predCount[v]
  const preds = new Uint32Array(predCount[n])
  const fillAt = predCount.slice(0, n)
  for (let v = 0; v < n; v++) {
    if (post[v] < 0) continue
    for (let e = s.firstEdge[v]; e < s.firstEdge[v + 1]; e++) if (s.edgeType[e] !== weak) preds[fillAt[s.edgeTo[e]]++] = v
  }
  // idom by postorder number; -1 undefined.
  const idom = new Int32Array(count).fill(-1)
  const root = post[0]
  idom[root] = root
  const intersect = (a: number, b: number) => {
    while (a !== b) {
      while (a < b) a = idom[a]
      while (b < a) b = idom[b]
    }
    return a
  }
  for (let changed = true; changed; ) {
    changed = false
    for (let i = count - 1; i >= 0; i--) {
      if (i === root) continue
      const v = order[i]
      let d = -1
      for (let p = predCount[v]; p < predCount[v + 1]; p++) {
        const q = post[preds[p]]
        if (q < 0 || idom[q] < 0) continue
        d = d < 0 ? q : intersect(q, d)
      }
      if (d >= 0 && idom[i] !== d) {
        idom[i] = d
        changed = true
      }
    }
  }
  return { idom, order, count }
}

// The kinds a byte is given to: its nearest dominator of one of these constructors (else "(other)").
const OWNERS = new Set([
  'WebSocket', 'Receiver', 'Sender', 'Socket', 'TCP', 'TCPWrap', 'IncomingMessage', 'ServerResponse', 'HTTPParser',
  'Request', 'Reply', 'Connection', 'Hub', 'WebSocketServer', 'Timeout', 'Pino', 'Listener', 'Server', 'Presence',
])

function labelOf(s: Snapshot, v: number): string {
  const t = s.types[s.type[v]]
  const name = s.strings[s.name[v]]
  if (t === 'object' || t === 'native') return name
  if (t === 'closure') return `(closure ${name || 'anonymous'})`
  if (t === 'string' || t === 'concatenated string' || t === 'sliced string') return '(string)'
  return `(${t}${t === 'hidden' || t === 'array' || t === 'code' ? ` ${name.slice(0, 40)}` : ''})`
}

function attribute(file: string) {
  const s = readSnapshot(file)
  const { idom, order, count } = dominators(s)
  const ownerKind = new Array<string>(count)
  const byOwner = new Map<string, Map<string, { size: number; count: number }>>()
  const instances = new Map<string, { count: number; retained: number }>()
  const retained = new Float64Array(count)
  for (let i = 0; i < count; i++) retained[i] = s.size[order[i]]
  // Postorder: a node's dominator comes after it.
  for (let i = 0; i < count; i++) if (idom[i] !== i) retained[idom[i]] += retained[i]
  for (let i = count - 1; i >= 0; i--) {
    const v = order[i]
    const label = labelOf(s, v)
    const t = s.types[s.type[v]]
    const own = (t === 'object' || t === 'native') && OWNERS.has(label)
    const kind = own ? label : idom[i] === i ? '(other)' : ownerKind[idom[i]]
    ownerKind[i] = kind
    if (own) {
      const c = instances.get(label) ?? { count: 0, retained: 0 }
      c.count++
      c.retained += retained[i]
      instances.set(label, c)
    }
    let m = byOwner.get(kind)
    if (!m) byOwner.set(kind, (m = new Map()))
    const e = m.get(label) ?? { size: 0, count: 0 }
    e.size += s.size[v]
    e.count++
    m.set(label, e)
  }
  return { byOwner, instances }
}

async function analyzeMain() {
  const before = attribute(process.env.IDLE_BEFORE!)
  const after = attribute(process.env.IDLE_AFTER!)
  const rows: { owner: string; bytes: number; top: string }[] = []
  let total = 0
  for (const [owner, m] of after.byOwner) {
    const b = before.byOwner.get(owner) ?? new Map()
    let bytes = 0
    const parts: { label: string; size: number; count: number }[] = []
    for (const [label, e] of m) {
      const was = b.get(label) ?? { size: 0, count: 0 }
      bytes += e.size - was.size
      parts.push({ label, size: e.size - was.size, count: e.count - was.count })
    }
    for (const [label, was] of b) if (!m.has(label)) {
      bytes -= was.size
      parts.push({ label, size: -was.size, count: -was.count })
    }
    total += bytes
    parts.sort((x, y) => Math.abs(y.size) - Math.abs(x.size))
    const top = parts
      .filter((p) => Math.abs(p.size) / N >= 8)
      .slice(0, 8)
      .map((p) => `${p.label} ${Math.round(p.size / N)} B (${(p.count / N).toFixed(2)}×)`)
      .join(', ')
    rows.push({ owner, bytes, top })
  }
  rows.sort((x, y) => y.bytes - x.bytes)
  console.log(`\nHeap growth per socket, by the nearest dominating object of a known kind (bytes per socket; ×: objects per socket):`)
  for (const r of rows) if (Math.abs(r.bytes) / N >= 4) console.log(`${r.owner.padEnd(16)} ${String(Math.round(r.bytes / N)).padStart(6)} B   ${r.top}`)
  console.log(`${'total'.padEnd(16)} ${String(Math.round(total / N)).padStart(6)} B`)
  console.log(`\nInstances per socket and their mean retained size (after):`)
  for (const [label, c] of [...after.instances].sort((x, y) => y[1].count - x[1].count)) {
    const was = before.instances.get(label) ?? { count: 0, retained: 0 }
    const dc = c.count - was.count
    if (dc / N < 0.5) continue
    console.log(`${label.padEnd(16)} ${(dc / N).toFixed(2)} per socket, retained ${Math.round((c.retained - was.retained) / dc)} B each`)
  }
}

if (mode === 'client') await client()
else if (process.env.IDLE_SPAWN === '1') await spawned()
else if (mode === 'inspect') inspect(process.env.IDLE_AFTER!, process.env.IDLE_OWNER!, process.env.IDLE_LABEL!)
else if (mode === 'analyze') await analyzeMain()
else await server()

/** IDLE_MODE=inspect: a few nodes of one label under one owner kind, with their dominator chains (for the doc). */
function inspect(file: string, owner: string, label: string) {
  const s = readSnapshot(file)
  const { idom, order, count } = dominators(s)
  const post = new Int32Array(s.nodeCount).fill(-1)
  for (let i = 0; i < count; i++) post[order[i]] = i
  const kind = new Array<string>(count)
  let shown = 0
  let matched = 0
  const describe = (v: number) => `${labelOf(s, v)}${s.types[s.type[v]] === 'string' ? ` "${s.strings[s.name[v]].slice(0, 60)}"` : ''} ${s.size[v]} B`
  // Who points at v, and by which edge.
  const retainers = (v: number) => {
    const out: string[] = []
    for (let u = 0; u < s.nodeCount && out.length < 4; u++) {
      for (let e = s.firstEdge[u]; e < s.firstEdge[u + 1]; e++) {
        if (s.edgeTo[e] !== v) continue
        const et = s.edgeTypes[s.edgeType[e]]
        const en = et === 'element' || et === 'hidden' ? `[${s.edgeName[e]}]` : s.strings[s.edgeName[e]]
        out.push(`${labelOf(s, u)}.${en} (${et})`)
      }
    }
    return out
  }
  for (let i = count - 1; i >= 0 && shown < Number(process.env.IDLE_SHOW ?? 3); i--) {
    const v = order[i]
    const l = labelOf(s, v)
    const t = s.types[s.type[v]]
    const own = (t === 'object' || t === 'native') && OWNERS.has(l)
    kind[i] = own ? l : idom[i] === i ? '(other)' : kind[idom[i]]
    if (kind[i] !== owner || l !== label) continue
    // Every 997th match: a spread of them, not the first few of the heap.
    if (matched++ % 997 !== 0) continue
    shown++
    const chain: string[] = []
    for (let j = i, k = 0; j !== idom[j] && k < 8; j = idom[j], k++) chain.push(describe(order[j]))
    console.log(`\n${chain.join('\n  dominated by ')}\n  retainers: ${retainers(v).join('; ')}`)
  }
}

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
      const first = await fetch(`${base}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'idle_first', password: 'Passw0rd-idle' }) })
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
