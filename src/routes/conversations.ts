import { Type } from 'typebox'
import { IdParams, NoContent, SIGNED_IN, Uuid } from '../schemas/common.ts'
import { errors } from '../schemas/error-responses.ts'
import type { ErrorCode } from '../error-codes.ts'
import { Conversation, ConversationSettings, GroupName, Participant, Role } from '../schemas/conversations.ts'
import { Message, HistoryPage } from '../schemas/messages.ts'
import { badRequest } from '../errors.ts'
import { type App, secured } from './types.ts'

const MemberParams = Type.Object({ id: Uuid, user_id: Uuid })
const tags = ['conversations']
// What a route on one conversation can answer besides its own errors: a bad id, no token, not a member.
const ON_CONVERSATION: ErrorCode[] = ['VALIDATION_ERROR', ...SIGNED_IN, 'CONVERSATION_NOT_FOUND']
// A group change only admins make.
const ADMIN_CHANGE: ErrorCode[] = [...ON_CONVERSATION, 'NOT_A_GROUP', 'NOT_ADMIN']

export default async function conversationRoutes(app: App) {
  const { conversations, memberState, messages, pins } = app.services
  app.addHook('onRequest', app.authenticate)

  app.post('/conversations', {
    schema: {
      tags,
      summary: 'Start a direct conversation (200 with the existing one if the pair already has one) or a group',
      operationId: 'createConversation',
      security: secured,
      body: Type.Object(
        {
          participant_ids: Type.Array(Uuid, { maxItems: 1000, uniqueItems: true, description: 'The other members; you are added yourself' }),
          is_group: Type.Boolean({ default: false }),
          name: Type.Optional(GroupName),
        },
        // A group of one (you) is a valid start: members can be added later.
        { additionalProperties: false, examples: [{ is_group: true, name: 'Weekend plans', participant_ids: [] }] },
      ),
      response: {
        200: Conversation, 201: Conversation,
        ...errors('VALIDATION_ERROR', 'NAME_REQUIRED', 'INVALID_PARTICIPANTS', 'GROUP_TOO_LARGE', ...SIGNED_IN, 'BLOCKED', 'USER_NOT_FOUND'),
      },
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
      operationId: 'listConversations',
      security: secured,
      querystring: Type.Object({
        limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
        before: Type.Optional(Type.String({ format: 'uuid', description: 'The id of the last conversation of the previous page' })),
        archived: Type.Boolean({ default: false, description: 'Your archived conversations only (they are left out otherwise)' }),
      }),
      response: { 200: Type.Array(Conversation), ...errors('VALIDATION_ERROR', ...SIGNED_IN) },
    },
  }, async (request) => conversations.list(request.userId, request.query))

  app.patch('/conversations/:id/settings', {
    schema: {
      tags,
      summary: 'Mute or archive a conversation, for yourself only',
      description: 'A mute ends by itself at `muted_until`; a muted conversation still counts unread. An archived one stays archived, new messages or not, until you unarchive it. Your other sockets get `conversation_updated`.',
      operationId: 'updateConversationSettings',
      security: secured,
      params: IdParams,
      body: ConversationSettings,
      response: { 200: Conversation, ...errors(...ON_CONVERSATION) },
    },
  }, async (request) => memberState.updateSettings(request.params.id, request.userId, request.body))

  app.get('/conversations/:id', {
    schema: { tags, summary: 'One conversation', operationId: 'getConversation', security: secured, params: IdParams, response: { 200: Conversation, ...errors(...ON_CONVERSATION) } },
  }, async (request) => conversations.get(request.params.id, request.userId))

  app.patch('/conversations/:id', {
    schema: {
      tags,
      summary: 'Rename a group (admins)',
      operationId: 'renameConversation',
      security: secured,
      params: IdParams,
      body: Type.Object({ name: GroupName }, { additionalProperties: false, examples: [{ name: 'Weekend plans' }] }),
      response: { 200: Conversation, ...errors(...ADMIN_CHANGE) },
    },
  }, async (request) => conversations.rename(request.params.id, request.userId, request.body.name))

  app.get('/conversations/:id/participants', {
    schema: { tags, summary: 'Members and their roles', operationId: 'listParticipants', security: secured, params: IdParams, response: { 200: Type.Array(Participant), ...errors(...ON_CONVERSATION) } },
  }, async (request) => conversations.participants(request.params.id, request.userId))

  app.post('/conversations/:id/participants', {
    schema: {
      tags,
      summary: 'Add members to a group (admins); answers with the members',
      operationId: 'addParticipants',
      security: secured,
      params: IdParams,
      body: Type.Object({ user_ids: Type.Array(Uuid, { minItems: 1, maxItems: 1000, uniqueItems: true }) }, { additionalProperties: false }),
      response: { 200: Type.Array(Participant), ...errors(...ADMIN_CHANGE, 'GROUP_TOO_LARGE', 'USER_NOT_FOUND') },
    },
  }, async (request) => conversations.addParticipants(request.params.id, request.userId, request.body.user_ids))

  app.delete('/conversations/:id/participants/:user_id', {
    schema: {
      tags, summary: 'Remove a member (admins; yourself means leave)', operationId: 'removeParticipant', security: secured, params: MemberParams,
      response: { 204: NoContent, ...errors(...ADMIN_CHANGE, 'PARTICIPANT_NOT_FOUND') },
    },
  }, async (request, reply) => {
    await conversations.removeParticipant(request.params.id, request.userId, request.params.user_id)
    return reply.code(204).send(null)
  })

  app.patch('/conversations/:id/participants/:user_id', {
    schema: {
      tags,
      summary: 'Promote or demote a member (admins)',
      operationId: 'setParticipantRole',
      security: secured,
      params: MemberParams,
      body: Type.Object({ role: Role }, { additionalProperties: false, examples: [{ role: 'admin' }] }),
      response: { 200: Participant, ...errors(...ADMIN_CHANGE, 'PARTICIPANT_NOT_FOUND', 'LAST_ADMIN') },
    },
  }, async (request) => conversations.setRole(request.params.id, request.userId, request.params.user_id, request.body.role))

  app.post('/conversations/:id/leave', {
    schema: { tags, summary: 'Leave a group', operationId: 'leaveConversation', security: secured, params: IdParams, response: { 204: NoContent, ...errors(...ON_CONVERSATION, 'NOT_A_GROUP') } },
  }, async (request, reply) => {
    await conversations.leave(request.params.id, request.userId)
    return reply.code(204).send(null)
  })

  app.get('/conversations/:id/messages', {
    schema: {
      tags,
      summary: 'History: newest first (with before), or oldest first (with after)',
      operationId: 'listMessages',
      security: secured,
      params: IdParams,
      querystring: HistoryPage,
      response: { 200: Type.Array(Message), ...errors(...ON_CONVERSATION, 'MESSAGE_NOT_FOUND') },
    },
  }, async (request) => messages.list(request.params.id, request.userId, request.query))

  app.get('/conversations/:id/pins', {
    schema: { tags, summary: 'Pinned messages, most recently pinned first', operationId: 'listPins', security: secured, params: IdParams, response: { 200: Type.Array(Message), ...errors(...ON_CONVERSATION) } },
  }, async (request) => pins.list(request.params.id, request.userId))

  app.delete('/conversations/:id/messages', {
    schema: { tags, summary: 'Clear the history for yourself only', operationId: 'clearHistory', security: secured, params: IdParams, response: { 204: NoContent, ...errors(...ON_CONVERSATION) } },
  }, async (request, reply) => {
    await memberState.clearHistory(request.params.id, request.userId)
    return reply.code(204).send(null)
  })

  app.post('/conversations/:id/typing', {
    schema: {
      tags,
      summary: 'Say you are (or stopped) typing; broadcast only, never stored',
      operationId: 'sendTyping',
      security: secured,
      params: IdParams,
      body: Type.Object({ is_typing: Type.Boolean() }, { additionalProperties: false, examples: [{ is_typing: true }] }),
      response: { 204: NoContent, ...errors(...ON_CONVERSATION) },
    },
  }, async (request, reply) => {
    await memberState.typing(request.params.id, request.userId, request.body.is_typing)
    return reply.code(204).send(null)
  })
}
