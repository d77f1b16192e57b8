import { Type, type Static } from 'typebox'
import { Message } from './messages.ts'
import { PublicUser } from './users.ts'
import { Nullable, Timestamp, Uuid } from './common.ts'

export const Role = Type.Union([Type.Literal('admin'), Type.Literal('member')])
export const GroupName = Type.String({ minLength: 1, maxLength: 255 })

export const Participant = Type.Object(
  { user: PublicUser, role: Role, joined_at: Timestamp },
)

export const Conversation = Type.Object(
  {
    id: Uuid,
    is_group: Type.Boolean(),
    name: Nullable(Type.String()),
    avatar_url: Nullable(Type.String()),
    created_by: Uuid,
    created_at: Timestamp,
    updated_at: Timestamp,
    participants: Type.Array(Participant),
    last_message: Nullable(Message),
    unread_count: Type.Integer(),
    unread_mention_count: Type.Integer({ description: 'Unread messages that mention you' }),
    pinned_count: Type.Integer({ description: 'Pinned messages (at most 50)' }),
    last_seq: Type.Integer(),
  },
)

export type Participant = Static<typeof Participant>
export type Conversation = Static<typeof Conversation>