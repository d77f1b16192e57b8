import { Type } from 'typebox'
import { errors, IdParams, NoContent } from '../schemas/common.ts'
import { Session } from '../schemas/sessions.ts'
import { AuthTokens, DisplayName, Email, Password, Username } from '../schemas/users.ts'
import { type App, secured } from './types.ts'

// Long enough for an access token sent by mistake to be told it is not a refresh token (401), not a 400.
const RefreshBody = Type.Object({ refresh_token: Type.String({ minLength: 1, maxLength: 1000 }) })

export default async function authRoutes(app: App) {
  const { auth } = app.services
  // Per client IP and route, stricter than the global limit (which they replace: `rateLimit: false`); login also
  // per username, so that spreading guesses over many addresses does not help (see plugins/rate-limit.ts).
  const perIp = { config: { rateLimit: false as const }, onRequest: app.authRateLimit }

  app.post('/auth/register', {
    ...perIp,
    schema: {
      tags: ['auth'],
      summary: 'Create an account and sign in',
      body: Type.Object({ username: Username, password: Password, email: Type.Optional(Email), display_name: Type.Optional(DisplayName) }, { additionalProperties: false }),
      response: { 201: AuthTokens, ...errors(400, 409, 413, 415, 429) },
    },
  }, async (request, reply) => reply.code(201).send(await auth.register(request.body, request.headers['user-agent'])))

  app.post('/auth/login', {
    ...perIp,
    preHandler: app.loginRateLimit,
    schema: {
      tags: ['auth'],
      summary: 'Sign in (JSON, or form-encoded as Swagger UI\'s Authorize sends it)',
      // Login checks credentials, not the rules for new passwords: an old password stays usable.
      body: Type.Object({ username: Type.String({ minLength: 1, maxLength: 64 }), password: Type.String({ minLength: 1, maxLength: 256 }) }),
      response: { 200: AuthTokens, ...errors(400, 401, 413, 415, 429) },
    },
  }, async (request) => auth.login(request.body.username, request.body.password, request.headers['user-agent']))

  app.post('/auth/refresh', {
    ...perIp,
    schema: {
      tags: ['auth'],
      summary: 'Trade a refresh token for a new pair; the old one stops working',
      body: RefreshBody,
      response: { 200: AuthTokens, ...errors(400, 401, 429) },
    },
  }, async (request) => auth.refresh(request.body.refresh_token))

  app.post('/auth/logout', {
    onRequest: [app.authenticate],
    schema: {
      tags: ['auth'],
      summary: 'End the session of this refresh token',
      security: secured,
      body: RefreshBody,
      response: { 204: NoContent, ...errors(400, 401) },
    },
  }, async (request, reply) => {
    await auth.logout(request.userId, request.body.refresh_token)
    return reply.code(204).send(null)
  })

  // Sessions: each sign-in is one, until it is ended here, by logout, by a password change or by the reuse
  // of a spent refresh token. Its access tokens stop at their next use, its sockets close (4401).
  app.get('/auth/sessions', {
    onRequest: [app.authenticate],
    schema: {
      tags: ['auth'],
      summary: 'Your signed-in sessions, most recently used first',
      security: secured,
      response: { 200: Type.Array(Session), ...errors(401) },
    },
  }, async (request) => auth.sessions(request.userId, request.sessionId))

  app.delete('/auth/sessions/:id', {
    onRequest: [app.authenticate],
    schema: {
      tags: ['auth'],
      summary: 'End one of your sessions (this one too, if you name it)',
      security: secured,
      params: IdParams,
      response: { 204: NoContent, ...errors(400, 401, 404) },
    },
  }, async (request, reply) => {
    await auth.endSession(request.userId, request.params.id)
    return reply.code(204).send(null)
  })

  app.post('/auth/logout-all', {
    onRequest: [app.authenticate],
    schema: {
      tags: ['auth'],
      summary: 'End every one of your sessions, this one included',
      security: secured,
      response: { 204: NoContent, ...errors(401) },
    },
  }, async (request, reply) => {
    await auth.endSessions(request.userId)
    return reply.code(204).send(null)
  })
}
