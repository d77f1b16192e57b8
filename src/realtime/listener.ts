import { EventEmitter } from 'node:events'
import { sql } from 'kysely'
import pg from 'pg'
import type { DB } from '../database.ts'
import { ConversationEvent, EPHEMERAL_CHANNEL, type EphemeralEvent, EVENTS_CHANNEL, JOBS_CHANNEL, parseAnnouncement } from './events.ts'

export interface ListenerOptions {
  connectionString: string
  db: DB
  /** The conversations this instance has sockets for: after a reconnect, their missed events are replayed. */
  served: () => Iterable<string>
  /** How often the connection is probed, and how long a probe may take before the connection counts as dead. */
  probeIntervalMs?: number
  probeTimeoutMs?: number
  maxBackoffMs?: number
}

/**
 * The instance's one LISTEN connection, apart from the pool. It hands on each conversation's events
 * exactly once and in seq order: a notification without data (too large for NOTIFY) or after a gap is
 * filled from the event log, and after a reconnect every served conversation is replayed from the
 * last seq handed on. A connection that dies silently is found by a periodic probe query.
 *
 * Emits 'event' (ConversationEvent), 'ephemeral' (EphemeralEvent), 'jobs' (new jobs were queued), 'up', 'down'
 * (Error), 'warning' (Error).
 */
export class Listener extends EventEmitter {
  private client: pg.Client | undefined
  private closed = false
  private attempt = 0
  private probeTimer: NodeJS.Timeout | undefined
  private retryTimer: NodeJS.Timeout | undefined
  /** Last seq handed on per conversation. */
  private readonly lastSeq = new Map<string, number>()
  /** Per-conversation chains, so a fetch for one conversation keeps its order without holding up the others. */
  private readonly chains = new Map<string, Promise<void>>()
  private readonly opts: Required<ListenerOptions>
  /** Reconnects that replayed the served conversations from the log. */
  replays = 0
  /** Conversation events handed on (after dedupe); read by the metrics. */
  events = 0

  constructor(opts: ListenerOptions) {
    super()
    this.opts = { probeIntervalMs: 5000, probeTimeoutMs: 3000, maxBackoffMs: 5000, ...opts }
  }

  get up(): boolean {
    return this.client !== undefined
  }

  async start(): Promise<void> {
    await this.connect()
  }

  /**
   * Starts following a conversation from a known seq (its last_seq when a first local member subscribed). A
   * conversation already followed keeps its own position: a later, fresher snapshot must not skip the events
   * still on their way to this listener, which the members already here have not had.
   */
  follow(conversationId: string, seq: number): void {
    if (!this.lastSeq.has(conversationId)) this.lastSeq.set(conversationId, seq)
  }

  forget(conversationId: string): void {
    this.lastSeq.delete(conversationId)
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.opts.connectionString, keepAlive: true, application_name: 'parley-listener' })
    client.on('error', (err) => this.lost(client, err))
    client.on('end', () => this.lost(client, new Error('listener connection ended')))
    client.on('notification', (n) => this.onNotification(n))
    await client.connect()
    await client.query(`LISTEN ${EVENTS_CHANNEL}; LISTEN ${EPHEMERAL_CHANNEL}; LISTEN "${JOBS_CHANNEL}"`)
    this.client = client
    const wasDown = this.attempt > 0
    this.attempt = 0
    this.probeTimer = setInterval(() => this.probe(client), this.opts.probeIntervalMs)
    this.probeTimer.unref()
    if (wasDown) await this.replayServed()
    this.emit('up')
  }

  private probe(client: pg.Client): void {
    const timeout = setTimeout(() => this.lost(client, new Error('listener probe timed out')), this.opts.probeTimeoutMs)
    client.query('SELECT 1').then(
      () => clearTimeout(timeout),
      (err) => {
        clearTimeout(timeout)
        this.lost(client, err)
      },
    )
  }

  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client && this.client !== undefined) return
    if (this.client === client) {
      this.client = undefined
      clearInterval(this.probeTimer)
      client.removeAllListeners('notification')
      client.end().catch(() => {})
      // A silently dead socket never finishes end(): destroy it.
      ;(client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy()
      this.emit('down', err)
    }
    if (this.closed || this.retryTimer) return
    const delay = Math.min(this.opts.maxBackoffMs, 100 * 2 ** this.attempt++) * (0.5 + Math.random() / 2)
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      this.connect().catch((e) => this.lost(client, e))
    }, delay)
    this.retryTimer.unref()
  }

  private onNotification(n: pg.Notification): void {
    if (n.channel === JOBS_CHANNEL) {
      this.emit('jobs')
      return
    }
    if (n.channel === EPHEMERAL_CHANNEL) {
      let note: EphemeralEvent
      try {
        note = JSON.parse(n.payload ?? '')
      } catch {
        return
      }
      this.emit('ephemeral', note)
      return
    }
    // The hot path: a message's notification is parsed no further than its head (see parseAnnouncement).
    const note = parseAnnouncement(n.payload ?? '')
    if (!note) return
    const conv = note.conversation_id
    const announced = () => new ConversationEvent(conv, note.seq, note.type, note.data!, note.ts)
    const last = this.lastSeq.get(conv)
    if (last === undefined) {
      // A conversation nobody here follows: hand it on as is (the hub may start following it).
      if (note.data !== undefined) this.handOn(announced())
      else this.chain(conv, () => this.fill(conv, note.seq - 1, note.seq))
      return
    }
    if (note.seq <= last) return
    if (note.seq === last + 1 && note.data !== undefined && !this.chains.has(conv)) {
      this.handOn(announced())
      return
    }
    this.chain(conv, () => this.fill(conv, this.lastSeq.get(conv) ?? note.seq - 1, note.seq))
  }

  private chain(conv: string, work: () => Promise<void>): void {
    const next = (this.chains.get(conv) ?? Promise.resolve()).then(work).catch((err) => {
      this.emit('warning', err)
    })
    this.chains.set(conv, next)
    next.then(() => {
      if (this.chains.get(conv) === next) this.chains.delete(conv)
    })
  }

  /** Reads a conversation's events after `after` (up to `until`) from the log and hands them on. */
  private async fill(conv: string, after: number, until?: number): Promise<void> {
    // As served, not as stored: a message is read as it is now (triggers/event-replay.sql).
    let q = this.opts.db
      .selectFrom('parley_served_events')
      // The row's time (its transaction's start) stands in for the notification's `ts`.
      .select(['conversation_id', 'seq', 'type', 'payload_text', sql<number>`(extract(epoch FROM created_at) * 1000)::bigint`.as('ts')])
      .where('conversation_id', '=', conv)
      .where('seq', '>', Math.max(after, this.lastSeq.get(conv) ?? after))
    if (until !== undefined) q = q.where('seq', '<=', until)
    for (const row of await q.orderBy('seq').execute()) this.handOn(new ConversationEvent(row.conversation_id, row.seq, row.type, row.payload_text, row.ts))
  }

  private handOn(event: ConversationEvent): void {
    const last = this.lastSeq.get(event.conversation_id)
    if (last !== undefined && event.seq <= last) return
    if (last !== undefined) this.lastSeq.set(event.conversation_id, event.seq)
    this.events++
    this.emit('event', event)
  }

  /** After a reconnect: everything the served conversations missed while the connection was down. */
  private async replayServed(): Promise<void> {
    this.replays++
    const served = [...this.opts.served()]
    await Promise.all(served.map((conv) => new Promise<void>((resolve) => this.chain(conv, () => this.fill(conv, this.lastSeq.get(conv) ?? 0).finally(resolve)))))
  }

  async stop(): Promise<void> {
    this.closed = true
    clearInterval(this.probeTimer)
    clearTimeout(this.retryTimer)
    const client = this.client
    this.client = undefined
    await client?.end().catch(() => {})
  }
}
