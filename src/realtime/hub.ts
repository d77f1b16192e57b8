import { sql } from 'kysely'
import type { WebSocket } from 'ws'
import type { DB } from '../database.ts'
import type { ConversationsService } from '../services/conversations.ts'
import type { ConversationEvent, EphemeralEvent } from './events.ts'
import type { Listener } from './listener.ts'
import type { Presence } from './presence.ts'

export interface Frame {
  type: string
  conversation_id?: string
  seq?: number
  data?: unknown
  ref?: string
  error?: string
  code?: string
}

/** Close codes of our own (4000-4999 is the application range). */
export const CLOSE = { UNAUTHORIZED: 4401, TOO_SLOW: 4008, GOING_AWAY: 1001 } as const

export interface HubOptions {
  /** A socket whose unsent bytes exceed this is closed (CLOSE.TOO_SLOW) rather than buffered further. */
  maxBufferedBytes: number
  /** A typing indicator with no stop expires after this long. */
  typingTtlMs: number
  /** Called once per conversation event whose frames went out, with ms since the change (the lag metric). */
  observeLag?: (ms: number) => void
}

/** One open socket of one user. Frames before the socket is attached (during the upgrade) are kept. */
export class Subscription {
  socket: WebSocket | undefined
  /** [frame type, text] */
  readonly early: Array<[string, string]> = []
  /** Highest seq sent per conversation: each event reaches a socket once, in order. */
  readonly sent = new Map<string, number>()
  /** While a resume replays, live frames wait here. */
  held: Frame[] | undefined
  constructor(readonly userId: string) {}
}

interface LocalUser {
  subs: Set<Subscription>
  conversations: Set<string>
  /** Participant events that arrived while the user's memberships were loading: applied after. */
  pending: ConversationEvent[] | undefined
}

// Events whose frame is the current Conversation, as each recipient sees it.
const CONVERSATION_FRAMES = new Set(['conversation_updated', 'participant_role_changed'])

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
  /** Frames written to sockets, per frame type; read by the metrics (a Map update is all a frame costs). */
  readonly framesSent = new Map<string, number>()
  tooSlow = 0

  constructor(
    private readonly db: DB,
    private readonly listener: Listener,
    private readonly conversations: ConversationsService,
    private readonly presence: Presence,
    private readonly opts: HubOptions,
  ) {
    listener.on('event', (e: ConversationEvent) => this.chain(e.conversation_id, () => this.onEvent(e)))
    listener.on('ephemeral', (e: EphemeralEvent) => this.onEphemeral(e))
  }

  served(): Iterable<string> {
    return this.members.keys()
  }

  get socketCount(): number {
    let n = 0
    for (const u of this.users.values()) n += u.subs.size
    return n
  }

  /** Registers a user's new socket before its upgrade completes, so no event committed after that is missed. */
  async subscribe(userId: string): Promise<Subscription> {
    const sub = new Subscription(userId)
    let user = this.users.get(userId)
    if (user) {
      user.subs.add(sub)
      return sub
    }
    user = { subs: new Set([sub]), conversations: new Set(), pending: [] }
    this.users.set(userId, user)
    void this.presence.here(userId, true)
    const rows = await this.db
      .selectFrom('participants as p')
      .innerJoin('conversations as c', 'c.id', 'p.conversation_id')
      .select(['p.conversation_id', 'c.last_seq'])
      .where('p.user_id', '=', userId)
      .execute()
      .catch((err) => {
        this.unsubscribe(sub)
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
    return sub
  }

  attach(sub: Subscription, socket: WebSocket): void {
    sub.socket = socket
    for (const [type, text] of sub.early.splice(0)) this.write(sub, type, text)
  }

  unsubscribe(sub: Subscription): void {
    const user = this.users.get(sub.userId)
    if (!user) return
    user.subs.delete(sub)
    if (user.subs.size > 0) return
    this.users.delete(sub.userId)
    void this.presence.here(sub.userId, false)
    for (const conv of user.conversations) this.leave(sub.userId, conv)
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
        const data = await this.conversations.get(e.conversation_id, userId).catch(() => undefined)
        if (data) this.sendToUser(userId, { type: 'conversation_updated', conversation_id: e.conversation_id, seq: e.seq, data })
      }
    } else {
      const frame = eventFrame(e)
      for (const userId of recipients) this.sendToUser(userId, frame)
    }
    // Clocks of database and instance may differ a little: a change can seem to come from the future.
    if (e.ts !== undefined && this.opts.observeLag) this.opts.observeLag(Math.max(0, Date.now() - e.ts))
  }

  /** Whether the hub holds sockets of this user. */
  has(userId: string): boolean {
    return this.users.has(userId)
  }

  private onEphemeral(e: EphemeralEvent): void {
    if (e.type === 'presence') {
      void this.onPresence(e)
      return
    }
    if (e.type === 'account_deleted') {
      for (const sub of this.users.get(e.user_id as string)?.subs ?? []) sub.socket?.close(CLOSE.UNAUTHORIZED, 'account deleted')
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
    const frame: Frame = { type: 'typing_indicator', conversation_id: conv, data: { conversation_id: conv, user_id: e.user_id, is_typing: e.is_typing } }
    for (const userId of this.members.get(conv) ?? []) if (userId !== e.user_id) this.sendToUser(userId, frame)
  }

  /** A presence change goes to the local users who share a conversation with that user. */
  private async onPresence(e: EphemeralEvent): Promise<void> {
    const local = [...this.users.keys()].filter((id) => id !== e.user_id)
    if (local.length === 0) return
    const rows = await sql<{ user_id: string }>`
      SELECT DISTINCT theirs.user_id FROM participants mine
      JOIN participants theirs ON theirs.conversation_id = mine.conversation_id
      WHERE mine.user_id = ${e.user_id} AND theirs.user_id = ANY (${local}::uuid[])`.execute(this.db).catch(() => ({ rows: [] }))
    const frame: Frame = { type: 'presence', data: { user_id: e.user_id, is_online: e.is_online, last_seen: e.last_seen } }
    for (const r of rows.rows) this.sendToUser(r.user_id, frame)
  }

  private sendToUser(userId: string, frame: Frame): void {
    const user = this.users.get(userId)
    if (!user) return
    const text = JSON.stringify(frame)
    for (const sub of user.subs) this.send(sub, frame, text)
  }

  /** Sends a frame to one socket, at most once per (conversation, seq) and in seq order. */
  send(sub: Subscription, frame: Frame, text?: string): void {
    if (sub.held && frame.seq !== undefined) sub.held.push(frame)
    else this.deliver(sub, frame, text)
  }

  private deliver(sub: Subscription, frame: Frame, text = JSON.stringify(frame)): void {
    if (frame.seq !== undefined && frame.conversation_id !== undefined) {
      if ((sub.sent.get(frame.conversation_id) ?? 0) >= frame.seq) return
      sub.sent.set(frame.conversation_id, frame.seq)
    }
    if (!sub.socket) sub.early.push([frame.type, text])
    else this.write(sub, frame.type, text)
  }

  private write(sub: Subscription, type: string, text: string): void {
    const socket = sub.socket!
    if (socket.readyState !== socket.OPEN) return
    if (socket.bufferedAmount > this.opts.maxBufferedBytes) {
      // A reader this far behind would only grow our memory: it can reconnect and resume.
      this.tooSlow++
      socket.close(CLOSE.TOO_SLOW, 'too slow: reconnect and resume')
      // The close frame waits behind the backlog; a peer that never reads it is cut off.
      setTimeout(() => socket.terminate(), 10_000).unref()
      return
    }
    socket.send(text)
    this.framesSent.set(type, (this.framesSent.get(type) ?? 0) + 1)
  }

  /** Every event the client missed, from its last seen seqs, then `resumed`. Live frames wait meanwhile. */
  async resume(sub: Subscription, seen: Record<string, number>): Promise<void> {
    const held: Frame[] = (sub.held ??= [])
    try {
      const ids = Object.keys(seen)
      for (const [conv, seq] of Object.entries(seen)) if ((sub.sent.get(conv) ?? 0) < seq) sub.sent.set(conv, seq)
      for (const e of await missedEvents(this.db, sub.userId, ids, ids.map((id) => seen[id]))) {
        if (!CONVERSATION_FRAMES.has(e.type)) {
          this.deliver(sub, eventFrame(e))
          continue
        }
        const data = await this.conversations.get(e.conversation_id, sub.userId).catch(() => undefined)
        if (data) this.deliver(sub, { type: 'conversation_updated', conversation_id: e.conversation_id, seq: e.seq, data })
      }
    } finally {
      for (const frame of held) this.deliver(sub, frame)
      sub.held = undefined
    }
    this.deliver(sub, { type: 'resumed' })
  }

  closeAll(code: number, reason: string): void {
    for (const user of this.users.values()) for (const sub of user.subs) sub.socket?.close(code, reason)
  }
}

export function eventFrame(e: ConversationEvent): Frame {
  return { type: e.type, conversation_id: e.conversation_id, seq: e.seq, data: e.payload }
}

/**
 * The events a user missed: in the conversations they named, after the seq they gave (up to their removal,
 * if they were removed since); in conversations they joined meanwhile, from their joining.
 */
async function missedEvents(db: DB, userId: string, ids: string[], seqs: number[]): Promise<ConversationEvent[]> {
  const { rows } = await sql<ConversationEvent>`
    WITH seen(conversation_id, after) AS (SELECT * FROM unnest(${ids}::uuid[], ${seqs}::bigint[])),
    mine AS (SELECT conversation_id FROM participants WHERE user_id = ${userId}),
    windows AS (
      SELECT s.conversation_id, s.after, NULL::bigint AS until FROM seen s JOIN mine USING (conversation_id)
      UNION ALL
      SELECT m.conversation_id,
        coalesce((SELECT max(e.seq) - 1 FROM conversation_events e WHERE e.conversation_id = m.conversation_id
                   AND e.type = 'participant_added' AND e.payload->>'user_id' = ${userId}), 0), NULL
      FROM mine m WHERE m.conversation_id NOT IN (SELECT conversation_id FROM seen)
      UNION ALL
      SELECT s.conversation_id, s.after,
        (SELECT min(e.seq) FROM conversation_events e WHERE e.conversation_id = s.conversation_id AND e.seq > s.after
           AND e.type = 'participant_removed' AND e.payload->>'user_id' = ${userId})
      FROM seen s WHERE s.conversation_id NOT IN (SELECT conversation_id FROM mine)
    )
    SELECT e.conversation_id, e.seq, e.type, e.payload
    FROM windows w JOIN conversation_events e
      ON e.conversation_id = w.conversation_id AND e.seq > w.after
     AND (w.until IS NOT NULL OR w.conversation_id IN (SELECT conversation_id FROM mine))
     AND (w.until IS NULL OR e.seq <= w.until)
    ORDER BY e.conversation_id, e.seq`.execute(db)
  return rows
}
