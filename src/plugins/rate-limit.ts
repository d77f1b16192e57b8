import rateLimit, { type FastifyRateLimitStore, normalizeIP } from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type pg from 'pg'
import type { Config } from '../config.ts'
import { AppError } from '../errors.ts'
import { type SharedCounter, type SharedLimit, SharedLimits, type Verdict } from '../services/shared-limits.ts'

type Hook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

declare module 'fastify' {
  interface FastifyInstance {
    /** The auth routes' limit, per client IP and route, instead of the global one: the route's `onRequest`. */
    authRateLimit: Hook
    /** A preHandler limiting login attempts per username, whatever the IP (the body must be parsed). */
    loginRateLimit: Hook
    /** A preHandler limiting `current_password` checks per user (authenticated first), whatever the IP. */
    passwordCheckRateLimit: Hook
    /** A preHandler limiting GET /users/me/export per user (authenticated first), on top of the global limit. */
    exportRateLimit: Hook
    /** A preHandler limiting uploads started per user (authenticated first), before a byte is read. */
    uploadRateLimit: Hook
    /** Spends one unit of a user's global budget, the one their REST requests spend: WebSocket frames use it. */
    spendBudget: (userId: string) => Promise<{ allowed: boolean; retryAfterMs: number }>
  }
}

// Keys the global limit's in-memory store keeps (least recently used go first). An evicted key starts again from
// zero, so the store is large enough that flooding it with new keys to reset someone's count is not cheap.
const CACHE = 50_000

// A counter spent outside HTTP carries its key here (see spendBudget).
const BUDGET = Symbol('parley budget key')
type BudgetRequest = FastifyRequest & { [BUDGET]?: string }

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000))
const tooMany = (ms: number, what = 'requests') => new AppError(429, 'RATE_LIMITED', `Too many ${what}; retry in ${seconds(ms)} s`)

/** The client's address; IPv6 clients count per /64, since one host usually holds a whole one. */
const ipKey = (request: FastifyRequest) => `ip:${normalizeIP(request.ip)}`

/** @fastify/rate-limit's store over a shared counter: the global limit counted in PostgreSQL (RATE_LIMIT_STORE=postgres). */
function sharedStore(count: SharedCounter) {
  return class SharedStore implements FastifyRateLimitStore {
    incr(key: string, callback: (error: Error | null, result?: { current: number; ttl: number }) => void): void {
      count(key).then(({ count, ttlMs }) => callback(null, { current: count, ttl: ttlMs }), callback)
    }

    child(): FastifyRateLimitStore {
      throw new Error('rate-limit: the shared store serves the global limit only')
    }
  }
}

/**
 * Rate limits, for the whole cluster (docs/SCALING.md, "Rate limits across instances"):
 * - everything: RATE_LIMIT_MAX per RATE_LIMIT_WINDOW_MS, per user when a valid access token is sent (so people
 *   behind one NAT do not share a budget), per IP otherwise; health checks and CORS preflights are exempt. Counted
 *   in memory, each instance allowing its share, RATE_LIMIT_MAX ÷ the live instances (RATE_LIMIT_STORE=divided), or
 *   exactly, in PostgreSQL, at a round trip per request and per WebSocket frame (RATE_LIMIT_STORE=postgres);
 * - register, login, refresh: AUTH_RATE_LIMIT_MAX per AUTH_RATE_LIMIT_WINDOW_MS per IP, each route its own
 *   count, instead of the global limit;
 * - login, in addition: LOGIN_RATE_LIMIT_PER_USERNAME per LOGIN_RATE_LIMIT_WINDOW_MS per username, so that
 *   spreading guesses over many addresses does not help;
 * - a request carrying `current_password` (PATCH /users/me), in addition: as many per user in the same window,
 *   a count of its own;
 * - GET /users/me/export, in addition: EXPORT_RATE_LIMIT_MAX per EXPORT_RATE_LIMIT_WINDOW_MS per user;
 * - uploads: UPLOAD_RATE_MAX per UPLOAD_RATE_WINDOW_MS per user, on top of the global limit.
 * All but the global limit are rare and cost far more than a round trip (a password hash, a file): they are
 * counted in PostgreSQL (services/shared-limits.ts), exactly, whichever instance takes the attempt.
 * A 429 carries Retry-After (seconds) and the one error shape, code RATE_LIMITED.
 */
export default fp(
  async function limits(app: FastifyInstance, opts: { config: Config; pool: pg.Pool; secret: string }) {
    const { config } = opts
    const shared = new SharedLimits(opts.pool, opts.secret)

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

    // Without the realtime plugin (no heartbeat: the OpenAPI script) this instance is taken to be alone.
    let liveInstances = () => 1
    const divided = config.RATE_LIMIT_STORE === 'divided'
    await app.register(rateLimit, {
      // Not per route (the plugin would run after a route's own onRequest hooks, so after authentication:
      // bad tokens would never be counted, and a limited user would still cost a database query each time).
      global: false,
      // Each instance's share, rounded down: a client spread evenly gets at most the limit, never more.
      max: divided ? () => Math.max(1, Math.floor(config.RATE_LIMIT_MAX / liveInstances())) : config.RATE_LIMIT_MAX,
      timeWindow: config.RATE_LIMIT_WINDOW_MS,
      cache: CACHE,
      ...(!divided && { store: sharedStore(shared.counter('global', config.RATE_LIMIT_WINDOW_MS)) }),
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
    // whose `config.rateLimit` is false (the auth routes) has a limit of its own instead.
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
      if (app.hasDecorator('realtime')) liveInstances = () => app.realtime.presence.liveInstances
    })

    /** A hook counting each request against `limit` under the key `keyOf` gives it (none: not counted). */
    const enforce = (limit: SharedLimit, keyOf: (request: FastifyRequest) => string | undefined, opts: { headers?: boolean; what?: string } = {}): Hook =>
      async (request, reply) => {
        const key = keyOf(request)
        if (key === undefined) return
        const verdict: Verdict = await limit(key)
        if (opts.headers) {
          reply.header('x-ratelimit-limit', verdict.limit)
          reply.header('x-ratelimit-remaining', verdict.remaining)
          reply.header('x-ratelimit-reset', Math.ceil(verdict.retryAfterMs / 1000))
        }
        if (verdict.allowed) return
        reply.header('retry-after', seconds(verdict.retryAfterMs))
        throw tooMany(verdict.retryAfterMs, opts.what)
      }

    // Per IP only: a token sent to /auth/* must not choose its own budget.
    const perIp = shared.limit('auth', config.AUTH_RATE_LIMIT_MAX, config.AUTH_RATE_LIMIT_WINDOW_MS)
    app.decorate('authRateLimit', enforce(perIp, (request) => `${request.routeOptions.url}:${ipKey(request)}`, { headers: true }))

    // Every attempt counts, successful or not: a count of failures only would let a burst of parallel
    // guesses all pass before the first failure is counted. The price: anyone can hold up logins to one
    // account for a window (its open sessions and refresh tokens keep working).
    const perUsername = shared.limit('login', config.LOGIN_RATE_LIMIT_PER_USERNAME, config.LOGIN_RATE_LIMIT_WINDOW_MS)
    app.decorate('loginRateLimit', enforce(perUsername, (request) => String((request.body as { username?: unknown } | undefined)?.username ?? '').toLowerCase()))

    // An export reads all of a user's data and holds a connection while it streams: a budget of its own.
    const perUserExport = shared.limit('export', config.EXPORT_RATE_LIMIT_MAX, config.EXPORT_RATE_LIMIT_WINDOW_MS)
    app.decorate('exportRateLimit', enforce(perUserExport, (request) => request.userId))

    // A stolen access token must not turn into the password by guessing: every request that carries
    // current_password counts, before its hash is checked, as logins do (so a parallel burst cannot pass either).
    const perUserPasswordCheck = shared.limit('password-check', config.LOGIN_RATE_LIMIT_PER_USERNAME, config.LOGIN_RATE_LIMIT_WINDOW_MS)
    app.decorate('passwordCheckRateLimit', enforce(perUserPasswordCheck, (request) =>
      (request.body as { current_password?: unknown } | undefined)?.current_password === undefined ? undefined : request.userId))

    // Every upload attempt counts, before a byte is read (with MAX_UPLOAD_BYTES, a bound on what one account writes).
    const perUserUpload = shared.limit('upload', config.UPLOAD_RATE_MAX, config.UPLOAD_RATE_WINDOW_MS)
    app.decorate('uploadRateLimit', enforce(perUserUpload, (request) => request.userId, { what: 'uploads' }))
  },
  { name: 'rate-limit' },
)
