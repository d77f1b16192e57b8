import rateLimit, { normalizeIP, type RateLimitOptions } from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.ts'
import { AppError } from '../errors.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The stricter limit of the auth routes, per client IP; use as a route's `config.rateLimit`. */
    authRateLimit: RateLimitOptions
    /** A preHandler limiting login attempts per username, whatever the IP (the body must be parsed). */
    loginRateLimit: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

// Keys each store keeps (least recently used go first). An evicted key starts again from zero, so the
// stores are large enough that flooding them with new keys to reset someone's count is not cheap.
const CACHE = 50_000

const tooMany = (ttlMs: number) => new AppError(429, 'RATE_LIMITED', `Too many requests; retry in ${Math.max(1, Math.ceil(ttlMs / 1000))} s`)

/** The client's address; IPv6 clients count per /64, since one host usually holds a whole one. */
const ipKey = (request: FastifyRequest) => `ip:${normalizeIP(request.ip)}`

/**
 * Rate limits, in memory per instance (behind N instances a client gets up to N times each limit):
 * - everything: RATE_LIMIT_MAX per RATE_LIMIT_WINDOW_MS, per user when a valid access token is sent
 *   (so people behind one NAT do not share a budget), per IP otherwise; health checks and CORS
 *   preflights are exempt;
 * - register, login, refresh: AUTH_RATE_LIMIT_MAX per AUTH_RATE_LIMIT_WINDOW_MS per IP, each route its own
 *   count, instead of the global limit;
 * - login, in addition: LOGIN_RATE_LIMIT_PER_USERNAME per LOGIN_RATE_LIMIT_WINDOW_MS per username, so that
 *   spreading guesses over many addresses does not help.
 * A 429 carries Retry-After (seconds) and the one error shape, code RATE_LIMITED.
 */
export default fp(
  async function limits(app: FastifyInstance, opts: { config: Config }) {
    const { config } = opts

    /**
     * The user a bearer token (or `?token=` on a GET: WebSocket, files) names, if it verifies. Verified,
     * not just decoded: otherwise a made-up `sub` per request would be a fresh budget per request.
     * request.userId is not set yet here (authentication runs after this hook).
     */
    const tokenUser = (request: FastifyRequest): string | undefined => {
      const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1]
      const token = bearer ?? (request.method === 'GET' ? (request.query as { token?: unknown } | undefined)?.token : undefined)
      if (typeof token !== 'string' || token === '') return undefined
      try {
        return app.jwt.verify<{ sub: string }>(token).sub
      } catch {
        return undefined
      }
    }

    await app.register(rateLimit, {
      // Not per route (the plugin would run after a route's own onRequest hooks, so after authentication:
      // bad tokens would never be counted, and a limited user would still cost a database query each time).
      global: false,
      max: config.RATE_LIMIT_MAX,
      timeWindow: config.RATE_LIMIT_WINDOW_MS,
      cache: CACHE,
      keyGenerator: (request) => {
        const user = tokenUser(request)
        return user ? `user:${user}` : ipKey(request)
      },
      allowList: (request) => request.method === 'OPTIONS' || (request.routeOptions.url ?? '').startsWith('/health/'),
      errorResponseBuilder: (_request, context) => tooMany(context.ttl),
    })
    // The global limit, as a hook of the whole app: it runs before any route's hooks, and on 404s too. A route
    // with a `config.rateLimit` of its own (the auth routes) has the plugin run that one instead.
    const globalLimit = app.rateLimit()
    app.addHook('onRequest', async function rateLimitAll(request, reply) {
      if (request.routeOptions.config?.rateLimit != null) return
      await globalLimit.call(this, request, reply)
    })
    // The token check needs @fastify/jwt, registered later (plugins/auth.ts): fail at start-up, not per request.
    app.addHook('onReady', async () => {
      if (!app.hasDecorator('jwt')) throw new Error('rate-limit: the auth plugin (app.jwt) is not registered')
    })

    // On a route, these replace the global limit (the plugin runs one limit per route). Per IP only: a
    // token sent to /auth/* must not choose its own budget.
    app.decorate('authRateLimit', {
      max: config.AUTH_RATE_LIMIT_MAX,
      timeWindow: config.AUTH_RATE_LIMIT_WINDOW_MS,
      cache: CACHE,
      keyGenerator: ipKey,
    } satisfies RateLimitOptions)

    // Every attempt counts, successful or not: a count of failures only would let a burst of parallel
    // guesses all pass before the first failure is counted. The price: anyone can hold up logins to one
    // account for a window (its open sessions and refresh tokens keep working).
    // (`cache` reaches the store at run time, though createRateLimit's type leaves it out.)
    const perUsernameOptions: RateLimitOptions = {
      max: config.LOGIN_RATE_LIMIT_PER_USERNAME,
      timeWindow: config.LOGIN_RATE_LIMIT_WINDOW_MS,
      cache: CACHE,
      keyGenerator: (request) => `login:${String((request.body as { username?: unknown } | undefined)?.username ?? '').toLowerCase()}`,
    }
    const perUsername = app.createRateLimit(perUsernameOptions)
    app.decorate('loginRateLimit', async (request: FastifyRequest, reply: FastifyReply) => {
      const result = await perUsername(request)
      if (result.isAllowed || !result.isExceeded) return
      reply.header('retry-after', Math.max(1, result.ttlInSeconds))
      throw tooMany(result.ttl)
    })
  },
  { name: 'rate-limit' },
)
