// ParleyClient: sign-in, typed REST, the live connection and the outbox, wired together.
import type { BackoffOptions } from './backoff.ts'
import { Emitter } from './emitter.ts'
import { type ConnectionState, Live } from './live.ts'
import { MemoryOutbox, Outbox, type OutboxEntry, type OutboxStorage } from './outbox.ts'
import { createRest, type Rest, unwrap } from './rest.ts'
import type { WebSocketConstructor } from './socket.ts'
import { TokenManager } from './tokens.ts'
import { type AuthTokens, type EphemeralEvents, type LogEvents, type Message, ParleyError, type ServerEvent, type Tokens } from './types.ts'

export interface ClientOptions {
  /** `http(s)://host[:port]` of the API; the socket is its `ws(s)://…/ws`. */
  baseUrl: string
  /** Default: the global WebSocket (browsers, Node 22). On Node 20 pass the `ws` package's. */
  WebSocket?: WebSocketConstructor
  fetch?: typeof fetch
  /** A session kept from before (e.g. the refresh token from storage); or call login(). */
  tokens?: Tokens
  /** Where unsent messages wait (default: memory). */
  outbox?: OutboxStorage
  backoff?: BackoffOptions
  /** The client's own ping, ms (default 15 000): a socket silent for two of these is replaced. */
  pingIntervalMs?: number
  /** How long a socket request (send, auth) waits for its ack, ms (default 10 000). */
  ackTimeoutMs?: number
  /** How long a REST call may take, ms (default 15 000). */
  requestTimeoutMs?: number
}

type Framed<M> = { [K in keyof M]: Extract<ServerEvent, { type: K }> }

/** What a client emits: each server event by its type (log events in seq order, each once), and its own news. */
export type ClientEvents = Framed<LogEvents & EphemeralEvents> & {
  /** Every server event, as the per-type ones. */
  event: ServerEvent
  state: { state: ConnectionState; code?: number; reason?: string }
  tokens: Tokens
  signed_out: ParleyError
  /** An outbox send the server acknowledged (also those left by an earlier run). */
  sent: { entry: OutboxEntry; message: Message }
  failed: { entry: OutboxEntry; error: ParleyError }
}

export interface SendOptions {
  reply_to_id?: string
  thread_id?: string
  /** Default: a new UUID. Give your own to make a send you retry yourself idempotent too. */
  client_id?: string
}

export class ParleyClient extends Emitter<ClientEvents> {
  readonly rest: Rest
  readonly tokens: TokenManager
  readonly outbox: Outbox
  private readonly live: Live
  private readonly auth: Rest

  constructor(readonly opts: ClientOptions) {
    super()
    const restOpts = { baseUrl: opts.baseUrl, fetch: opts.fetch, timeoutMs: opts.requestTimeoutMs }
    this.auth = createRest(restOpts)
    this.tokens = new TokenManager(async (refresh_token) => withExpiry(await unwrap(this.auth.POST('/auth/refresh', { body: { refresh_token } }))))
    this.rest = createRest(restOpts, this.tokens)
    this.tokens.on('tokens', (t) => this.emit('tokens', t))
    this.tokens.on('signed_out', (e) => {
      this.outbox.stop()
      this.emit('signed_out', e)
    })
    const WebSocketImpl = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (!WebSocketImpl) throw new TypeError('no WebSocket: pass one (the `ws` package on Node 20) as options.WebSocket')
    this.live = new Live({ baseUrl: opts.baseUrl, WebSocket: WebSocketImpl, backoff: opts.backoff, pingIntervalMs: opts.pingIntervalMs ?? 15_000, ackTimeoutMs: opts.ackTimeoutMs ?? 10_000 }, this.tokens, {
      event: (e) => {
        this.emit('event', e)
        this.emit(e.type, e as never)
      },
      state: (state, detail) => {
        this.emit('state', { state, ...detail })
        if (state === 'live') this.outbox.kick()
      },
    })
    this.outbox = new Outbox(opts.outbox ?? new MemoryOutbox(), (entry) => this.deliver(entry), opts.backoff)
    this.outbox.on('sent', (s) => this.emit('sent', s))
    this.outbox.on('failed', (f) => this.emit('failed', f))
    if (opts.tokens) this.tokens.set(opts.tokens)
  }

  get state(): ConnectionState {
    return this.live.state
  }

  async login(username: string, password: string): Promise<AuthTokens> {
    return this.signedIn(await unwrap(this.auth.POST('/auth/login', { body: { username, password } })))
  }

  async register(body: { username: string; password: string; email?: string; display_name?: string }): Promise<AuthTokens> {
    return this.signedIn(await unwrap(this.auth.POST('/auth/register', { body })))
  }

  /** Opens the live connection (and keeps it open until close()); sends waiting in the outbox start too. */
  connect(): void {
    this.live.start()
    this.outbox.kick()
  }

  /**
   * Delivers a conversation's events after `lastSeq` (a Conversation's `last_seq`, or a position you kept); when
   * already live, those committed since are fetched at once (`resume`).
   */
  follow(conversationId: string, lastSeq: number): void {
    this.live.follow(conversationId, lastSeq)
  }

  /** The last seq delivered of each conversation: keep it to follow them again after a restart. */
  positions(): Record<string, number> {
    return this.live.order.positions()
  }

  /** Sends a text message: stored in the outbox, retried until acknowledged, landing once. */
  send(conversationId: string, content: string, opts: SendOptions = {}): Promise<Message> {
    if (!this.tokens.tokens) return Promise.reject(new ParleyError('SIGNED_OUT', 'not signed in: login() first'))
    const { client_id = crypto.randomUUID(), ...rest } = opts
    return this.outbox.add({ client_id, conversation_id: conversationId, content, ...rest, created_at: Date.now() })
  }

  /** Tells the others you are typing (or stopped); ephemeral, so nothing is sent while the socket is not open. */
  typing(conversationId: string, isTyping: boolean): void {
    this.live.socket?.send({ type: 'typing', conversation_id: conversationId, is_typing: isTyping })
  }

  /** Ends the session on the server (its refresh token stops working) and closes the client. */
  async logout(): Promise<void> {
    try {
      // An expired access token is refreshed first, which rotates the refresh token: end the current one.
      await this.tokens.access()
      await unwrap(this.rest.POST('/auth/logout', { body: { refresh_token: this.tokens.tokens!.refresh_token } }))
    } catch (err) {
      if (!(err instanceof ParleyError && err.status === 401)) throw err // a 401: already ended
    } finally {
      this.close()
    }
  }

  close(): void {
    this.live.stop()
    this.outbox.stop()
    this.tokens.clear()
  }

  // Over the socket when it is open (an ack), else over REST: either way with the entry's client_id.
  private async deliver(entry: OutboxEntry): Promise<Message> {
    const { created_at: _, ...body } = entry
    const socket = this.live.socket
    if (socket?.open) return (await socket.request({ type: 'send', ...body })).data as Message
    return unwrap(this.rest.POST('/messages', { body }))
  }

  private signedIn(tokens: AuthTokens): AuthTokens {
    this.tokens.set(withExpiry(tokens))
    this.outbox.kick() // sends kept from before the sign-in
    return tokens
  }
}

/** The pair, with its expiry as this machine's clock sees it (`expires_in` from now: no clock skew). */
const withExpiry = (t: AuthTokens): Tokens => ({ access_token: t.access_token, refresh_token: t.refresh_token, expires_at: Date.now() + t.expires_in * 1000 })
