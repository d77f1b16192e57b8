// One WebSocket to `/ws`: the token as the `bearer.` subprotocol (kept out of URLs and access logs), requests
// answered by `ack`/`error` with their `ref`, and a watchdog: browsers cannot see the server's pings, so the
// client pings itself, and a socket that stays silent after a ping is taken for dead (a stalled network
// closes nothing).
import { ParleyError, type RawFrame } from './types.ts'

/** What the SDK uses of a WebSocket: the browser's, Node 22's global one, and the `ws` package all have it. */
export interface WebSocketLike {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: { code: number; reason: string }) => void) | null
  onerror: ((ev: unknown) => void) | null
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike

export interface SocketHandlers {
  open(): void
  frame(frame: RawFrame): void
  /** Once, however it ended; code 0 when the watchdog gave up on it. */
  closed(code: number, reason: string): void
}

export interface SocketTiming {
  /** A ping this often; a socket that said nothing between two pings is dead, and so is one not open after two. */
  pingIntervalMs: number
  ackTimeoutMs: number
}

const OPEN = 1
/** Close code reported when the watchdog gave up on a silent socket. */
export const STALLED = 0

export class LiveSocket {
  private pending = new Map<string, { resolve(f: RawFrame): void; reject(e: Error): void }>()
  private refs = 0
  private ended = false
  private heard = true
  private watchdog: ReturnType<typeof setInterval> | ReturnType<typeof setTimeout> | undefined
  private readonly ws: WebSocketLike

  constructor(url: string, token: string, Impl: WebSocketConstructor, private readonly timing: SocketTiming, private readonly on: SocketHandlers) {
    this.ws = new Impl(url, [`bearer.${token}`])
    // An upgrade that never completes (a dead path, a hung balancer) is given up like a silent socket.
    this.watchdog = setTimeout(() => this.close(STALLED, 'not open in time'), 2 * timing.pingIntervalMs)
    this.ws.onopen = () => {
      clearTimeout(this.watchdog)
      this.startWatchdog()
      on.open()
    }
    this.ws.onmessage = (ev) => this.receive(String(ev.data))
    this.ws.onclose = (ev) => this.end(ev.code, ev.reason)
    this.ws.onerror = () => {} // a close follows
  }

  get open(): boolean {
    return !this.ended && this.ws.readyState === OPEN
  }

  send(frame: object): void {
    if (this.open) this.ws.send(JSON.stringify(frame))
  }

  /** Sends a frame with a fresh `ref`; resolves with its `ack`, rejects with its `error` (or if the socket ends first). */
  request(frame: object): Promise<RawFrame> {
    if (!this.open) return Promise.reject(new ParleyError('NOT_CONNECTED', 'the socket is not open'))
    const ref = `r${++this.refs}`
    return new Promise<RawFrame>((resolve, reject) => {
      const timer = setTimeout(() => settle(() => reject(new ParleyError('ACK_TIMEOUT', 'no answer in time'))), this.timing.ackTimeoutMs)
      const settle = (fn: () => void) => {
        clearTimeout(timer)
        this.pending.delete(ref)
        fn()
      }
      this.pending.set(ref, { resolve: (f) => settle(() => resolve(f)), reject: (e) => settle(() => reject(e)) })
      this.ws.send(JSON.stringify({ ...frame, ref }))
    })
  }

  /** Closes it and reports it closed now, without waiting for a closing handshake a dead network never completes. */
  close(code = 1000, reason = ''): void {
    try {
      this.ws.close(1000, reason)
    } catch {
      // already closing
    }
    this.end(code, reason)
  }

  private receive(text: string): void {
    this.heard = true
    let frame: RawFrame
    try {
      frame = JSON.parse(text)
    } catch {
      return
    }
    const waiter = frame.ref === undefined ? undefined : this.pending.get(frame.ref)
    if (waiter && frame.type === 'ack') return waiter.resolve(frame)
    if (waiter && frame.type === 'error') return waiter.reject(new ParleyError(frame.code ?? 'ERROR', frame.error ?? 'refused'))
    this.on.frame(frame)
  }

  private startWatchdog(): void {
    this.watchdog = setInterval(() => {
      if (!this.heard) return this.close(STALLED, 'no answer to a ping')
      this.heard = false
      this.send({ type: 'ping' })
    }, this.timing.pingIntervalMs)
  }

  private end(code: number, reason: string): void {
    if (this.ended) return
    this.ended = true
    clearInterval(this.watchdog as ReturnType<typeof setInterval>)
    clearTimeout(this.watchdog as ReturnType<typeof setTimeout>)
    this.ws.onopen = this.ws.onmessage = this.ws.onclose = null
    for (const w of [...this.pending.values()]) w.reject(new ParleyError('DISCONNECTED', 'the socket closed before an answer'))
    this.on.closed(code, reason)
  }
}
