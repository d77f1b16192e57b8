// The WebSocket protocol in one place: the frames each side sends and the close codes (docs/PROTOCOL.md).
import { Type, type Static } from 'typebox'
import { Nullable, Uuid } from '../schemas/common.ts'
import { ClientId, Content, Emoji } from '../schemas/messages.ts'

/** A server frame: `{type, conversation_id?, seq?, data}`; acks and errors carry the client's `ref`. */
export interface Frame {
  type: string
  conversation_id?: string
  seq?: number
  data?: unknown
  ref?: string
  error?: string
  code?: string
}

/** An event's frame as text, around its `data` already serialized (as a replay reads it from the log). */
export function eventFrameText(type: string, conversationId: string, seq: number, dataJson: string): string {
  return `{"type":${JSON.stringify(type)},"conversation_id":"${conversationId}","seq":${seq},"data":${dataJson}}`
}

/** Close codes: WebSocket's own, and ours (4000–4999 is the application range). */
export const CLOSE = {
  GOING_AWAY: 1001,
  /** Too many frames for the user's budget, or too many sockets. */
  POLICY: 1008,
  TOO_SLOW: 4008,
  /** A missing, bad or expired token, an ended session, a deleted account. */
  UNAUTHORIZED: 4401,
} as const

/** The most conversations one `resume` may name (more is a BAD_FRAME: send several). */
export const RESUME_MAX_CONVERSATIONS = 1000

const Ref = Type.String({ minLength: 1, maxLength: 100 })
export const ClientFrame = Type.Union([
  Type.Object({ type: Type.Literal('ping') }),
  Type.Object({ type: Type.Literal('typing'), conversation_id: Uuid, is_typing: Type.Boolean() }),
  Type.Object({
    type: Type.Literal('send'), ref: Ref, conversation_id: Uuid, content: Content,
    reply_to_id: Type.Optional(Uuid), thread_id: Type.Optional(Uuid), client_id: Type.Optional(ClientId),
  }),
  Type.Object({ type: Type.Literal('read'), ref: Ref, message_id: Uuid }),
  Type.Object({ type: Type.Literal('edit'), ref: Ref, message_id: Uuid, content: Content }),
  Type.Object({ type: Type.Literal('delete'), ref: Ref, message_id: Uuid }),
  Type.Object({ type: Type.Literal('react'), ref: Ref, message_id: Uuid, emoji: Emoji }),
  Type.Object({ type: Type.Literal('unreact'), ref: Ref, message_id: Uuid, emoji: Emoji }),
  Type.Object({
    type: Type.Literal('resume'),
    conversations: Type.Record(Type.String({ format: 'uuid' }), Type.Integer({ minimum: 0 }), { maxProperties: RESUME_MAX_CONVERSATIONS }),
  }),
  // A fresh access token of the same user and session keeps the socket open past the old token's expiry.
  Type.Object({ type: Type.Literal('auth'), ref: Ref, token: Type.String({ minLength: 1, maxLength: 4096 }) }),
])
export type ClientFrame = Static<typeof ClientFrame>

/** `read_state` (no seq, to the member's own sockets): where their read position is now, and what is unread. */
export const ReadState = Type.Object({
  conversation_id: Uuid,
  last_read_message_id: Nullable(Uuid),
  unread_count: Type.Integer(),
  unread_mention_count: Type.Integer(),
})
export type ReadState = Static<typeof ReadState>
