import { Type, type Static } from 'typebox'
import { Nullable, Timestamp, Uuid } from './common.ts'
import { named } from './named.ts'

export const MESSAGE_MAX_LENGTH = 5000
export const DELETED_CONTENT = 'This message was deleted'

export const Content = Type.String({ minLength: 1, maxLength: MESSAGE_MAX_LENGTH })
export const ClientId = Type.String({ minLength: 1, maxLength: 100, description: 'Idempotency key, unique per sender' })

/** What a system message says, by ids: clients render it with the names they know now. */
export const SystemEvent = named('SystemEvent', Type.Object({
  action: Type.Union([
    Type.Literal('group_created'), Type.Literal('group_renamed'), Type.Literal('photo_changed'), Type.Literal('members_added'),
    Type.Literal('member_removed'), Type.Literal('role_changed'), Type.Literal('member_left'), Type.Literal('admin_inherited'),
    Type.Literal('message_pinned'),
  ]),
  actor_id: Uuid,
  user_ids: Type.Optional(Type.Array(Uuid, { description: 'The members added, removed, promoted or demoted, or the new admin' })),
  name: Type.Optional(Type.String({ description: "The group's (new) name" })),
  role: Type.Optional(Type.Union([Type.Literal('admin'), Type.Literal('member')])),
  message_id: Type.Optional(Uuid),
}, { description: 'What a system message says, by ids: render it with the names you know now' }))
export type SystemEvent = Static<typeof SystemEvent>

export const MAX_REACTIONS_PER_MESSAGE = 20

export const Reaction = named('Reaction', Type.Object({
  emoji: Type.String(),
  count: Type.Integer({ minimum: 1 }),
  user_ids: Type.Array(Uuid, { description: 'Who reacted with it, oldest first' }),
}, { description: 'One emoji on a message: how many gave it, and who' }))
export type Reaction = Static<typeof Reaction>

/** `emoji`: one emoji (a flag, a skin tone and a ZWJ sequence are each one) or a `:short_code:`. */
export const Emoji = Type.String({ minLength: 1, maxLength: 64, description: 'One emoji grapheme, or a :short_code: (letters, digits, _+-, at most 32 characters)' })

export const Quote = named('Quote', Type.Object(
  {
    id: Uuid,
    sender_id: Uuid,
    message_type: Type.String(),
    content: Nullable(Type.String({ description: 'The first 200 characters; the deleted form once deleted' })),
    is_deleted: Type.Boolean(),
  },
  { description: 'The message `reply_to_id` names, as it is now' },
))

export const ForwardedFrom = named('ForwardedFrom', Type.Object({ sender_id: Uuid, created_at: Timestamp }, { description: 'A forwarded copy: who sent the original, and when' }))

export const Message = named('Message', Type.Object(
  {
    id: Uuid,
    conversation_id: Uuid,
    sender_id: Uuid,
    seq: Type.Integer({ description: "Position of the message's creation in its conversation's event log" }),
    message_type: Type.Union([Type.Literal('text'), Type.Literal('image'), Type.Literal('video'), Type.Literal('file'), Type.Literal('system')]),
    content: Nullable(Type.String()),
    file_url: Nullable(Type.String()),
    file_name: Nullable(Type.String()),
    file_size: Nullable(Type.Integer()),
    mime_type: Nullable(Type.String()),
    thumbnail_url: Nullable(Type.String({ description: 'An image: its preview, at most 480×480 WebP (`GET /files/{id}/thumbnail`); null otherwise' })),
    width: Nullable(Type.Integer({ description: "An image with a preview: the original's width in pixels as shown (EXIF orientation applied)" })),
    height: Nullable(Type.Integer({ description: "An image with a preview: the original's height in pixels as shown" })),
    reply_to_id: Nullable(Uuid),
    client_id: Nullable(Type.String()),
    is_edited: Type.Boolean(),
    is_deleted: Type.Boolean(),
    created_at: Timestamp,
    updated_at: Timestamp,
    system: Nullable(SystemEvent),
    reactions: Type.Array(Reaction, { description: "In order of each emoji's first use" }),
    thread_id: Nullable(Uuid),
    thread_reply_count: Type.Integer({ description: 'On a thread root: its replies not deleted; 0 otherwise' }),
    thread_last_reply_at: Nullable(Timestamp),
    mentions: Type.Array(Uuid, { description: 'Members named as @username in the content' }),
    pinned_at: Nullable(Timestamp),
    pinned_by: Nullable(Uuid),
    forwarded_from: Nullable(ForwardedFrom),
    reply_to: Nullable(Quote),
  },
  { description: 'A message as every member sees it; a deleted one keeps its row, with `is_deleted`, the content "This message was deleted" and no file' },
))
export type Message = Static<typeof Message>

export const Receipt = named('Receipt', Type.Object({ user_id: Uuid, read_at: Timestamp }, { description: 'A member who has read the message, and when' }))
export type Receipt = Static<typeof Receipt>

export const MessageEdit = named('MessageEdit', Type.Object(
  { content: Nullable(Type.String()), edited_at: Timestamp },
  { description: 'One earlier version of an edited message: its content, and when an edit replaced it' },
))
export type MessageEdit = Static<typeof MessageEdit>

/** A page of messages by cursor: `before` and `after` are message ids. */
export const HistoryPage = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
  before: Type.Optional(Type.String({ format: 'uuid', description: 'A message id: only older messages' })),
  after: Type.Optional(Type.String({ format: 'uuid', description: 'A message id: only newer messages, oldest first' })),
})
