import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The stricter limit of the auth routes, per client IP; use as a route's `config.rateLimit`. */
    authRateLimit: { max: number; timeWindow: number }
    /** A preHandler limiting login attempts per username, whatever the IP. */
    loginRateLimit: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

const tooMany = (_request: FastifyRequest, context: { ttl: number }) =>
  Object.assign(new Error(`Too many requests; retry in ${Math.ceil(context.ttl / 1000)} s`), { statusCode: 429 })

/** The user a bearer token names (not verified: a key for counting, never for access). */
function tokenSubject(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  const token = header?.startsWith('Bearer ') ? header.slice(7) : (request.query as { token?: string } | undefined)?.token
  if (!token) return undefined
  try {
    const sub = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).sub
    return typeof sub === 'string' ? sub.slice(0, 64) : undefined
  } catch {
    return undefined
  }
}

/**
 * Rate limits, in memory per instance (behind N instances a client gets up to N times the limit):
 * a generous one for everything, keyed by user when a token is sent and by IP otherwise, and stricter ones
 * on the auth routes (see routes/auth.ts). A 429 carries Retry-After and the one error shape.
 */
export default fp(
  async function limits(app: FastifyInstance, opts: { config: Config }) {
    const { config } = opts
    await app.register(rateLimit, {
      global: true,
      max: config.RATE_LIMIT_MAX,
      timeWindow: config.RATE_LIMIT_WINDOW_MS,
      keyGenerator: (request) => {
        const sub = tokenSubject(request)
        return sub ? `user:${sub}` : `ip:${request.ip}`
      },
      allowList: (request) => request.url.startsWith('/health/'),
      errorResponseBuilder: tooMany,
    })
    app.decorate('authRateLimit', { max: config.AUTH_RATE_LIMIT_MAX, timeWindow: config.RATE_LIMIT_WINDOW_MS })

    // A request passes through one of the plugin's hooks only, so the per-username count (on top of the
    // per-IP one) uses the plugin's createRateLimit, which counts without that guard.
    const perUsername = app.createRateLimit({
      max: config.LOGIN_RATE_LIMIT_PER_USERNAME,
      timeWindow: config.LOGIN_RATE_LIMIT_WINDOW_MS,
      keyGenerator: (request) => `login:${String((request.body as { username?: unknown } | undefined)?.username ?? '').toLowerCase().slice(0, 64)}`,
    })
    app.decorate('loginRateLimit', async (request: FastifyRequest, reply: FastifyReply) => {
      const result = await perUsername(request)
      if (result.isAllowed || !result.isExceeded) return
      reply.header('retry-after', result.ttlInSeconds)
      throw tooMany(request, result)
    })
  },
  { name: 'rate-limit' },
)
