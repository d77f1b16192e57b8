import { Type, type Static } from 'typebox'
import { Message } from './messages.ts'
import { User } from './users.ts'
import { named } from './named.ts'
import { Nullable, Timestamp, Uuid } from './common.ts'

export const Role = Type.Union([Type.Literal('admin'), Type.Literal('member')])
export const GroupName = Type.String({ minLength: 1, maxLength: 255 })

export const Participant = named('Participant', Type.Object(
  { user: User, role: Role, joined_at: Timestamp },
  { description: 'A member of a conversation, with their role' },
))

export const Conversation = named('Conversation', Type.Object(
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
    muted_until: Nullable(Timestamp, { description: 'You muted it until then (yours only); null when not muted, or once that time has passed' }),
    is_archived: Type.Boolean({ description: 'You archived it (yours only): it is listed with ?archived=true only' }),
    last_seq: Type.Integer({ description: 'The seq of its latest event: resume from here on the WebSocket' }),
  },
  { description: 'A direct conversation or a group, as the caller sees it (unread counts, mute and archive are yours)' },
))

/** PATCH /conversations/{id}/settings: the caller's own mute and archive. */
export const ConversationSettings = Type.Object(
  {
    muted_until: Type.Optional(Nullable(Timestamp, { description: 'Mute until then; null unmutes' })),
    is_archived: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1, examples: [{ muted_until: null, is_archived: true }] },
)
export type ConversationSettings = Static<typeof ConversationSettings>

export type Participant = Static<typeof Participant>
export type Conversation = Static<typeof Conversation>