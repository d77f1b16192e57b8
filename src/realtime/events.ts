import { type Kysely, sql } from 'kysely'
import type { Database } from '../../db/types.ts'

/**
 * One event of a conversation's log, as the listener hands it on: its key and type, and its data as the JSON text
 * PostgreSQL wrote (a notification's, or the log's as served). A frame splices that text in as it is; the data
 * is parsed only when something reads `payload` (a membership change does), once.
 */
export class ConversationEvent {
  private parsed: unknown

  constructor(
    readonly conversation_id: string,
    readonly seq: number,
    readonly type: string,
    /** `data`, as JSON text. */
    readonly data: string,
    /** Epoch ms of the change, for the lag metric: from the notification, or the log row's time when filled from the log. */
    readonly ts?: number,
  ) {}

  get payload(): any {
    if (this.parsed === undefined) this.parsed = JSON.parse(this.data)
    return this.parsed
  }
}

/**
 * A notification on EVENTS_CHANNEL (parley_log_event): `{"conversation_id":…,"seq":…,"type":…,"ts":…,"data":…}`,
 * the data last, or without `ts` and `data` when the event was too large to announce. Only the head is parsed:
 * none of its fields can hold the text `,"data":`, so the data is what follows it. Undefined when it is not such
 * a notification; `data` undefined when the event must be read from the log.
 */
export function parseAnnouncement(note: string): { conversation_id: string; seq: number; type: string; ts?: number; data?: string } | undefined {
  const at = note.indexOf(',"data":')
  let head: { conversation_id?: unknown; seq?: unknown; type?: unknown; ts?: number }
  try {
    head = JSON.parse(at === -1 ? note : `${note.slice(0, at)}}`)
  } catch {
    return undefined
  }
  if (typeof head?.conversation_id !== 'string' || typeof head.seq !== 'number' || typeof head.type !== 'string') return undefined
  return { conversation_id: head.conversation_id, seq: head.seq, type: head.type, ts: head.ts, data: at === -1 ? undefined : note.slice(at + 8, -1) }
}

/**
 * An ephemeral notification, never stored, no seq: typing, presence, an account deleted, sessions ended; a
 * profile changed (`user_updated`) or a block made or lifted (`block_changed`), from triggers/users.sql; one
 * member's own read position (`read_state`) or settings of a conversation (`conversation_settings`), for that
 * member's sockets only.
 */
export interface EphemeralEvent {
  type: 'typing_indicator' | 'presence' | 'account_deleted' | 'session_ended' | 'user_updated' | 'block_changed' | 'read_state' | 'conversation_settings'
  [key: string]: unknown
}

export const EVENTS_CHANNEL = 'parley_events'
export const EPHEMERAL_CHANNEL = 'parley_ephemeral'
/**
 * graphile-worker's announcement of new jobs (its add_jobs NOTIFYs here). The instance's listener hears it for the
 * job worker (src/plugins/jobs.ts), which keeps no LISTEN connection of its own: every NOTIFY in a database
 * wakes every backend listening there, whatever its channel, so each extra listener is paid by every commit.
 */
export const JOBS_CHANNEL = 'jobs:insert'

/** Announces an ephemeral event to every instance, on commit when `db` is a transaction. */
export const notifyEphemeral = (db: Kysely<Database>, event: EphemeralEvent) =>
  sql`SELECT pg_notify(${EPHEMERAL_CHANNEL}, ${JSON.stringify(event)})`.execute(db)
