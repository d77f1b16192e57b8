import { type Kysely, sql } from 'kysely'
import type { Database } from '../../db/types.ts'

/** One row of conversation_events, as the listener hands it on. */
export interface ConversationEvent {
  conversation_id: string
  seq: number
  type: string
  payload: any
  /** Epoch ms of the change, for the lag metric: from the notification, or the log row's time when filled from the log. */
  ts?: number
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
