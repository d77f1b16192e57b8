// One member of `npm run chaos`: a socket that reconnects and resumes as a careful client does, and records
// every frame it gets; when it is a sender, it retries each unanswered send with the same client_id until
// it is acknowledged, over POST or over its socket's `send` frame.
import WebSocket from 'ws'

export interface Acked {
  clientId: string
  conversationId: string
  id: string
  seq: number
  phase: string
}

export interface SendStats {
  attempts: number
  fiveHundreds: number
  /** client_ids never acknowledged before the run gave up on them. */
  abandoned: string[]
}

/** What one socket saw: each conversation's seqs, and what broke the promise. */
export interface Seen {
  bySeq: Map<number, string | undefined>
  /** Each message's seq, by id. */
  byId: Map<string, number>
  /** Below this seq, nothing is missing. */
  contiguous: number
}

const BACKOFF_MS = [100, 200, 400, 800, 1000]

export class Member {
  readonly seen = new Map<string, Seen>()
  /** After `resumed` on a connection, a seq that is not the next one (a gap, or one that comes late). */
  outOfOrder = 0
  /** The same seq twice on one connection. */
  duplicates = 0
  /** The same seq again on a later connection (a replay overlapping what arrived live before it): allowed. */
  redelivered = 0
  /** One message id under two seqs: a retry stored twice. */
  twice = 0
  connections = 0
  /** The first few frames that broke the order, for the report: what was expected and what came. */
  readonly anomalies: string[] = []
  private socket: WebSocket | undefined
  private live = false
  private onResumed: Array<() => void> = []
  private awaiting = new Map<string, (frame: { type: string; data?: { id: string; seq: number } }) => void>()
  private stopped = false
  private refs = 0

  constructor(
    readonly wsUrl: string,
    readonly userId: string,
    readonly token: string,
    readonly conversations: string[],
  ) {
    for (const c of conversations) this.seen.set(c, { bySeq: new Map(), byId: new Map(), contiguous: 0 })
  }

  get isLive(): boolean {
    return this.live
  }

  connect(): void {
    if (this.stopped) return
    const ws = new WebSocket(`${this.wsUrl}?token=${this.token}`)
    this.socket = ws
    this.live = false
    const thisConnection = new Map<string, number>()
    let attempt = 0
    ws.on('open', () => {
      this.connections++
      attempt = 0
      ws.send(JSON.stringify({ type: 'resume', conversations: Object.fromEntries([...this.seen].map(([c, s]) => [c, s.contiguous])) }))
    })
    ws.on('message', (raw) => {
      const frame = JSON.parse(raw.toString())
      if (frame.type === 'resumed') {
        this.live = true
        for (const done of this.onResumed.splice(0)) done()
      } else if ((frame.type === 'ack' || frame.type === 'error') && frame.ref !== undefined) {
        const done = this.awaiting.get(frame.ref)
        this.awaiting.delete(frame.ref)
        done?.(frame)
      } else if (frame.seq !== undefined && this.seen.has(frame.conversation_id)) {
        this.record(frame, thisConnection)
      }
    })
    ws.on('error', () => {})
    ws.on('close', () => {
      this.live = false
      for (const [ref, done] of this.awaiting) (this.awaiting.delete(ref), done({ type: 'closed' }))
      if (this.stopped) return
      const delay = BACKOFF_MS[Math.min(attempt++, BACKOFF_MS.length - 1)] * (0.5 + Math.random())
      setTimeout(() => this.connect(), delay)
    })
  }

  private record(frame: { conversation_id: string; seq: number; type: string; data?: { id?: string } }, thisConnection: Map<string, number>): void {
    const seen = this.seen.get(frame.conversation_id)!
    const last = thisConnection.get(frame.conversation_id)
    const note = (what: string) => {
      if (this.anomalies.length < 5) this.anomalies.push(`${what}: ${frame.type} seq ${frame.seq} on connection ${this.connections} (${this.live ? 'after' : 'before'} resumed), this connection's last ${last}, contiguous ${seen.contiguous}`)
    }
    if (last !== undefined && frame.seq <= last) {
      if (seen.bySeq.has(frame.seq)) (this.duplicates++, note('duplicate'))
      // Before `resumed`, a lower seq is the replay filling in under live events that overtook it, which a
      // client puts in order itself (docs/PROTOCOL.md); after it, nothing may come late.
      else if (this.live) (this.outOfOrder++, note('late'))
    } else if (this.live && frame.seq !== seen.contiguous + 1 && !seen.bySeq.has(frame.seq)) {
      // After `resumed`, everything before this seq has been delivered: a jump is a gap.
      this.outOfOrder++
      note('gap')
    } else if (seen.bySeq.has(frame.seq)) {
      this.redelivered++
    }
    thisConnection.set(frame.conversation_id, Math.max(last ?? 0, frame.seq))
    const id = frame.type === 'new_message' ? frame.data?.id : undefined
    if (id !== undefined) {
      const earlier = seen.byId.get(id)
      if (earlier !== undefined && earlier !== frame.seq) this.twice++
      seen.byId.set(id, frame.seq)
    }
    seen.bySeq.set(frame.seq, id)
    while (seen.bySeq.has(seen.contiguous + 1)) seen.contiguous++
  }

  /** Sends one more `resume` on the open socket and waits for its `resumed` (false if the socket is not open). */
  async resumeAgain(timeoutMs: number): Promise<boolean> {
    const ws = this.socket
    if (!ws || ws.readyState !== WebSocket.OPEN || !this.live) return false
    this.live = false
    const resumed = new Promise<boolean>((resolve) => {
      this.onResumed.push(() => resolve(true))
      setTimeout(() => resolve(false), timeoutMs).unref()
    })
    ws.send(JSON.stringify({ type: 'resume', conversations: Object.fromEntries([...this.seen].map(([c, s]) => [c, s.contiguous])) }))
    return resumed
  }

  /** A `send` frame; the ack's message, or undefined if the socket closed, an error came, or none came in time. */
  sendFrame(conversationId: string, content: string, clientId: string, timeoutMs: number): Promise<{ id: string; seq: number } | undefined> {
    const ws = this.socket
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.resolve(undefined)
    const ref = String(++this.refs)
    return new Promise((resolve) => {
      const timer = setTimeout(() => (this.awaiting.delete(ref), resolve(undefined)), timeoutMs)
      this.awaiting.set(ref, (frame) => {
        clearTimeout(timer)
        resolve(frame.type === 'ack' ? frame.data : undefined)
      })
      ws.send(JSON.stringify({ type: 'send', ref, conversation_id: conversationId, content, client_id: clientId }))
    })
  }

  stop(): void {
    this.stopped = true
    this.socket?.terminate()
  }
}

/** A POST /messages through the load balancer: the message, or undefined (and whether it was a 5xx). */
export async function postMessage(base: string, token: string, conversationId: string, content: string, clientId: string, timeoutMs: number) {
  try {
    const res = await fetch(`${base}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ conversation_id: conversationId, content, client_id: clientId }),
      signal: AbortSignal.timeout(timeoutMs),
    })
    const body = await res.json().catch(() => undefined)
    return { message: res.ok ? (body as { id: string; seq: number }) : undefined, fiveHundred: res.status >= 500 }
  } catch {
    return { message: undefined, fiveHundred: false }
  }
}

/**
 * Sends until acknowledged, as a real client does: the same client_id every time, a pause between tries,
 * over POST or over the sender's socket (when it is closed, the try waits for it to reopen).
 */
export async function sendUntilAcked(
  via: 'post' | 'ws',
  sender: Member,
  base: string,
  conversationId: string,
  content: string,
  clientId: string,
  opts: { deadline: () => number; stats: SendStats; timeoutMs: number },
): Promise<{ id: string; seq: number } | undefined> {
  while (Date.now() < opts.deadline()) {
    opts.stats.attempts++
    let message: { id: string; seq: number } | undefined
    if (via === 'post') {
      const res = await postMessage(base, sender.token, conversationId, content, clientId, opts.timeoutMs)
      if (res.fiveHundred) opts.stats.fiveHundreds++
      message = res.message
    } else {
      message = await sender.sendFrame(conversationId, content, clientId, opts.timeoutMs)
    }
    if (message) return message
    await new Promise((resolve) => setTimeout(resolve, 200 + Math.random() * 200))
  }
  opts.stats.abandoned.push(clientId)
  return undefined
}
