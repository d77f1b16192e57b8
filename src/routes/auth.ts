import { Type } from 'typebox'
import { IdParams, NoContent, SIGNED_IN } from '../schemas/common.ts'
import { errors } from '../schemas/error-responses.ts'
import { Session } from '../schemas/sessions.ts'
import { AuthTokens, DisplayName, Email, Password, Username } from '../schemas/users.ts'
import { type App, secured } from './types.ts'

// Long enough for an access token sent by mistake to be told it is not a refresh token (401), not a 400.
const RefreshBody = Type.Object(
  { refresh_token: Type.String({ minLength: 1, maxLength: 1000 }) },
  { examples: [{ refresh_token: 'the refresh_token of POST /auth/login' }] },
)

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
      description: 'From Swagger UI, "Try it out" here authorizes the page with the new access token.',
      operationId: 'register',
      security: [],
      body: Type.Object(
        { username: Username, password: Password, email: Type.Optional(Email), display_name: Type.Optional(DisplayName) },
        { additionalProperties: false, examples: [{ username: 'alice', password: 'Secret123', display_name: 'Alice' }] },
      ),
      response: { 201: AuthTokens, ...errors('VALIDATION_ERROR', 'INVALID_JSON', 'USERNAME_TAKEN', 'EMAIL_TAKEN', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'RATE_LIMITED') },
    },
  }, async (request, reply) => reply.code(201).send(await auth.register(request.body, request.headers['user-agent'])))

  app.post('/auth/login', {
    ...perIp,
    preHandler: app.loginRateLimit,
    schema: {
      tags: ['auth'],
      summary: 'Sign in with a username and password (JSON, or form-encoded)',
      description: 'From Swagger UI, "Try it out" here authorizes the page with the access token it answers: the other routes then send it.',
      operationId: 'login',
      security: [],
      // Login checks credentials, not the rules for new passwords: an old password stays usable.
      body: Type.Object(
        { username: Type.String({ minLength: 1, maxLength: 64 }), password: Type.String({ minLength: 1, maxLength: 256 }) },
        { examples: [{ username: 'alice', password: 'Secret123' }] },
      ),
      response: { 200: AuthTokens, ...errors('VALIDATION_ERROR', 'INVALID_JSON', 'INVALID_CREDENTIALS', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'RATE_LIMITED') },
    },
  }, async (request) => auth.login(request.body.username, request.body.password, request.headers['user-agent']))

  app.post('/auth/refresh', {
    ...perIp,
    schema: {
      tags: ['auth'],
      summary: 'Trade a refresh token for a new pair; the old one stops working',
      operationId: 'refreshToken',
      security: [],
      body: RefreshBody,
      response: { 200: AuthTokens, ...errors('VALIDATION_ERROR', 'INVALID_REFRESH_TOKEN', 'REFRESH_TOKEN_REUSED', 'RATE_LIMITED') },
    },
  }, async (request) => auth.refresh(request.body.refresh_token))

  app.post('/auth/logout', {
    onRequest: [app.authenticate],
    schema: {
      tags: ['auth'],
      summary: 'End the session of this refresh token',
      operationId: 'logout',
      security: secured,
      body: RefreshBody,
      response: { 204: NoContent, ...errors('VALIDATION_ERROR', ...SIGNED_IN) },
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
      operationId: 'listSessions',
      security: secured,
      response: { 200: Type.Array(Session), ...errors(...SIGNED_IN) },
    },
  }, async (request) => auth.sessions(request.userId, request.sessionId))

  app.delete('/auth/sessions/:id', {
    onRequest: [app.authenticate],
    schema: {
      tags: ['auth'],
      summary: 'End one of your sessions (this one too, if you name it)',
      operationId: 'endSession',
      security: secured,
      params: IdParams,
      response: { 204: NoContent, ...errors('VALIDATION_ERROR', ...SIGNED_IN, 'SESSION_NOT_FOUND') },
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
      operationId: 'logoutAll',
      security: secured,
      response: { 204: NoContent, ...errors(...SIGNED_IN) },
    },
  }, async (request, reply) => {
    await auth.endSessions(request.userId)
    return reply.code(204).send(null)
  })
}
