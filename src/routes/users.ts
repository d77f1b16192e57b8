import { Type } from 'typebox'
import { errors, IdParams, NoContent, Nullable } from '../schemas/common.ts'
import { ExportArchive } from '../schemas/export.ts'
import { DisplayName, Email, Me, Password, User } from '../schemas/users.ts'
import { type App, secured } from './types.ts'

export default async function userRoutes(app: App) {
  const { users, blocks } = app.services
  app.addHook('onRequest', app.authenticate)

  app.get('/users/me', {
    schema: { tags: ['users'], summary: 'Your own profile', security: secured, response: { 200: Me, ...errors(401) } },
  }, async (request) => users.me(request.userId))

  app.patch('/users/me', {
    schema: {
      tags: ['users'],
      summary: 'Change display name, email or password (a new password or email needs current_password; a new password ends your other sessions)',
      security: secured,
      body: Type.Object(
        { display_name: Type.Optional(DisplayName), email: Type.Optional(Nullable(Email)), password: Type.Optional(Password), current_password: Type.Optional(Type.String({ maxLength: 256 })) },
        { additionalProperties: false },
      ),
      response: { 200: Me, ...errors(400, 401, 403, 409, 429) },
    },
    preHandler: app.passwordCheckRateLimit,
  }, async (request) => users.update(request.userId, request.body, request.sessionId))

  app.delete('/users/me', {
    schema: { tags: ['users'], summary: 'Delete your account (soft: your messages stay)', security: secured, response: { 204: NoContent, ...errors(401) } },
  }, async (request, reply) => {
    await users.softDelete(request.userId)
    return reply.code(204).send(null)
  })

  app.get('/users/me/export', {
    schema: {
      tags: ['users'],
      summary: 'Your data as one JSON file: profile, conversations, the messages you sent, files (streamed; EXPORT_RATE_LIMIT_MAX per window)',
      security: secured,
      response: { 200: ExportArchive, ...errors(401, 429, 503) },
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
      security: secured,
      querystring: Type.Object({ query: Type.String({ minLength: 1, maxLength: 100 }), limit: Type.Integer({ minimum: 1, maximum: 50, default: 20 }) }),
      response: { 200: Type.Array(User), ...errors(400, 401) },
    },
  }, async (request) => users.search(request.userId, request.query.query, request.query.limit))

  app.get('/users/me/blocks', {
    schema: { tags: ['users'], summary: 'The users you block, most recently blocked first', security: secured, response: { 200: Type.Array(User), ...errors(401) } },
  }, async (request) => blocks.list(request.userId))

  const blockSchema = (summary: string, description: string) => ({
    schema: { tags: ['users'], summary, description, security: secured, params: IdParams, response: { 204: NoContent, ...errors(400, 401, 404) } },
  })
  app.post('/users/:id/block', blockSchema(
    'Block a user',
    'Neither of you can then open or write to your direct conversation (403 BLOCKED), and they no longer get your presence or typing. Groups you share are untouched. Blocking twice changes nothing.',
  ), async (request, reply) => {
    await blocks.block(request.userId, request.params.id)
    return reply.code(204).send(null)
  })
  app.delete('/users/:id/block', blockSchema('Unblock a user', 'Unblocking someone you do not block changes nothing.'), async (request, reply) => {
    await blocks.unblock(request.userId, request.params.id)
    return reply.code(204).send(null)
  })

  app.get('/users/:id', {
    schema: { tags: ['users'], summary: 'A public profile', security: secured, params: IdParams, response: { 200: User, ...errors(400, 401, 404) } },
  }, async (request) => users.publicView(request.userId, request.params.id))
}
