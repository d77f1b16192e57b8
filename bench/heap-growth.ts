// The heap's growth between two snapshots (bench/idle-sockets.ts): each node's self size given to its nearest
// dominator of a known kind (ws WebSocket, Receiver, net.Socket, the Hub...), tallied per socket.
import { dominators, readSnapshot, type Snapshot } from './heap-snapshot.ts'

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

/** Prints the heap's growth from `beforeFile` to `afterFile`, per socket of `N`. */
export function printGrowth(beforeFile: string, afterFile: string, N: number): void {
  const before = attribute(beforeFile)
  const after = attribute(afterFile)
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

/** IDLE_MODE=inspect: a few nodes of one label under one owner kind, with their dominator chains (for the doc). */
export function inspect(file: string, owner: string, label: string) {
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
