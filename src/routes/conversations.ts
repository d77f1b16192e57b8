import { Type } from 'typebox'
import { errors, IdParams, NoContent, Uuid } from '../schemas/common.ts'
import { Conversation, ConversationSettings, GroupName, Participant, Role } from '../schemas/conversations.ts'
import { Message, HistoryPage } from '../schemas/messages.ts'
import { badRequest } from '../errors.ts'
import { type App, secured } from './types.ts'

const MemberParams = Type.Object({ id: Uuid, user_id: Uuid })
const tags = ['conversations']

export default async function conversationRoutes(app: App) {
  const { conversations, messages, pins } = app.services
  app.addHook('onRequest', app.authenticate)

  app.post('/conversations', {
    schema: {
      tags,
      summary: 'Start a direct conversation (200 with the existing one if the pair already has one) or a group',
      security: secured,
      body: Type.Object(
        {
          participant_ids: Type.Array(Uuid, { maxItems: 1000, uniqueItems: true, description: 'The other members; you are added yourself' }),
          is_group: Type.Boolean({ default: false }),
          name: Type.Optional(GroupName),
        },
        { additionalProperties: false },
      ),
      response: { 200: Conversation, 201: Conversation, ...errors(400, 401, 403, 404) },
    },
  }, async (request, reply) => {
    const { participant_ids, is_group, name } = request.body
    if (is_group) {
      if (name === undefined) throw badRequest('A group needs a name', 'NAME_REQUIRED')
      return reply.code(201).send(await conversations.createGroup(request.userId, name, participant_ids))
    }
    const others = participant_ids.filter((id) => id !== request.userId)
    if (others.length !== 1) throw badRequest('A direct conversation has exactly one other participant', 'INVALID_PARTICIPANTS')
    const { id, created } = await conversations.openDirect(request.userId, others[0])
    return reply.code(created ? 201 : 200).send(await conversations.get(id, request.userId))
  })

  app.get('/conversations', {
    schema: {
      tags,
      summary: 'Your conversations, most recent activity first',
      security: secured,
      querystring: Type.Object({
        limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
        before: Type.Optional(Type.String({ format: 'uuid', description: 'The id of the last conversation of the previous page' })),
        archived: Type.Boolean({ default: false, description: 'Your archived conversations only (they are left out otherwise)' }),
      }),
      response: { 200: Type.Array(Conversation), ...errors(400, 401) },
    },
  }, async (request) => conversations.list(request.userId, request.query))

  app.patch('/conversations/:id/settings', {
    schema: {
      tags,
      summary: 'Mute or archive a conversation, for yourself only',
      description: 'A mute ends by itself at `muted_until`; a muted conversation still counts unread. An archived one stays archived, new messages or not, until you unarchive it. Your other sockets get `conversation_updated`.',
      security: secured,
      params: IdParams,
      body: ConversationSettings,
      response: { 200: Conversation, ...errors(400, 401, 404) },
    },
  }, async (request) => conversations.updateSettings(request.params.id, request.userId, request.body))

  app.get('/conversations/:id', {
    schema: { tags, summary: 'One conversation', security: secured, params: IdParams, response: { 200: Conversation, ...errors(400, 401, 404) } },
  }, async (request) => conversations.get(request.params.id, request.userId))

  app.patch('/conversations/:id', {
    schema: {
      tags,
      summary: 'Rename a group (admins)',
      security: secured,
      params: IdParams,
      body: Type.Object({ name: GroupName }, { additionalProperties: false }),
      response: { 200: Conversation, ...errors(400, 401, 403, 404) },
    },
  }, async (request) => conversations.rename(request.params.id, request.userId, request.body.name))

  app.get('/conversations/:id/participants', {
    schema: { tags, summary: 'Members and their roles', security: secured, params: IdParams, response: { 200: Type.Array(Participant), ...errors(400, 401, 404) } },
  }, async (request) => conversations.participants(request.params.id, request.userId))

  app.post('/conversations/:id/participants', {
    schema: {
      tags,
      summary: 'Add members to a group (admins); answers with the members',
      security: secured,
      params: IdParams,
      body: Type.Object({ user_ids: Type.Array(Uuid, { minItems: 1, maxItems: 1000, uniqueItems: true }) }, { additionalProperties: false }),
      response: { 200: Type.Array(Participant), ...errors(400, 401, 403, 404) },
    },
  }, async (request) => conversations.addParticipants(request.params.id, request.userId, request.body.user_ids))

  app.delete('/conversations/:id/participants/:user_id', {
    schema: { tags, summary: 'Remove a member (admins; yourself means leave)', security: secured, params: MemberParams, response: { 204: NoContent, ...errors(400, 401, 403, 404) } },
  }, async (request, reply) => {
    await conversations.removeParticipant(request.params.id, request.userId, request.params.user_id)
    return reply.code(204).send(null)
  })

  app.patch('/conversations/:id/participants/:user_id', {
    schema: {
      tags,
      summary: 'Promote or demote a member (admins)',
      security: secured,
      params: MemberParams,
      body: Type.Object({ role: Role }, { additionalProperties: false }),
      response: { 200: Participant, ...errors(400, 401, 403, 404, 409) },
    },
  }, async (request) => conversations.setRole(request.params.id, request.userId, request.params.user_id, request.body.role))

  app.post('/conversations/:id/leave', {
    schema: { tags, summary: 'Leave a group', security: secured, params: IdParams, response: { 204: NoContent, ...errors(400, 401, 404) } },
  }, async (request, reply) => {
    await conversations.leave(request.params.id, request.userId)
    return reply.code(204).send(null)
  })

  app.get('/conversations/:id/messages', {
    schema: {
      tags,
      summary: 'History: newest first (with before), or oldest first (with after)',
      security: secured,
      params: IdParams,
      querystring: HistoryPage,
      response: { 200: Type.Array(Message), ...errors(400, 401, 404) },
    },
  }, async (request) => messages.list(request.params.id, request.userId, request.query))

  app.get('/conversations/:id/pins', {
    schema: { tags, summary: 'Pinned messages, most recently pinned first', security: secured, params: IdParams, response: { 200: Type.Array(Message), ...errors(400, 401, 404) } },
  }, async (request) => pins.list(request.params.id, request.userId))

  app.delete('/conversations/:id/messages', {
    schema: { tags, summary: 'Clear the history for yourself only', security: secured, params: IdParams, response: { 204: NoContent, ...errors(400, 401, 404) } },
  }, async (request, reply) => {
    await conversations.clearHistory(request.params.id, request.userId)
    return reply.code(204).send(null)
  })

  app.post('/conversations/:id/typing', {
    schema: {
      tags,
      summary: 'Say you are (or stopped) typing; broadcast only, never stored',
      security: secured,
      params: IdParams,
      body: Type.Object({ is_typing: Type.Boolean() }, { additionalProperties: false }),
      response: { 204: NoContent, ...errors(400, 401, 404) },
    },
  }, async (request, reply) => {
    await conversations.typing(request.params.id, request.userId, request.body.is_typing)
    return reply.code(204).send(null)
  })
}
