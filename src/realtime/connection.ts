import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import { CLOSE, type FrameHead, type ServerFrame } from './protocol.ts'
import { textFrames } from './text-frames.ts'

/** Who a socket speaks for: the access token's user and session, and when the token expires (epoch ms). */
export interface Credentials {
  userId: string
  sessionId: string
  expiresAt: number
}

/** What every connection of an instance shares: its limits and its counters (read by the metrics). */
export interface ConnectionShared {
  /** A socket whose unsent bytes exceed this is closed (TOO_SLOW) rather than buffered further. */
  maxBufferedBytes: number
  /** Frames written to sockets, per frame type (a Map update is all a frame costs). */
  framesSent: Map<string, number>
  stats: { tooSlow: number }
}

/** A live frame waiting behind a replay: its head, its text, and its bytes framed for the wire (see `send`). */
export type HeldFrame = [head: FrameHead, text: string, bytes: Buffer | undefined]

// Live frames that wait behind a resume's replay: a client that lets this many pile up is closed (TOO_SLOW).
const MAX_HELD_FRAMES = 10_000

/**
 * One open socket of one user: what it has been sent (each event once, in seq order), what waits for it (frames
 * before its upgrade completes, live frames behind a replay), its back-pressure and its token's expiry.
 * Thousands of these sit idle on an instance, so what most sockets never use is made when first needed, and
 * the one timer (the upgrade's deadline, then the token's expiry) calls a shared function, not a closure.
 */
export class Connection {
  private socket: WebSocket | undefined
  /** The TCP socket under it, which a replay's pages are written to. */
  private tcp: Socket | undefined
  /** While a replay builds a page: its frames' texts, and their length in characters. */
  private page: string[] | undefined
  private pageChars = 0
  /** [frame type, text], written once the socket is attached. */
  private early: Array<[string, string]> | undefined
  /** Highest seq sent per conversation (made at the first event). */
  private seqs: Map<string, number> | undefined
  /**
   * The first seq sent live per conversation: from it to the highest, everything went out live and in order
   * (the listener hands events on without gaps). Below it, only a replay can fill in.
   */
  private liveFrom: Map<string, number> | undefined
  /** While a resume replays, live frames wait here: head, text, and the framed bytes when made. */
  held: HeldFrame[] | undefined
  /** A close asked for before the socket was attached. */
  private closing: { code: number; reason: string } | undefined
  private expiry: NodeJS.Timeout | undefined
  /** A pong came since the last ping (the socket's heartbeat). */
  alive = false
  /** Frames refused in a row for the user's budget. */
  refused = 0
  /** The upgrade request's id: the socket's log lines carry it as reqId. */
  requestId: string | undefined

  constructor(
    public credentials: Credentials,
    private readonly shared: ConnectionShared,
  ) {}

  get userId(): string {
    return this.credentials.userId
  }

  get attached(): boolean {
    return this.socket !== undefined
  }

  /** Highest seq sent per conversation. */
  get sent(): Map<string, number> {
    return (this.seqs ??= new Map())
  }

  /** Calls `abandon` if no socket is attached within `ms` (the client went away during its upgrade). */
  awaitAttach(ms: number, abandon: (conn: Connection) => void): void {
    clearTimeout(this.expiry)
    this.expiry = setTimeout(abandonUnattached, ms, this, abandon)
    this.expiry.unref()
  }

  attach(socket: WebSocket, tcp?: Socket): void {
    this.socket = socket
    this.tcp = tcp
    if (this.closing) return this.close(this.closing.code, this.closing.reason)
    this.renew(this.credentials)
    const early = this.early
    this.early = undefined
    for (const [type, text] of early ?? []) this.write(type, text)
  }

  /** Takes (fresh) credentials: the socket is closed when their token expires. */
  renew(credentials: Credentials): void {
    this.credentials = credentials
    clearTimeout(this.expiry)
    // setTimeout holds at most ~24.8 days; tokens live minutes.
    const ms = Math.min(2 ** 31 - 1, Math.max(0, credentials.expiresAt - Date.now()))
    this.expiry = setTimeout(expire, ms, this)
    this.expiry.unref()
  }

  close(code: number, reason: string): void {
    // Before the upgrade completes (the session ended, the account was deleted meanwhile), the socket is closed
    // as soon as it is attached; the timer, its deadline, must still run.
    if (!this.socket) {
      this.closing = { code, reason }
      return
    }
    clearTimeout(this.expiry)
    this.socket.close(code, reason)
  }

  /** Sends a frame, at most once per (conversation, seq) and in seq order; behind a replay, live events wait. */
  send(frame: ServerFrame, text = JSON.stringify(frame)): void {
    this.sendText(frame, text)
  }

  /**
   * As `send`, for a frame already serialized (`text`), known by its head only. `bytes`: the same as a WebSocket
   * frame (textFrames), when one event goes to many sockets: built once, the same buffer is written to each.
   */
  sendText(head: FrameHead, text: string, bytes?: Buffer): void {
    if (!this.held || head.seq === undefined) return this.deliverText(head, text, false, bytes)
    this.held.push([head, text, bytes])
    if (this.held.length > MAX_HELD_FRAMES) this.tooFarBehind()
  }

  /** A replay of this conversation went out in full up to `seq`: nothing at or below the highest goes again. */
  replayedUpTo(conv: string, seq: number): void {
    ;(this.liveFrom ??= new Map()).set(conv, 1)
    if (seq > (this.seqs?.get(conv) ?? 0)) this.sent.set(conv, seq)
  }

  /**
   * Sends a frame now, past any replay in progress (the replay's own frames, and what it held). A live frame
   * goes once and in order: nothing at or below the highest seq sent. A replayed one (`replayed`) may be older
   * than live frames that reached the socket before its `resume` did; it is skipped only if it went out live.
   */
  deliver(frame: ServerFrame, text = JSON.stringify(frame), replayed = false): void {
    this.deliverText(frame, text, replayed)
  }

  /** As `deliver`, for a frame already serialized (`text`, and maybe framed: `bytes`), known to the connection by its head only. */
  deliverText(frame: FrameHead, text: string, replayed = false, bytes?: Buffer): void {
    const conv = frame.conversation_id
    if (frame.seq !== undefined && conv !== undefined) {
      const highest = this.seqs?.get(conv) ?? 0
      if (!replayed) {
        if (highest >= frame.seq) return
        if (!(this.liveFrom ??= new Map()).has(conv)) this.liveFrom.set(conv, frame.seq)
      } else {
        const from = this.liveFrom?.get(conv)
        if (from !== undefined && frame.seq >= from && frame.seq <= highest) return
      }
      if (frame.seq > highest) this.sent.set(conv, frame.seq)
    }
    if (!this.socket) (this.early ??= []).push([frame.type, text])
    else this.write(frame.type, text, bytes)
  }

  /** Whether the socket is open with room in its buffer, waiting for it to drain if need be. */
  async drained(): Promise<boolean> {
    const socket = this.socket
    if (!socket) return true
    if (this.backedUp) {
      // A page still being built does not drain.
      this.uncork()
      while (socket.readyState === socket.OPEN && socket.bufferedAmount > this.shared.maxBufferedBytes / 2) {
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    }
    return socket.readyState === socket.OPEN
  }

  /** Whether a writer should wait for `drained()` before sending more. */
  get backedUp(): boolean {
    return this.socket !== undefined && this.socket.bufferedAmount + this.pageChars > this.shared.maxBufferedBytes / 2
  }

  /**
   * Frames sent until `uncork()` leave in one write of one buffer (a replay's page), written to the TCP socket
   * past ws: nothing else writes between, and ws queues nothing of its own with compression off (socket.ts).
   */
  cork(): void {
    if (this.page || !this.tcp) return
    this.page = []
  }

  uncork(): void {
    const page = this.page
    if (!page) return
    this.page = undefined
    this.pageChars = 0
    const socket = this.socket!
    if (page.length > 0 && socket.readyState === socket.OPEN) this.tcp!.write(textFrames(page))
  }

  private write(type: string, text: string, bytes?: Buffer): void {
    const socket = this.socket!
    if (socket.readyState !== socket.OPEN) return
    if (socket.bufferedAmount > this.shared.maxBufferedBytes) return this.tooFarBehind()
    if (this.page) {
      this.page.push(text)
      this.pageChars += text.length
    } else if (bytes && this.tcp) {
      // Past ws, as a replay's page is (see cork): ws would encode the text again for every socket.
      this.tcp.write(bytes)
    } else socket.send(text)
    this.shared.framesSent.set(type, (this.shared.framesSent.get(type) ?? 0) + 1)
  }

  /** A reader this far behind would only grow our memory: it can reconnect and resume. */
  private tooFarBehind(): void {
    const socket = this.socket
    if (!socket || socket.readyState !== socket.OPEN) return
    this.shared.stats.tooSlow++
    socket.close(CLOSE.TOO_SLOW, 'too slow: reconnect and resume')
    // The close frame waits behind the backlog; a peer that never reads it is cut off.
    setTimeout(() => socket.terminate(), 10_000).unref()
  }

  /** Stops the expiry timer once the socket is gone. */
  dispose(): void {
    clearTimeout(this.expiry)
  }
}

function expire(conn: Connection): void {
  conn.close(CLOSE.UNAUTHORIZED, 'access token expired')
}

function abandonUnattached(conn: Connection, abandon: (conn: Connection) => void): void {
  if (!conn.attached) abandon(conn)
}
