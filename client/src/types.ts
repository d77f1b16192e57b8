// The API's shapes, taken from the generated OpenAPI types (one source: the server's route schemas), and the
// WebSocket frames of docs/PROTOCOL.md built from them.
import type { paths } from './generated/openapi.ts'

type Json<R> = R extends { content: { 'application/json': infer B } } ? B : never
type Ok<Path extends keyof paths, M extends keyof paths[Path]> = paths[Path][M] extends { responses: infer R }
  ? R extends { 200: infer A } ? Json<A> : R extends { 201: infer A } ? Json<A> : never
  : never

export type Message = Ok<'/messages/{id}', 'get'>
export type Conversation = Ok<'/conversations/{id}', 'get'>
export type User = Ok<'/users/{id}', 'get'>
export type AuthTokens = Ok<'/auth/login', 'post'>
export type SendBody = NonNullable<paths['/messages']['post']['requestBody']>['content']['application/json']

/** What a client keeps of a sign-in: the pair of tokens, and when the access token expires (ms since the epoch). */
export interface Tokens {
  access_token: string
  refresh_token: string
  /** Unset: read from the access token's `exp` claim. */
  expires_at?: number
}

/**
 * The one error shape of the API (`{error, code, details?}`), as a thrown error; `status` is the HTTP status, 0 for
 * a socket; `details` names what was wrong with the input (a field, a limit), when the server said.
 */
export class ParleyError extends Error {
  constructor(readonly code: string, message: string, readonly status = 0, readonly details: string[] = []) {
    super(message)
    this.name = 'ParleyError'
  }
}

// Failures of the way to the server (the SDK's own codes), and the server's refusals for now, not for good.
const TRANSIENT = new Set(['NETWORK', 'NOT_CONNECTED', 'ACK_TIMEOUT', 'DISCONNECTED', 'RATE_LIMITED', 'SERVICE_UNAVAILABLE', 'INTERNAL_ERROR', 'UNAUTHORIZED'])

/** Worth trying again later: the request may not have happened, or was refused for now. */
export const retryable = (err: unknown): boolean =>
  !(err instanceof ParleyError) || TRANSIENT.has(err.code) || err.status === 401 || err.status === 408 || err.status === 429 || err.status >= 500

interface Participant { conversation_id: string; user_id: string; role: string; by: string | null }
interface Reaction { conversation_id: string; message_id: string; user_id: string; emoji: string; reactions: Message['reactions'] }

/** `data` of each event in a conversation's log (frames with `seq`). */
export interface LogEvents {
  new_message: Message
  message_edited: Message
  message_deleted: Message
  message_pinned: Message
  message_unpinned: Message
  message_read: { conversation_id: string; message_id: string; user_id: string; read_at: string }
  thread_updated: { conversation_id: string; message_id: string; thread_reply_count: number; thread_last_reply_at: string | null }
  reaction_added: Reaction
  reaction_removed: Reaction
  participant_added: Participant
  participant_removed: Participant
  conversation_updated: Conversation
}

/** `data` of the ephemeral frames (no `seq`: not in the log, not replayed by `resume`). */
export interface EphemeralEvents {
  typing_indicator: { conversation_id: string; user_id: string; is_typing: boolean }
  presence: { user_id: string; is_online: boolean; last_seen: string | null }
  user_updated: User
  read_state: { conversation_id: string; last_read_message_id: string | null; unread_count: number; unread_mention_count: number }
  conversation_updated: Conversation
}

export type LogEvent = { [K in keyof LogEvents]: { type: K; conversation_id: string; seq: number; data: LogEvents[K] } }[keyof LogEvents]
export type EphemeralEvent = { [K in keyof EphemeralEvents]: { type: K; conversation_id?: string; seq?: undefined; data: EphemeralEvents[K] } }[keyof EphemeralEvents]
export type ServerEvent = LogEvent | EphemeralEvent

/** Any frame the server sends, before it is sorted into events and answers. */
export interface RawFrame {
  type: string
  conversation_id?: string
  seq?: number
  data?: unknown
  ref?: string
  error?: string
  code?: string
}
