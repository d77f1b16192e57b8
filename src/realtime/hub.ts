import { Connection, type ConnectionShared, type Credentials } from './connection.ts'
import type { DB } from '../database.ts'
import type { ConversationsService } from '../services/conversations.ts'
import { AppError } from '../errors.ts'
import type { ConversationEvent, EphemeralEvent } from './events.ts'
import type { Listener } from './listener.ts'
import type { Presence } from './presence.ts'
import { CLOSE, eventFrameText, eventHead, type FrameHead, type ReadState, type ServerFrame } from './protocol.ts'
import { textFrames } from './text-frames.ts'
import { UserFanout } from './user-fanout.ts'
import { resume } from './resume.ts'
import { CONVERSATION_FRAMES, conversationFrame } from './served-event.ts'

export interface HubOptions {
  /** A socket whose unsent bytes exceed this is closed (CLOSE.TOO_SLOW) rather than buffered further. */
  maxBufferedBytes: number
  /** A typing indicator with no stop expires after this long. */
  typingTtlMs: number
  /** Called once per conversation event whose frames went out, with ms since the change (the lag metric). */
  observeLag?: (ms: number) => void
  /** Open sockets one user may hold on this instance. */
  maxSocketsPerUser: number
  /** Events read from the log per query of a resume. */
  replayPageSize?: number
}

interface LocalUser {
  conns: Set<Connection>
  conversations: Set<string>
  /** Participant events that arrived while the user's memberships were loading: applied after. */
  pending: ConversationEvent[] | undefined
}


/**
 * Who is connected to this instance, and in which conversations: user → sockets, conversation → local
 * members. It knows only its own sockets and keeps membership current from participant events, so an event
 * costs no query (but for the rare frames that carry a whole Conversation).
 */
export class Hub {
  private readonly users = new Map<string, LocalUser>()
  private readonly members = new Map<string, Set<string>>()
  private readonly chains = new Map<string, Promise<void>>()
  private readonly typingTimers = new Map<string, NodeJS.Timeout>()
  private readonly shared: ConnectionShared
  private readonly userFanout: UserFanout

  constructor(
    private readonly db: DB,
    private readonly listener: Listener,
    private readonly conversations: ConversationsService,
    private readonly presence: Presence,
    private readonly opts: HubOptions,
  ) {
    this.shared = { maxBufferedBytes: opts.maxBufferedBytes, framesSent: new Map(), stats: { tooSlow: 0 } }
    this.userFanout = new UserFanout(db, {
      members: (conv) => this.members.get(conv),
      sendToUser: (userId, frame, text) => this.sendToUser(userId, frame, text),
    })
    listener.on('event', (e: ConversationEvent) => this.chain(e.conversation_id, () => this.onEvent(e)))
    listener.on('ephemeral', (e: EphemeralEvent) => this.onEphemeral(e))
  }

  /** Frames written to sockets, per frame type; read by the metrics. */
  get framesSent(): ReadonlyMap<string, number> {
    return this.shared.framesSent
  }

  /** Sockets closed for falling behind (TOO_SLOW). */
  get tooSlow(): number {
    return this.shared.stats.tooSlow
  }

  served(): Iterable<string> {
    return this.members.keys()
  }

  get socketCount(): number {
    let n = 0
    for (const u of this.users.values()) n += u.conns.size
    return n
  }

  /**
   * Registers a user's new socket before its upgrade completes, so no event committed after that is missed.
   * Refused (POLICY) when the user already holds as many sockets here as allowed.
   */
  async subscribe(credentials: Credentials): Promise<Connection> {
    const { userId } = credentials
    const conn = new Connection(credentials, this.shared)
    let user = this.users.get(userId)
    if (user) {
      if (user.conns.size >= this.opts.maxSocketsPerUser) throw new AppError(429, 'TOO_MANY_SOCKETS', `At most ${this.opts.maxSocketsPerUser} open sockets per user`)
      user.conns.add(conn)
      return conn
    }
    user = { conns: new Set([conn]), conversations: new Set(), pending: [] }
    this.users.set(userId, user)
    void this.presence.here(userId, true)
    const rows = await this.db
      .selectFrom('participants as p')
      .innerJoin('conversations as c', 'c.id', 'p.conversation_id')
      .select(['p.conversation_id', 'c.last_seq'])
      .where('p.user_id', '=', userId)
      .execute()
      .catch((err) => {
        this.unsubscribe(conn)
        throw err
      })
    for (const r of rows) {
      this.listener.follow(r.conversation_id, r.last_seq)
      this.join(user, userId, r.conversation_id)
    }
    // Membership events seen while loading are replayed on top of the snapshot: they are idempotent sets,
    // so in order they end at the truth whichever side of the snapshot each committed.
    const pending = user.pending ?? []
    user.pending = undefined
    for (const e of pending) this.applyMembership(e)
    return conn
  }

  /** Takes a fresh token's credentials (same user and session): the socket now expires with it. */
  reauthenticate(conn: Connection, credentials: Credentials): void {
    if (credentials.userId !== conn.userId || credentials.sessionId !== conn.credentials.sessionId) {
      throw new AppError(403, 'OTHER_SESSION', 'A socket keeps its user and session: open a new socket for another one')
    }
    conn.renew(credentials)
  }

  unsubscribe(conn: Connection): void {
    conn.dispose()
    const user = this.users.get(conn.userId)
    if (!user) return
    user.conns.delete(conn)
    if (user.conns.size > 0) return
    this.users.delete(conn.userId)
    void this.presence.here(conn.userId, false)
    for (const conv of user.conversations) this.leave(conn.userId, conv)
  }

  private join(user: LocalUser, userId: string, conv: string): void {
    user.conversations.add(conv)
    let set = this.members.get(conv)
    if (!set) this.members.set(conv, (set = new Set()))
    set.add(userId)
  }

  private leave(userId: string, conv: string): void {
    this.users.get(userId)?.conversations.delete(conv)
    const set = this.members.get(conv)
    if (!set) return
    set.delete(userId)
    if (set.size === 0) {
      this.members.delete(conv)
      this.listener.forget(conv)
    }
  }

  private applyMembership(e: ConversationEvent): void {
    const userId: string = e.payload.user_id
    const user = this.users.get(userId)
    if (!user) return
    if (user.pending) user.pending.push(e)
    if (e.type === 'participant_added') {
      this.listener.follow(e.conversation_id, e.seq)
      this.join(user, userId, e.conversation_id)
    } else if (e.type === 'participant_removed') this.leave(userId, e.conversation_id)
  }

  private chain(conv: string, work: () => Promise<void>): void {
    const next = (this.chains.get(conv) ?? Promise.resolve()).then(work).catch(() => {})
    this.chains.set(conv, next)
    next.then(() => {
      if (this.chains.get(conv) === next) this.chains.delete(conv)
    })
  }

  private async onEvent(e: ConversationEvent): Promise<void> {
    const recipients = new Set(this.members.get(e.conversation_id))
    if (e.type === 'participant_added') {
      this.applyMembership(e)
      if (this.users.has(e.payload.user_id)) recipients.add(e.payload.user_id)
    } else if (e.type === 'participant_removed') {
      // The user concerned hears of it too, then stops hearing anything of this conversation.
      this.applyMembership(e)
    }
    if (recipients.size === 0) return
    if (CONVERSATION_FRAMES.has(e.type)) {
      for (const userId of recipients) {
        const frame = await conversationFrame(this.conversations, e.conversation_id, e.seq, userId)
        if (frame) this.sendToUser(userId, frame)
      }
    } else {
      // The same frame for every recipient: the event's data spliced in as the triggers wrote it (test/frames.test.ts
      // checks what reaches a socket against ServerFrame), framed once for every socket.
      const head = eventHead(e.type, e.conversation_id, e.seq)
      const text = eventFrameText(e.type, e.conversation_id, e.seq, e.data)
      const bytes = textFrames([text])
      for (const userId of recipients) this.sendTextToUser(userId, head, text, bytes)
    }
    // Clocks of database and instance may differ a little: a change can seem to come from the future.
    if (e.ts !== undefined && this.opts.observeLag) this.opts.observeLag(Math.max(0, Date.now() - e.ts))
  }

  private onEphemeral(e: EphemeralEvent): void {
    if (e.type === 'presence' || e.type === 'user_updated' || e.type === 'block_changed') return this.userFanout.push(e)
    if (e.type === 'account_deleted') {
      for (const conn of this.users.get(e.user_id as string)?.conns ?? []) conn.close(CLOSE.UNAUTHORIZED, 'account deleted')
      return
    }
    if (e.type === 'read_state') {
      const data: ReadState = {
        conversation_id: e.conversation_id as string, last_read_message_id: e.last_read_message_id as string | null,
        unread_count: e.unread_count as number, unread_mention_count: e.unread_mention_count as number,
      }
      return this.sendToUser(e.user_id as string, { type: 'read_state', conversation_id: data.conversation_id, data })
    }
    if (e.type === 'conversation_settings') return this.sendOwnView(e.user_id as string, e.conversation_id as string)
    if (e.type === 'session_ended') {
      const ended = new Set(e.session_ids as string[])
      for (const conn of this.users.get(e.user_id as string)?.conns ?? []) {
        if (ended.has(conn.credentials.sessionId)) conn.close(CLOSE.UNAUTHORIZED, 'session ended')
      }
      return
    }
    const conv = e.conversation_id as string
    const key = `${conv}:${e.user_id}`
    clearTimeout(this.typingTimers.get(key))
    this.typingTimers.delete(key)
    if (e.is_typing) {
      // No stop within the TTL (a closed tab, a lost frame): the indicator goes out by itself.
      const timer = setTimeout(() => this.onEphemeral({ ...e, is_typing: false }), this.opts.typingTtlMs)
      timer.unref()
      this.typingTimers.set(key, timer)
    }
    const frame: ServerFrame = { type: 'typing_indicator', conversation_id: conv, data: { conversation_id: conv, user_id: e.user_id as string, is_typing: e.is_typing as boolean } }
    const text = JSON.stringify(frame)
    // The members the typist blocks (named by the service) are not told.
    const hidden = e.hidden_from as string[] | undefined
    for (const userId of this.members.get(conv) ?? []) {
      if (userId !== e.user_id && !hidden?.includes(userId)) this.sendToUser(userId, frame, text)
    }
  }

  /** A member's own change to a conversation (mute, archive): their sockets here get it as they now see it. */
  private sendOwnView(userId: string, conv: string): void {
    if (!this.users.has(userId)) return
    this.conversations.get(conv, userId).then(
      (data) => this.sendToUser(userId, { type: 'conversation_updated', conversation_id: conv, data }),
      () => {},
    )
  }

  private sendToUser(userId: string, frame: ServerFrame, text = JSON.stringify(frame)): void {
    this.sendTextToUser(userId, frame, text)
  }

  /** As sendToUser, for a frame already serialized (and maybe framed: `bytes`, the same buffer for every socket). */
  private sendTextToUser(userId: string, head: FrameHead, text: string, bytes?: Buffer): void {
    for (const conn of this.users.get(userId)?.conns ?? []) conn.sendText(head, text, bytes)
  }

  /** Every event the client missed, then `resumed` (resume.ts). */
  resume(conn: Connection, seen: Record<string, number>): Promise<void> {
    const mine = this.users.get(conn.userId)?.conversations ?? new Set<string>()
    return resume({ db: this.db, conversations: this.conversations, pageSize: this.opts.replayPageSize ?? 500 }, conn, mine, seen)
  }

  closeAll(code: number, reason: string): void {
    for (const user of this.users.values()) for (const conn of user.conns) conn.close(code, reason)
  }
}
