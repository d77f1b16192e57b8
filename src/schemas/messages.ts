import { Type, type Static } from 'typebox'
import { Nullable, Timestamp, Uuid } from './common.ts'

export const MESSAGE_MAX_LENGTH = 5000
export const DELETED_CONTENT = 'This message was deleted'

export const Content = Type.String({ minLength: 1, maxLength: MESSAGE_MAX_LENGTH })
export const ClientId = Type.String({ minLength: 1, maxLength: 100, description: 'Idempotency key, unique per sender' })

export const Message = Type.Object(
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
    reply_to_id: Nullable(Uuid),
    client_id: Nullable(Type.String()),
    is_edited: Type.Boolean(),
    is_deleted: Type.Boolean(),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
)
export type Message = Static<typeof Message>

export const Receipt = Type.Object({ user_id: Uuid, read_at: Timestamp })
export type Receipt = Static<typeof Receipt>
