import { Type } from 'typebox'
import { badRequest } from '../errors.ts'
import type { ErrorCode } from '../error-codes.ts'
import { IdParams, NoContent, SIGNED_IN, Uuid } from '../schemas/common.ts'
import { errors } from '../schemas/error-responses.ts'
import { ClientId, Content, Emoji, HistoryPage, Message, MessageEdit, Receipt } from '../schemas/messages.ts'
import { type App, secured } from './types.ts'

const tags = ['messages']
// What a route on one message can answer besides its own errors: a bad id, no token, not one you can see.
const ON_MESSAGE: ErrorCode[] = ['VALIDATION_ERROR', ...SIGNED_IN, 'MESSAGE_NOT_FOUND']

/** A message goes to a conversation or to a user, never both. */
function oneTarget<T extends { conversation_id?: string; recipient_id?: string }>(body: T): T {
  if ((body.conversation_id === undefined) === (body.recipient_id === undefined)) {
    throw badRequest('Give exactly one of conversation_id and recipient_id', 'VALIDATION_ERROR')
  }
  return body
}

export default async function messageRoutes(app: App) {
  const { messages, reactions, pins, forwarding } = app.services
  app.addHook('onRequest', app.authenticate)

  app.post('/messages', {
    schema: {
      tags,
      summary: 'Send a text message to a conversation, or to a user (opens the direct conversation)',
      description: 'Give `conversation_id` or `recipient_id`, not both. With `client_id`, a retry answers 200 with the message the first send created.',
      operationId: 'sendMessage',
      security: secured,
      body: Type.Object(
        {
          conversation_id: Type.Optional(Uuid), recipient_id: Type.Optional(Uuid), content: Content, reply_to_id: Type.Optional(Uuid),
          thread_id: Type.Optional(Type.String({ format: 'uuid', description: 'Post into the thread of this message (its root, or any reply in it)' })),
          client_id: Type.Optional(ClientId),
        },
        {
          additionalProperties: false,
          examples: [{ conversation_id: '00000000-0000-4000-8000-000000000000', content: 'Hello! Are we still on for Saturday?' }],
        },
      ),
      response: {
        200: Message, 201: Message,
        ...errors('VALIDATION_ERROR', 'INVALID_REPLY', 'INVALID_THREAD', ...SIGNED_IN, 'BLOCKED', 'CONVERSATION_NOT_FOUND', 'USER_NOT_FOUND', 'MESSAGE_NOT_FOUND', 'PAYLOAD_TOO_LARGE'),
      },
    },
  }, async (request, reply) => {
    const body = oneTarget(request.body)
    const { message, created } = await messages.send(request.userId, body)
    return reply.code(created ? 201 : 200).send(message)
  })

  app.get('/messages/:id', {
    schema: { tags, summary: 'One message', operationId: 'getMessage', security: secured, params: IdParams, response: { 200: Message, ...errors(...ON_MESSAGE) } },
  }, async (request) => messages.get(request.params.id, request.userId))

  app.patch('/messages/:id', {
    schema: {
      tags,
      summary: 'Edit your message',
      operationId: 'editMessage',
      security: secured,
      params: IdParams,
      body: Type.Object({ content: Content }, { additionalProperties: false, examples: [{ content: 'Hello! Are we still on for Sunday?' }] }),
      response: { 200: Message, ...errors(...ON_MESSAGE, 'MESSAGE_DELETED', 'NOT_SENDER') },
    },
  }, async (request) => messages.edit(request.params.id, request.userId, request.body.content))

  app.delete('/messages/:id', {
    schema: {
      tags,
      summary: 'Delete a message (its sender, or a group admin); answers with its deleted form',
      operationId: 'deleteMessage',
      security: secured,
      params: IdParams,
      response: { 200: Message, ...errors(...ON_MESSAGE, 'NOT_ALLOWED') },
    },
  }, async (request) => messages.remove(request.params.id, request.userId))

  app.post('/messages/:id/read', {
    schema: { tags, summary: 'Mark this message and every earlier one read', operationId: 'markRead', security: secured, params: IdParams, response: { 204: NoContent, ...errors(...ON_MESSAGE) } },
  }, async (request, reply) => {
    await messages.markRead(request.params.id, request.userId)
    return reply.code(204).send(null)
  })

  app.post('/messages/:id/unread', {
    schema: {
      tags,
      summary: 'Mark this message and every later one unread, for yourself',
      description: 'Moves your read position back to just before this message (never forward). Nobody else is told; your sockets get `read_state`.',
      operationId: 'markUnread',
      security: secured,
      params: IdParams,
      response: { 204: NoContent, ...errors(...ON_MESSAGE) },
    },
  }, async (request, reply) => {
    await messages.markUnread(request.params.id, request.userId)
    return reply.code(204).send(null)
  })

  app.get('/messages/:id/receipts', {
    schema: { tags, summary: 'Who has read the message, and when', operationId: 'listReceipts', security: secured, params: IdParams, response: { 200: Type.Array(Receipt), ...errors(...ON_MESSAGE) } },
  }, async (request) => messages.receipts(request.params.id, request.userId))

  app.get('/messages/:id/thread', {
    schema: {
      tags,
      summary: "A thread's replies, oldest first",
      description: 'The thread of this message (its root, or any reply in it): the first `limit` replies, those after `after`, or the `limit` just before `before`.',
      operationId: 'listThread',
      security: secured,
      params: IdParams,
      querystring: HistoryPage,
      response: { 200: Type.Array(Message), ...errors(...ON_MESSAGE) },
    },
  }, async (request) => messages.thread(request.params.id, request.userId, request.query))

  app.get('/messages/:id/edits', {
    schema: {
      tags,
      summary: "A message's earlier versions, oldest first",
      description: 'Each edit keeps the content it replaced; `edited_at` is when that edit was made. A deleted message has none.',
      operationId: 'listEdits',
      security: secured,
      params: IdParams,
      response: { 200: Type.Array(MessageEdit), ...errors(...ON_MESSAGE) },
    },
  }, async (request) => messages.edits(request.params.id, request.userId))

  app.post('/messages/:id/reactions', {
    schema: {
      tags,
      summary: 'React to a message',
      description: 'Each emoji once per user (again changes nothing), at most 20 different ones per message.',
      operationId: 'addReaction',
      security: secured,
      params: IdParams,
      body: Type.Object({ emoji: Emoji }, { additionalProperties: false, examples: [{ emoji: '👍' }] }),
      response: { 200: Message, ...errors(...ON_MESSAGE, 'INVALID_EMOJI', 'MESSAGE_DELETED', 'TOO_MANY_REACTIONS') },
    },
  }, async (request) => reactions.react(request.params.id, request.userId, request.body.emoji))

  app.delete('/messages/:id/reactions/:emoji', {
    schema: {
      tags,
      summary: 'Take your reaction back',
      description: 'The emoji URL-encoded (`%F0%9F%91%8D` for 👍). Taking back one you did not give changes nothing.',
      operationId: 'removeReaction',
      security: secured,
      params: Type.Object({ id: Uuid, emoji: Emoji }),
      response: { 200: Message, ...errors(...ON_MESSAGE, 'INVALID_EMOJI', 'MESSAGE_DELETED') },
    },
  }, async (request) => reactions.unreact(request.params.id, request.userId, request.params.emoji))

  const pinSchema = (operationId: string, summary: string, description: string) => ({
    schema: {
      tags, summary, description, operationId, security: secured, params: IdParams,
      response: { 200: Message, ...errors(...ON_MESSAGE, 'NOT_ADMIN', 'MESSAGE_DELETED', 'TOO_MANY_PINS') },
    },
  })
  app.post('/messages/:id/pin', pinSchema(
    'pinMessage',
    'Pin a message (any member of a direct conversation; group admins)',
    'At most 50 per conversation (409 TOO_MANY_PINS); a group pin adds a system message. Pinning a pinned message changes nothing.',
  ), async (request) => pins.pin(request.params.id, request.userId))
  app.delete('/messages/:id/pin', pinSchema('unpinMessage', 'Unpin a message', 'Unpinning a message that is not pinned changes nothing.'),
    async (request) => pins.unpin(request.params.id, request.userId))

  app.post('/messages/:id/forward', {
    schema: {
      tags,
      summary: 'Forward a message to a conversation, or to a user (opens the direct conversation)',
      description: 'A new message in the target with its text and file and `forwarded_from`; nothing of the source conversation. Give `conversation_id` or `recipient_id`, not both. With `client_id`, a retry answers 200 with the first copy.',
      operationId: 'forwardMessage',
      security: secured,
      params: IdParams,
      body: Type.Object(
        { conversation_id: Type.Optional(Uuid), recipient_id: Type.Optional(Uuid), client_id: Type.Optional(ClientId) },
        { additionalProperties: false, examples: [{ conversation_id: '00000000-0000-4000-8000-000000000000' }] },
      ),
      response: {
        200: Message, 201: Message,
        ...errors(...ON_MESSAGE, 'NOT_FORWARDABLE', 'BLOCKED', 'CONVERSATION_NOT_FOUND', 'USER_NOT_FOUND', 'MESSAGE_DELETED'),
      },
    },
  }, async (request, reply) => {
    const { message, created } = await forwarding.forward(request.params.id, request.userId, oneTarget(request.body))
    return reply.code(created ? 201 : 200).send(message)
  })
}
