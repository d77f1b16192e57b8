import { Type } from 'typebox'
import { IdParams, NoContent, Nullable, SIGNED_IN } from '../schemas/common.ts'
import { errors } from '../schemas/error-responses.ts'
import { ExportArchive } from '../schemas/export.ts'
import { DisplayName, Email, Me, Password, User } from '../schemas/users.ts'
import { type App, secured } from './types.ts'

export default async function userRoutes(app: App) {
  const { users, blocks } = app.services
  app.addHook('onRequest', app.authenticate)

  app.get('/users/me', {
    schema: { tags: ['users'], summary: 'Your own profile', operationId: 'getMe', security: secured, response: { 200: Me, ...errors(...SIGNED_IN) } },
  }, async (request) => users.me(request.userId))

  app.patch('/users/me', {
    schema: {
      tags: ['users'],
      summary: 'Change display name, email or password (a new password or email needs current_password; a new password ends your other sessions)',
      operationId: 'updateMe',
      security: secured,
      body: Type.Object(
        { display_name: Type.Optional(DisplayName), email: Type.Optional(Nullable(Email)), password: Type.Optional(Password), current_password: Type.Optional(Type.String({ maxLength: 256 })) },
        { additionalProperties: false, examples: [{ display_name: 'Alice Liddell' }] },
      ),
      response: { 200: Me, ...errors('VALIDATION_ERROR', 'CURRENT_PASSWORD_REQUIRED', ...SIGNED_IN, 'WRONG_PASSWORD', 'EMAIL_TAKEN', 'RATE_LIMITED') },
    },
    preHandler: app.passwordCheckRateLimit,
  }, async (request) => users.update(request.userId, request.body, request.sessionId))

  app.delete('/users/me', {
    schema: { tags: ['users'], summary: 'Delete your account (soft: your messages stay)', operationId: 'deleteMe', security: secured, response: { 204: NoContent, ...errors(...SIGNED_IN) } },
  }, async (request, reply) => {
    await users.softDelete(request.userId)
    return reply.code(204).send(null)
  })

  app.get('/users/me/export', {
    schema: {
      tags: ['users'],
      summary: 'Your data as one JSON file: profile, conversations, the messages you sent, files (streamed; EXPORT_RATE_LIMIT_MAX per window)',
      operationId: 'exportMyData',
      security: secured,
      response: { 200: ExportArchive, ...errors(...SIGNED_IN, 'RATE_LIMITED', 'EXPORT_BUSY') },
    },
    preHandler: app.exportRateLimit,
  }, async (request, reply) => {
    const archive = await app.services.exports.open(request.userId).catch((err) => {
      if (err.code === 'EXPORT_BUSY') reply.header('retry-after', 60)
      throw err
    })
    const date = archive.exportedAt.toISOString().slice(0, 10)
    return reply
      .type('application/json; charset=utf-8')
      .header('content-disposition', `attachment; filename="parley-export-${archive.username}-${date}.json"`)
      // Sent as it streams (Fastify serializes no stream); the schema documents what the stream produces.
      .send(archive.body as never)
  })

  app.get('/users', {
    schema: {
      tags: ['users'],
      summary: 'Search users by username or display name',
      operationId: 'searchUsers',
      security: secured,
      querystring: Type.Object({ query: Type.String({ minLength: 1, maxLength: 100 }), limit: Type.Integer({ minimum: 1, maximum: 50, default: 20 }) }),
      response: { 200: Type.Array(User), ...errors('VALIDATION_ERROR', ...SIGNED_IN) },
    },
  }, async (request) => users.search(request.userId, request.query.query, request.query.limit))

  app.get('/users/me/blocks', {
    schema: { tags: ['users'], summary: 'The users you block, most recently blocked first', operationId: 'listBlockedUsers', security: secured, response: { 200: Type.Array(User), ...errors(...SIGNED_IN) } },
  }, async (request) => blocks.list(request.userId))

  const blockSchema = (operationId: string, summary: string, description: string) => ({
    schema: {
      tags: ['users'], summary, description, operationId, security: secured, params: IdParams,
      response: { 204: NoContent, ...errors('VALIDATION_ERROR', 'CANNOT_BLOCK_SELF', ...SIGNED_IN, 'USER_NOT_FOUND') },
    },
  })
  app.post('/users/:id/block', blockSchema(
    'blockUser',
    'Block a user',
    'Neither of you can then open or write to your direct conversation (403 BLOCKED), and they no longer get your presence or typing. Groups you share are untouched. Blocking twice changes nothing.',
  ), async (request, reply) => {
    await blocks.block(request.userId, request.params.id)
    return reply.code(204).send(null)
  })
  app.delete('/users/:id/block', blockSchema('unblockUser', 'Unblock a user', 'Unblocking someone you do not block changes nothing.'), async (request, reply) => {
    await blocks.unblock(request.userId, request.params.id)
    return reply.code(204).send(null)
  })

  app.get('/users/:id', {
    schema: { tags: ['users'], summary: 'A public profile', operationId: 'getUser', security: secured, params: IdParams, response: { 200: User, ...errors('VALIDATION_ERROR', ...SIGNED_IN, 'USER_NOT_FOUND') } },
  }, async (request) => users.publicView(request.userId, request.params.id))
}
