// The WebSocket protocol in one place: the frames each side sends, what answers what, and the close codes
// (docs/PROTOCOL.md in prose; asyncapi.yaml is generated from these schemas by scripts/asyncapi.ts).
import { Type, type Static, type TSchema } from 'typebox'
import { ErrorBody, Nullable, Timestamp, Uuid } from '../schemas/common.ts'
import { Conversation, Role } from '../schemas/conversations.ts'
import { ClientId, Content, Emoji, Message, Reaction } from '../schemas/messages.ts'
import { definitionOf } from '../schemas/named.ts'
import { User } from '../schemas/users.ts'

/** Close codes: WebSocket's own, and ours (4000–4999 is the application range). */
export const CLOSE = {
  GOING_AWAY: 1001,
  /** Too many frames for the user's budget, or too many sockets. */
  POLICY: 1008,
  /** A frame over WS_MAX_PAYLOAD (ws closes with it itself). */
  TOO_BIG: 1009,
  TOO_SLOW: 4008,
  /** A missing, bad or expired token, an ended session, a deleted account. */
  UNAUTHORIZED: 4401,
} as const

/** What each close code means to a client, and what it does about it (the table of docs/PROTOCOL.md). */
export const CLOSE_CODES: ReadonlyArray<{ code: number; meaning: string; then: string }> = [
  { code: CLOSE.UNAUTHORIZED, meaning: 'missing, bad or expired token; the session ended; the account was deleted', then: 'refresh the token, reconnect (or sign in again if the refresh fails)' },
  { code: CLOSE.POLICY, meaning: 'too many frames past the rate limit, or too many sockets', then: 'back off; close other sockets' },
  { code: CLOSE.TOO_SLOW, meaning: 'you fell behind: more than WS_MAX_BUFFERED (1 MiB) of frames were waiting for you', then: 'reconnect and resume' },
  { code: CLOSE.TOO_BIG, meaning: 'a frame over WS_MAX_PAYLOAD (64 KiB)', then: 'send smaller frames' },
  { code: CLOSE.GOING_AWAY, meaning: 'the instance is shutting down', then: 'reconnect (the load balancer picks another instance) and resume' },
]

/** The most conversations one `resume` may name (more is a BAD_FRAME: send several). */
export const RESUME_MAX_CONVERSATIONS = 1000

// ---- Client frames: validated by the server (src/realtime/socket.ts) against this union.

const Ref = Type.String({ minLength: 1, maxLength: 100, description: 'Yours: the answer (ack or error) carries it back' })
export const ClientFrame = Type.Union([
  Type.Object({ type: Type.Literal('ping') }, { title: 'ping', description: 'Answered pong' }),
  Type.Object(
    { type: Type.Literal('typing'), conversation_id: Uuid, is_typing: Type.Boolean() },
    { title: 'typing', description: 'Unanswered; the other members get typing_indicator. With no is_typing: false within TYPING_TTL (6 s) it stops by itself' },
  ),
  Type.Object({
    type: Type.Literal('send'), ref: Ref, conversation_id: Uuid, content: Content,
    reply_to_id: Type.Optional(Uuid), thread_id: Type.Optional(Uuid), client_id: Type.Optional(ClientId),
  }, { title: 'send', description: 'As POST /messages: ack with the Message (a repeated client_id acks the first one), or error' }),
  Type.Object({ type: Type.Literal('read'), ref: Ref, message_id: Uuid }, { title: 'read', description: 'As POST /messages/{id}/read: ack with data null, or error' }),
  Type.Object({ type: Type.Literal('edit'), ref: Ref, message_id: Uuid, content: Content }, { title: 'edit', description: 'As PATCH /messages/{id}: ack with the Message, or error' }),
  Type.Object({ type: Type.Literal('delete'), ref: Ref, message_id: Uuid }, { title: 'delete', description: 'As DELETE /messages/{id}: ack with its deleted form, or error' }),
  Type.Object({ type: Type.Literal('react'), ref: Ref, message_id: Uuid, emoji: Emoji }, { title: 'react', description: 'As POST /messages/{id}/reactions: ack with the Message, or error' }),
  Type.Object({ type: Type.Literal('unreact'), ref: Ref, message_id: Uuid, emoji: Emoji }, { title: 'unreact', description: 'As DELETE /messages/{id}/reactions/{emoji}: ack with the Message, or error' }),
  Type.Object({
    type: Type.Literal('resume'),
    conversations: Type.Record(Type.String({ format: 'uuid' }), Type.Integer({ minimum: 0 }), { maxProperties: RESUME_MAX_CONVERSATIONS, description: 'conversation id → the last seq you saw of it' }),
  }, { title: 'resume', description: 'Every missed event of those conversations (and of those you joined since) in seq order, then resumed; RESUME_IN_PROGRESS while one runs' }),
  // A fresh access token of the same user and session keeps the socket open past the old token's expiry.
  Type.Object(
    { type: Type.Literal('auth'), ref: Ref, token: Type.String({ minLength: 1, maxLength: 4096 }) },
    { title: 'auth', description: 'A fresh access token of the same session: ack, and the socket now expires with it; error (OTHER_SESSION, UNAUTHORIZED, SESSION_ENDED) otherwise' },
  ),
])
export type ClientFrame = Static<typeof ClientFrame>

// ---- The data of server frames. Messages, Conversations and Users are the REST schemas.

/** `read_state` (no seq, to the member's own sockets): where their read position is now, and what is unread. */
export const ReadState = Type.Object({
  conversation_id: Uuid,
  last_read_message_id: Nullable(Uuid, { description: 'The last message you can see at or before your read position; null if none' }),
  unread_count: Type.Integer(),
  unread_mention_count: Type.Integer(),
}, { description: 'Your read position in a conversation, after it moved' })
export type ReadState = Static<typeof ReadState>

export const MessageRead = Type.Object(
  { conversation_id: Uuid, message_id: Uuid, user_id: Uuid, read_at: Timestamp },
  { description: 'A member read up to a message' },
)
export const ThreadUpdate = Type.Object({
  conversation_id: Uuid,
  message_id: Type.String({ format: 'uuid', description: "The thread's root" }),
  thread_reply_count: Type.Integer({ minimum: 0 }),
  thread_last_reply_at: Nullable(Timestamp),
}, { description: "A thread root's counters, after a reply was posted or deleted" })
export const ReactionChange = Type.Object({
  conversation_id: Uuid, message_id: Uuid, user_id: Uuid, emoji: Type.String(),
  reactions: Type.Array(Reaction, { description: "The message's reactions after the change (in a replay, as they are now)" }),
}, { description: 'A reaction added or removed' })
export const ParticipantChange = Type.Object({
  conversation_id: Uuid, user_id: Uuid, role: Role,
  by: Nullable(Uuid, { description: 'Who added or removed them (themselves when they left)' }),
}, { description: 'A member added or removed' })
export const TypingState = Type.Object({ conversation_id: Uuid, user_id: Uuid, is_typing: Type.Boolean() }, { description: 'Someone started or stopped typing' })
export const PresenceState = Type.Object(
  { user_id: Uuid, is_online: Type.Boolean(), last_seen: Nullable(Timestamp) },
  { description: 'Someone came online or went offline' },
)

// ---- Server frames: `{type, conversation_id?, seq?, data}`.

const Seq = Type.Integer({ minimum: 1, description: "The event's place in its conversation's log: strictly increasing, without gaps" })

/** An event of a conversation's log: it has a seq, and `resume` replays it. */
const logged = <T extends string, D extends TSchema>(type: T, data: D, description: string, name: string = type) =>
  Type.Object({ type: Type.Literal(type), conversation_id: Uuid, seq: Seq, data }, { title: name, description })

/** What is not in the log (typing, what is yours alone): no seq, never replayed. */
const unlogged = <T extends string, D extends TSchema>(type: T, data: D, description: string, name: string = type) =>
  Type.Object({ type: Type.Literal(type), conversation_id: Uuid, data }, { title: name, description })

const messageEvent = <T extends string>(type: T, description: string) => logged(type, Message, `${description}; data: the Message`)

export const ServerFrame = Type.Union([
  messageEvent('new_message', 'A message was posted (in a replay, as it is now)'),
  messageEvent('message_edited', 'A message was edited'),
  messageEvent('message_deleted', 'A message was deleted: data is its deleted form'),
  messageEvent('message_pinned', 'A message was pinned'),
  messageEvent('message_unpinned', 'A message was unpinned'),
  logged('message_read', MessageRead, 'A member read up to a message'),
  logged('thread_updated', ThreadUpdate, "A thread's counters changed, after the reply's own new_message or message_deleted"),
  logged('reaction_added', ReactionChange, 'A reaction was added'),
  logged('reaction_removed', ReactionChange, 'A reaction was removed'),
  logged('participant_added', ParticipantChange, 'A member was added; sent to the members and the user concerned'),
  logged('participant_removed', ParticipantChange, 'A member was removed or left; sent to the members and the user concerned'),
  logged('conversation_updated', Conversation, 'A rename, a new avatar or a role change; data: the Conversation as you see it'),
  unlogged('conversation_updated', Conversation, 'You changed your own muted_until or is_archived (to your own sockets only); data: the Conversation as you now see it', 'conversation_updated_own'),
  unlogged('read_state', ReadState, 'Your read position moved (a read, a mark-unread, a clear); to your own sockets only'),
  unlogged('typing_indicator', TypingState, 'Another member is typing or stopped; never to the typist, nor to those the typist blocks'),
  Type.Object({ type: Type.Literal('presence'), data: PresenceState }, {
    title: 'presence', description: 'To the users who share a conversation with that user, except those the user blocks',
  }),
  Type.Object({ type: Type.Literal('user_updated'), data: User }, {
    title: 'user_updated',
    description: 'A profile as GET /users/{id} shows it to you: on a new display name or avatar, a deleted account, a block made or lifted between you',
  }),
  Type.Object({ type: Type.Literal('pong') }, { title: 'pong', description: 'The answer to ping' }),
  Type.Object({
    type: Type.Literal('ack'), ref: Ref,
    data: Nullable(Message, { description: 'send, edit, delete, react, unreact: the Message; read, auth: null' }),
  }, { title: 'ack', description: 'A client frame with a ref succeeded' }),
  Type.Object({
    type: Type.Literal('error'),
    ref: Type.Optional(Type.String({ description: "The failed frame's ref, when it had one" })),
    error: definitionOf(ErrorBody).properties!.error,
    code: Type.String({ description: 'BAD_FRAME, RATE_LIMITED, RESUME_IN_PROGRESS, or the REST code of the rule (e.g. CONVERSATION_NOT_FOUND)' }),
  }, { title: 'error', description: 'A client frame failed; the socket stays open' }),
  Type.Object({ type: Type.Literal('resumed') }, { title: 'resumed', description: 'A resume has sent everything it found' }),
])

/** The types of the log's events (the frames with a seq): what `resume` replays, and what a webhook may ask for. */
export const LOG_EVENT_TYPES = [...new Set(
  ServerFrame.anyOf.filter((f) => 'seq' in f.properties).map((f) => (f.properties.type as { const: string }).const),
)]

export type ServerFrame = Static<typeof ServerFrame>
export type ServerFrameType = ServerFrame['type']

/** What a connection needs of a frame to send each event once and in order. */
export interface FrameHead {
  type: ServerFrameType
  conversation_id?: string
  seq?: number
}

/** The frames that answer each client frame (none: `typing`); `error` also answers a frame that is not valid. */
export const ANSWERS: Record<ClientFrame['type'], ServerFrameType[]> = {
  ping: ['pong'], typing: [], send: ['ack', 'error'], read: ['ack', 'error'], edit: ['ack', 'error'], delete: ['ack', 'error'],
  react: ['ack', 'error'], unreact: ['ack', 'error'], resume: ['resumed', 'error'], auth: ['ack', 'error'],
}

/** An event's frame as the connection knows it before its text: its type, conversation and seq. */
export const eventHead = (type: string, conversationId: string, seq: number): FrameHead =>
  ({ type: type as ServerFrameType, conversation_id: conversationId, seq })

/** An event's frame as text, around its `data` already serialized (as a replay reads it from the log). */
export function eventFrameText(type: string, conversationId: string, seq: number, dataJson: string): string {
  return `{"type":${JSON.stringify(type)},"conversation_id":"${conversationId}","seq":${seq},"data":${dataJson}}`
}
