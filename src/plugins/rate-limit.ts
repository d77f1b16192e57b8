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
    /** A preHandler limiting `current_password` checks per user (authenticated first), whatever the IP. */
    passwordCheckRateLimit: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** Spends one unit of a user's global budget, the one their REST requests spend: WebSocket frames use it. */
    spendBudget: (userId: string) => Promise<{ allowed: boolean; retryAfterMs: number }>
    /** A preHandler limiting GET /users/me/export per user (authenticated first), on top of the global limit. */
    exportRateLimit: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

// Keys each store keeps (least recently used go first). An evicted key starts again from zero, so the
// stores are large enough that flooding them with new keys to reset someone's count is not cheap.
const CACHE = 50_000

// A counter spent outside HTTP carries its key here (see spendBudget).
const BUDGET = Symbol('parley budget key')
type BudgetRequest = FastifyRequest & { [BUDGET]?: string }

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
 *   spreading guesses over many addresses does not help;
 * - a request carrying `current_password` (PATCH /users/me), in addition: as many per user in the same window,
 *   a count of its own;
 * - GET /users/me/export, in addition: EXPORT_RATE_LIMIT_MAX per EXPORT_RATE_LIMIT_WINDOW_MS per user.
 * A 429 carries Retry-After (seconds) and the one error shape, code RATE_LIMITED.
 */
export default fp(
  async function limits(app: FastifyInstance, opts: { config: Config }) {
    const { config } = opts

    /**
     * The user a bearer token (or, on a GET, `?token=` or the WebSocket subprotocol) names, if it verifies.
     * Verified, not just decoded: otherwise a made-up `sub` per request would be a fresh budget per request.
     * Not checked against the database (an ended session still counts as its user): this runs on every
     * request, before authentication sets request.userId.
     */
    const tokenUser = (request: FastifyRequest): string | undefined => {
      const get = request.method === 'GET'
      const token = app.accessToken(request, { query: get, subprotocol: get })
      if (!token) return undefined
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
        const budget = (request as BudgetRequest)[BUDGET]
        if (budget) return budget
        const user = tokenUser(request)
        return user ? `user:${user}` : ipKey(request)
      },
      allowList: (request) => !(request as BudgetRequest)[BUDGET] && (request.method === 'OPTIONS' || (request.routeOptions.url ?? '').startsWith('/health/')),
      errorResponseBuilder: (_request, context) => tooMany(context.ttl),
    })
    // The global limit, as a hook of the whole app: it runs before any route's hooks, and on 404s too. A route
    // with a `config.rateLimit` of its own (the auth routes) has the plugin run that one instead.
    const globalLimit = app.rateLimit()
    app.addHook('onRequest', async function rateLimitAll(request, reply) {
      if (request.routeOptions.config?.rateLimit != null) return
      await globalLimit.call(this, request, reply)
    })
    // The global limit's own counter, spent without an HTTP request: a WebSocket frame is a request too, so a
    // socket cannot be used to go around the REST budget (and its frames cannot exceed it either).
    const globalCounter = app.createRateLimit()
    app.decorate('spendBudget', async (userId: string) => {
      const result = await globalCounter({ [BUDGET]: `user:${userId}`, routeOptions: { config: {} } } as unknown as FastifyRequest)
      return { allowed: result.isAllowed || !result.isExceeded, retryAfterMs: result.isAllowed ? 0 : result.ttl }
    })

    // The token check needs @fastify/jwt, registered later (plugins/auth.ts): fail at start-up, not per request.
    app.addHook('onReady', async () => {
      if (!app.hasDecorator('jwt') || !app.hasDecorator('accessToken')) throw new Error('rate-limit: the auth plugin (app.jwt) is not registered')
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

    // An export reads all of a user's data and holds a connection while it streams: a budget of its own.
    const perUserExport = app.createRateLimit({
      max: config.EXPORT_RATE_LIMIT_MAX,
      timeWindow: config.EXPORT_RATE_LIMIT_WINDOW_MS,
      cache: CACHE,
      keyGenerator: (request) => `export:${request.userId}`,
    } as RateLimitOptions)
    app.decorate('exportRateLimit', async (request: FastifyRequest, reply: FastifyReply) => {
      const result = await perUserExport(request)
      if (result.isAllowed || !result.isExceeded) return
      reply.header('retry-after', Math.max(1, result.ttlInSeconds))
      throw tooMany(result.ttl)
    })

    // A stolen access token must not turn into the password by guessing: every request that carries
    // current_password counts, before its hash is checked, as logins do (so a parallel burst cannot pass either).
    const perUserPasswordCheck = app.createRateLimit({ ...perUsernameOptions, keyGenerator: (request) => `password-check:${request.userId}` })
    app.decorate('passwordCheckRateLimit', async (request: FastifyRequest, reply: FastifyReply) => {
      if ((request.body as { current_password?: unknown } | undefined)?.current_password === undefined) return
      const result = await perUserPasswordCheck(request)
      if (result.isAllowed || !result.isExceeded) return
      reply.header('retry-after', Math.max(1, result.ttlInSeconds))
      throw tooMany(result.ttl)
    })
  },
  { name: 'rate-limit' },
)
