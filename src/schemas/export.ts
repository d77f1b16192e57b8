import { Type, type Static } from 'typebox'
import { Nullable, Timestamp, Uuid } from './common.ts'
import { Message } from './messages.ts'
import { Me } from './users.ts'
import { named } from './named.ts'

// GET /users/me/export. The body is streamed, so this schema documents it (OpenAPI) and types the test;
// Fastify does not serialize a stream through it.

const ExportParticipant = Type.Object({ id: Uuid, username: Type.String(), display_name: Type.String() }, { description: 'A current member, public fields only' })

export const ExportConversation = Type.Object(
  {
    id: Uuid,
    is_group: Type.Boolean(),
    name: Nullable(Type.String()),
    created_by: Uuid,
    created_at: Timestamp,
    role: Type.Union([Type.Literal('admin'), Type.Literal('member')], { description: 'Your role' }),
    joined_at: Timestamp,
    participants: Type.Array(ExportParticipant),
  },
  { description: 'A conversation you are a member of now' },
)

export const ExportReaction = Type.Object(
  { message_id: Uuid, conversation_id: Uuid, emoji: Type.String(), created_at: Timestamp },
  { description: 'A reaction you gave, in a conversation you are a member of now' },
)

export const ExportFile = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    mime_type: Type.String(),
    size: Type.Integer(),
    purpose: Type.Union([Type.Literal('message'), Type.Literal('avatar')]),
    created_at: Timestamp,
  },
  { description: "A file you uploaded that is still stored (metadata only; GET /files/{id} serves the bytes)" },
)

export const ExportArchive = named('ExportArchive', Type.Object(
  {
    exported_at: Timestamp,
    profile: Me,
    conversations: Type.Array(ExportConversation),
    messages: Type.Array(Message, { description: 'The messages you sent, as GET /messages/{id} gives them now' }),
    reactions: Type.Array(ExportReaction),
    files: Type.Array(ExportFile),
  },
  { description: 'Your data, read from one snapshot of the database' },
))
export type ExportArchive = Static<typeof ExportArchive>
