import swagger from '@fastify/swagger'
import swaggerUi, { type FastifySwaggerUiOptions } from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { asyncapiYaml } from '../realtime/asyncapi.ts'
import { shareErrorResponses } from '../schemas/error-responses.ts'
import { optionalDefaults } from './openapi-defaults.ts'

type Interceptor = NonNullable<NonNullable<FastifySwaggerUiOptions['uiConfig']>['responseInterceptor']>

// Swagger UI has no way to sign in with a username and password other than OAuth2's password flow, whose dialog
// asks for a client id, a secret and scopes that Parley has none of. So the one scheme is the bearer token, and
// a sign-in made with "Try it out" (POST /auth/login, /auth/register or /auth/refresh) authorizes the page with
// the access token it answers. A Function built from text, so that it reaches the browser as written (the
// function's source is inlined into Swagger UI's initializer, where `ui` is the Swagger UI instance).
const SIGN_IN_INTERCEPTOR = new Function('res', `
  var signIn = /\\/auth\\/(login|register|refresh)$/.test(new URL(res.url, window.location.href).pathname)
  var token = res.ok && signIn && res.body && res.body.access_token
  if (typeof token === 'string') ui.preauthorizeApiKey('bearer', token)
  return res
`) as Interceptor

const tags = [
  { name: 'auth', description: 'Accounts, sign-in and sessions: an access token (bearer, minutes) and a refresh token (days) per session' },
  { name: 'users', description: 'Your profile, other people, blocks and your data export' },
  { name: 'conversations', description: 'Direct conversations and groups: members, roles, history, pins, mute and archive' },
  { name: 'messages', description: 'Sending, editing, deleting, reactions, threads, reads, forwarding and search' },
  { name: 'files', description: "Uploaded files' bytes and previews, by token or by a signed URL" },
  { name: 'webhooks', description: 'Signed outgoing webhooks for bots and integrations: a conversation\'s events, delivered from a queue and retried' },
  { name: 'push', description: 'Web Push notifications for your browsers while you are not connected' },
  { name: 'health', description: 'Liveness and readiness, for load balancers and orchestrators' },
]

/** The OpenAPI document, generated from the route schemas, at /openapi.json, and Swagger UI at /docs. */
export default fp(
  async function docs(app: FastifyInstance) {
    await app.register(swagger, {
      // The named schemas (schemas/named.ts) keep their names as components, instead of def-0, def-1...
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
      transformObject: (document) => ('openapiObject' in document ? shareErrorResponses(optionalDefaults(document.openapiObject)) : document.swaggerObject),
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'Parley',
          version: '0.1.0',
          description:
            'Real-time messaging: REST for writes and history, `GET /ws` for live events (docs/PROTOCOL.md). ' +
            'To try it here: "Try it out" on `POST /auth/register` (or `POST /auth/login`) with its example, and the page is authorized ' +
            'with the access token it answers; or paste an access token into **Authorize**. ' +
            'Every error is `{error, code}`: the codes are in the Error schema\'s `x-error-codes`, and each route shows its own as examples. ' +
            'Any route may answer 429 `RATE_LIMITED` with `Retry-After` (seconds); the auth routes have stricter limits than the rest. ' +
            'The WebSocket protocol (`GET /ws`), machine-readable: [asyncapi.yaml](/asyncapi.yaml) (AsyncAPI 3.0).',
        },
        // Relative: the document is served by the instance it describes, whatever its address.
        servers: [{ url: '/', description: 'This instance' }],
        components: {
          securitySchemes: {
            bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The `access_token` of POST /auth/login, /auth/register or /auth/refresh' },
          },
        },
        tags,
      },
    })
    // Swagger UI's pages set their own CSP (the API's allows nothing): its scripts and styles from this origin
    // only, but without upgrade-insecure-requests, which would send the page's own assets to https:// when the
    // service is reached over plain http (the default), and break it.
    await app.register(swaggerUi, {
      routePrefix: '/docs',
      uiConfig: { persistAuthorization: true, responseInterceptor: SIGN_IN_INTERCEPTOR },
      staticCSP: true,
      transformStaticCSP: (csp) => csp.replace(/\s*upgrade-insecure-requests;?/, ''),
    })
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
    // The WebSocket protocol, made from the frame schemas (the same text as the committed asyncapi.yaml).
    const asyncapi = asyncapiYaml()
    app.get('/asyncapi.yaml', { schema: { hide: true } }, async (_request, reply) => reply.type('application/yaml; charset=utf-8').send(asyncapi))
  },
  { name: 'docs' },
)
