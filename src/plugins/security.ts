import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * Security headers on every answer (the API serves JSON, so its CSP allows nothing; /docs and files set
 * their own), and CORS for the origins listed in CORS_ORIGINS only.
 */
export default fp(
  async function security(app: FastifyInstance, opts: { corsOrigins: string }) {
    await app.register(helmet, {
      contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    })
    const origins = opts.corsOrigins.split(',').map((o) => o.trim()).filter(Boolean)
    await app.register(cors, {
      origin: origins.includes('*') ? true : origins.length ? origins : false,
      methods: ['GET', 'POST', 'PATCH', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'x-request-id'],
      exposedHeaders: ['retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'],
      maxAge: 600,
    })
  },
  { name: 'security' },
)
