/** One row of conversation_events, as the listener hands it on. */
export interface ConversationEvent {
  conversation_id: string
  seq: number
  type: string
  payload: any
  /** Epoch ms of the change, for the lag metric: from the notification, or the log row's time when filled from the log. */
  ts?: number
}

/** An ephemeral notification (typing, presence, an account deleted, sessions ended): never stored, no seq. */
export interface EphemeralEvent {
  type: 'typing_indicator' | 'presence' | 'account_deleted' | 'session_ended'
  [key: string]: unknown
}

export const EVENTS_CHANNEL = 'parley_events'
export const EPHEMERAL_CHANNEL = 'parley_ephemeral'
