import { isIPv6 } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Address6 } from 'ip-address'
import type pg from 'pg'
import type { Config } from '../config.ts'
import { AppError } from '../errors.ts'
import { type SharedLimit, SharedLimits, type Verdict } from '../services/shared-limits.ts'
import { type WindowCount, WindowCounter } from '../services/window-counter.ts'

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
  interface FastifyContextConfig {
    /** false: the route has a limit of its own (the auth routes), instead of the global one. */
    rateLimit?: false
  }
}

// Keys the global limit's in-memory store keeps (least recently used go first). An evicted key starts again from
// zero, so the store is large enough that flooding it with new keys to reset someone's count is not cheap.
const CACHE = 50_000

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000))
const tooMany = (ms: number, what = 'requests') => new AppError(429, 'RATE_LIMITED', `Too many ${what}; retry in ${seconds(ms)} s`)

/** The client's address; IPv6 clients count per /64, since one host usually holds a whole one. */
function normalizeIP(ip: string): string {
  if (!isIPv6(ip)) return ip.toLowerCase()
  const address = new Address6(ip)
  if (address.isMapped4()) return address.to4().correctForm()
  return new Address6(`${ip}/64`).startAddress().correctForm()
}

const ipKey = (request: FastifyRequest) => `ip:${normalizeIP(request.ip)}`

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
        return app.tokenClaims(token, request).sub
      } catch {
        return undefined
      }
    }
    const clientKey = (request: FastifyRequest) => {
      const user = tokenUser(request)
      return user ? `user:${user}` : ipKey(request)
    }

    // Without the realtime plugin (no heartbeat: the OpenAPI script) this instance is taken to be alone.
    let liveInstances = () => 1
    const divided = config.RATE_LIMIT_STORE === 'divided'
    // Each instance's share, rounded down: a client spread evenly gets at most the limit, never more.
    const globalMax = divided ? () => Math.max(1, Math.floor(config.RATE_LIMIT_MAX / liveInstances())) : () => config.RATE_LIMIT_MAX
    const local = new WindowCounter(config.RATE_LIMIT_WINDOW_MS, CACHE)
    const sharedCount = divided ? undefined : shared.counter('global', config.RATE_LIMIT_WINDOW_MS)

    /** Sets the limit's headers on the answer; the 429 to fail the request with when over the limit. */
    const judge = (reply: FastifyReply, max: number, { count, ttlMs }: WindowCount): AppError | undefined => {
      reply.header('x-ratelimit-limit', max)
      reply.header('x-ratelimit-remaining', Math.max(0, max - count))
      reply.header('x-ratelimit-reset', Math.ceil(ttlMs / 1000))
      if (count <= max) return undefined
      reply.header('retry-after', seconds(ttlMs))
      return tooMany(ttlMs)
    }

    // The global limit, as a hook of the whole app: it runs before any route's hooks (after them, authentication
    // would already have run: bad tokens would never be counted, and a limited user would still cost a database
    // query each time), and on 404s too. A plain callback hook, not an async one: divided, it is all synchronous
    // (a verified token's claims, a Map), and each await would cost this, the hottest path, a trip through the
    // microtask queue.
    app.addHook('onRequest', function rateLimitAll(request, reply, done) {
      if (request.routeOptions.config?.rateLimit === false || request.method === 'OPTIONS' || request.routeOptions.url?.startsWith('/health/')) return done()
      const key = clientKey(request)
      if (!sharedCount) return done(judge(reply, globalMax(), local.hit(key)))
      sharedCount(key).then((count) => done(judge(reply, globalMax(), count)), done)
    })
    // The global limit's own counter, spent without an HTTP request: a WebSocket frame is a request too, so a
    // socket cannot be used to go around the REST budget (and its frames cannot exceed it either).
    app.decorate('spendBudget', async (userId: string) => {
      const key = `user:${userId}`
      const { count, ttlMs } = sharedCount ? await sharedCount(key) : local.hit(key)
      return { allowed: count <= globalMax(), retryAfterMs: ttlMs }
    })

    // The token check needs the auth plugin, registered later (plugins/auth.ts): fail at start-up, not per request.
    app.addHook('onReady', async () => {
      if (!app.hasDecorator('tokenClaims') || !app.hasDecorator('accessToken')) throw new Error('rate-limit: the auth plugin (app.tokenClaims) is not registered')
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
