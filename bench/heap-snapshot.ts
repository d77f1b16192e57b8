// A .heapsnapshot as arrays: parsed without JSON.parse of the whole file (it may be larger than a string may be),
// and its dominator tree (Cooper, Harvey and Kennedy). bench/heap-growth.ts attributes its bytes.
import { closeSync, openSync, readSync } from 'node:fs'

export interface Snapshot {
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

export function readSnapshot(file: string): Snapshot {
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
export function dominators(s: Snapshot) {
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
