import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** The OpenAPI document, generated from the route schemas, at /openapi.json, and Swagger UI at /docs. */
export default fp(
  async function docs(app: FastifyInstance) {
    await app.register(swagger, {
      // The named schemas (schemas/named.ts) keep their names as components, instead of def-0, def-1...
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'Parley',
          version: '0.1.0',
          description:
            'Real-time messaging: REST for writes and history, `GET /ws` for live events. ' +
            'Use **Authorize** with a username and password (OAuth2 password flow against `/auth/login`) or paste an access token (bearer). ' +
            'Any route may answer 429 `RATE_LIMITED` with `Retry-After` (seconds); the auth routes have stricter limits than the rest.',
        },
        components: {
          securitySchemes: {
            bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
            password: { type: 'oauth2', flows: { password: { tokenUrl: '/auth/login', scopes: {} } } },
          },
        },
        tags: [
          { name: 'auth' }, { name: 'users' }, { name: 'conversations' }, { name: 'messages' }, { name: 'health' },
        ],
      },
    })
    // Swagger UI's pages set their own CSP (the API's allows nothing): its scripts and styles from this origin
    // only, but without upgrade-insecure-requests, which would send the page's own assets to https:// when the
    // service is reached over plain http (the default), and break it.
    await app.register(swaggerUi, {
      routePrefix: '/docs',
      uiConfig: { persistAuthorization: true },
      staticCSP: true,
      transformStaticCSP: (csp) => csp.replace(/\s*upgrade-insecure-requests;?/, ''),
    })
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  },
  { name: 'docs' },
)
