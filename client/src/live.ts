// The live connection: one socket at a time, reconnected with jittered backoff, `resume`d from the last seq of
// every conversation seen, its events put in seq order (SeqOrder) before they are handed on.
import { Backoff, type BackoffOptions } from './backoff.ts'
import { SeqOrder } from './ordering.ts'
import { LiveSocket, type SocketTiming, type WebSocketConstructor } from './socket.ts'
import type { TokenManager } from './tokens.ts'
import { type LogEvent, ParleyError, type RawFrame, type ServerEvent } from './types.ts'

export type ConnectionState = 'idle' | 'connecting' | 'resuming' | 'live' | 'offline' | 'closed'

export interface LiveOptions extends SocketTiming {
  baseUrl: string
  WebSocket: WebSocketConstructor
  backoff?: BackoffOptions
}

export interface LiveHandlers {
  event(event: ServerEvent): void
  state(state: ConnectionState, detail?: { code: number; reason: string }): void
}

const UNAUTHORIZED = 4401
const POLICY = 1008
/** The server's RESUME_MAX_CONVERSATIONS (docs/PROTOCOL.md). */
const RESUME_MAX = 1000

export class Live {
  readonly order = new SeqOrder()
  state: ConnectionState = 'idle'
  socket: LiveSocket | undefined
  private readonly backoff: Backoff
  private timer: ReturnType<typeof setTimeout> | undefined
  /** The conversations the resume under way names; undefined when none is. */
  private resuming: string[] | undefined
  /** The rest of a resume naming more conversations than one frame may: sent one after another. */
  private queued: Record<string, number>[] = []
  /** 4401s since the last socket that went live: a token refused again right after a refresh waits a backoff. */
  private refusals = 0
  /** Conversations followed on an open socket, not yet resumed on it. */
  private followed = new Set<string>()

  constructor(private readonly opts: LiveOptions, private readonly tokens: TokenManager, private readonly on: LiveHandlers) {
    this.backoff = new Backoff(opts.backoff)
    // A fresh token reaches the open socket before the server would close it at the old one's expiry.
    tokens.on('tokens', (t) => {
      const socket = this.socket
      if (socket?.open) void socket.request({ type: 'auth', token: t.access_token }).catch(() => socket.close(UNAUTHORIZED, 'auth refused'))
    })
    tokens.on('signed_out', () => this.stop())
  }

  /** Delivers a conversation's events after `lastSeq`; on a live socket, asks for those already missed at once. */
  follow(conversationId: string, lastSeq: number): void {
    for (const e of this.order.follow(conversationId, lastSeq)) this.on.event(e)
    if (this.state !== 'live' && this.state !== 'resuming') return // the next socket's resume names it
    this.followed.add(conversationId)
    if (!this.resuming) this.resumeFollowed()
  }

  start(): void {
    if (this.state !== 'idle' && this.state !== 'closed') return
    this.state = 'idle'
    void this.connect()
  }

  stop(): void {
    clearTimeout(this.timer)
    this.setState('closed')
    this.socket?.close(1000, 'client closed')
    this.socket = undefined
  }

  private setState(state: ConnectionState, detail?: { code: number; reason: string }) {
    this.state = state
    this.on.state(state, detail)
  }

  private async connect(): Promise<void> {
    if (this.state === 'closed') return
    this.setState('connecting')
    let token: string
    try {
      token = await this.tokens.access()
    } catch (err) {
      if (err instanceof ParleyError && err.status === 401) return this.stop()
      return this.retry()
    }
    if (this.state !== 'connecting') return // stopped meanwhile
    const url = `${this.opts.baseUrl.replace(/^http/, 'ws')}/ws`
    const socket: LiveSocket = new LiveSocket(url, token, this.opts.WebSocket, this.opts, {
      open: () => this.opened(),
      frame: (f) => this.frame(f),
      closed: (code, reason) => this.closed(socket, code, reason),
    })
    this.socket = socket
  }

  private opened(): void {
    this.followed.clear()
    const positions = this.order.positions()
    if (Object.keys(positions).length === 0) return this.live()
    this.setState('resuming')
    this.resume(positions)
  }

  private live(): void {
    this.backoff.reset()
    this.refusals = 0
    this.setState('live')
  }

  /** One `resume` frame names at most RESUME_MAX conversations, and one runs at a time per socket. */
  private resume(positions: Record<string, number>): void {
    const entries = Object.entries(positions)
    this.queued = []
    for (let i = 0; i < entries.length; i += RESUME_MAX) this.queued.push(Object.fromEntries(entries.slice(i, i + RESUME_MAX)))
    this.resumeNext()
  }

  private resumeNext(): void {
    const next = this.queued.shift() ?? {}
    this.resuming = Object.keys(next)
    this.socket!.send({ type: 'resume', conversations: next })
  }

  private frame(frame: RawFrame): void {
    if (frame.type === 'resumed') return this.resumed()
    if (frame.type === 'pong' || frame.type === 'error') return
    if (typeof frame.seq !== 'number' || typeof frame.conversation_id !== 'string') return this.on.event(frame as ServerEvent)
    for (const e of this.order.accept(frame as LogEvent)) this.on.event(e)
    // A gap on a live socket (it was closed as too slow, or frames crossed a reconnect): ask for what is missing.
    if (!this.resuming && this.order.gaps().length) this.askForGaps()
  }

  private resumeFollowed(): void {
    const all = this.order.positions()
    this.resume(Object.fromEntries([...this.followed].map((id) => [id, all[id]])))
    this.followed.clear()
  }

  private askForGaps(): void {
    const all = this.order.positions()
    this.resume(Object.fromEntries(this.order.gaps().map((id) => [id, all[id]])))
  }

  private resumed(): void {
    const named = this.resuming ?? []
    this.resuming = undefined
    for (const e of this.order.skipGaps(named)) this.on.event(e)
    if (this.queued.length) return this.resumeNext()
    if (this.state === 'resuming') this.live()
    if (this.followed.size) this.resumeFollowed()
    else if (this.order.gaps().length) this.askForGaps()
  }

  private closed(socket: LiveSocket, code: number, reason: string): void {
    if (socket !== this.socket) return
    this.socket = undefined
    this.resuming = undefined
    this.queued = []
    if (this.state === 'closed') return
    this.setState('offline', { code, reason })
    if (code === UNAUTHORIZED) return void this.reauthenticate()
    this.retry(code === POLICY ? 4 : 1)
  }

  /** After a 4401: a new token, then at once a new socket (or stop if the session is over). */
  private async reauthenticate(): Promise<void> {
    try {
      await this.tokens.refresh()
      if (this.refusals++ === 0) void this.connect()
      else this.retry()
    } catch (err) {
      if (err instanceof ParleyError && err.status === 401) return this.stop()
      this.retry()
    }
  }

  private retry(factor = 1): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => void this.connect(), this.backoff.next() * factor)
  }
}
