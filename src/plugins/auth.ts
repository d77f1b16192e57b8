import fastifyJwt from '@fastify/jwt'
import { sql } from 'kysely'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { DB } from '../database.ts'
import { unauthorized } from '../errors.ts'
import { OpenSessions } from '../services/open-sessions.ts'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { sub: string; sid: string }
    user: { sub: string; sid: string }
  }
}

/** Where a request may carry its access token besides the Bearer header. */
export interface TokenSources {
  /** `?token=`: for what a browser loads without headers (WebSocket, `<img src>`). */
  query?: boolean
  /** The WebSocket subprotocol `bearer.<token>`. */
  subprotocol?: boolean
}

/** What a verified access token says, before it is checked against the database. */
export interface TokenClaims {
  sub: string
  sid: string
  exp: number
}

export interface AccessClaims {
  userId: string
  sessionId: string
  /** Epoch ms. */
  expiresAt: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The access token a request carries, from the Bearer header or the other sources allowed. */
    accessToken(request: FastifyRequest, sources?: TokenSources): string | undefined
    /**
     * An access token's claims, its signature and expiry checked (fast-jwt's error otherwise), nothing more. Given
     * the request that carries it, the answer is kept on the request: the global rate limit (which keys a request
     * by its token's user) and then authentication verify a token once between them.
     */
    tokenClaims(token: string, request?: FastifyRequest): TokenClaims
    /** Verifies an access token and that its user and session are still there; a 401 AppError otherwise. */
    verifyAccess(token: string | undefined, request?: FastifyRequest): Promise<AccessClaims>
    /** Sessions known open while the listener hears every end (the realtime plugin keeps it current). */
    openSessions: OpenSessions
    /** An onRequest hook: the Bearer token's user and session, or 401. */
    authenticate(request: FastifyRequest): Promise<void>
  }
  interface FastifyRequest {
    userId: string
    sessionId: string
  }
}

const BEARER = /^Bearer\s+(\S+)$/i
const PROTOCOL = 'bearer.'
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

// The last token a request had verified, and what came of it.
const VERIFIED = Symbol('parley verified token')
type Verified = { token: string; claims: TokenClaims } | { token: string; error: unknown }
type VerifyingRequest = FastifyRequest & { [VERIFIED]: Verified | null }

/**
 * Bearer access tokens (JWT, HS256) naming a user (`sub`) and a session (`sid`). Every way in (REST, files,
 * WebSocket) takes its token and checks it here: a token of a deleted user or of an ended session is refused.
 */
export default fp(
  async function auth(app: FastifyInstance, opts: { secret: string; accessTtl: number; db: DB }) {
    // Clients reuse a token for minutes: fast-jwt's cache (expiry still enforced) makes each request after the
    // first a lookup instead of another HMAC.
    await app.register(fastifyJwt, { secret: opts.secret, sign: { expiresIn: opts.accessTtl }, verify: { cache: 10_000 } })
    app.decorateRequest('userId', '')
    app.decorateRequest('sessionId', '')
    app.decorateRequest(VERIFIED, null)

    const verify = (token: string): Verified => {
      try {
        return { token, claims: app.jwt.verify<TokenClaims>(token) }
      } catch (error) {
        return { token, error }
      }
    }
    app.decorate('tokenClaims', (token: string, request?: FastifyRequest): TokenClaims => {
      let verified = (request as VerifyingRequest | undefined)?.[VERIFIED]
      if (verified?.token !== token) {
        verified = verify(token)
        if (request) (request as VerifyingRequest)[VERIFIED] = verified
      }
      if ('error' in verified) throw verified.error
      return verified.claims
    })

    app.decorate('accessToken', (request: FastifyRequest, sources: TokenSources = {}) => {
      const bearer = BEARER.exec(request.headers.authorization ?? '')?.[1]
      if (bearer) return bearer
      if (sources.query) {
        const query = (request.query as { token?: unknown } | undefined)?.token
        if (typeof query === 'string' && query !== '') return query
      }
      if (sources.subprotocol) {
        const protocols = String(request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim())
        const token = protocols.find((p) => p.startsWith(PROTOCOL))?.slice(PROTOCOL.length)
        if (token) return token
      }
      return undefined
    })

    // Without the realtime plugin nobody tells it of ended sessions: it then trusts nothing and every check asks.
    app.decorate('openSessions', new OpenSessions({ max: 100_000, maxAgeMs: 60_000 }))
    app.decorate('verifyAccess', async (token: string | undefined, request?: FastifyRequest): Promise<AccessClaims> => {
      if (!token) throw unauthorized('Missing or invalid access token')
      let claims: TokenClaims
      try {
        claims = app.tokenClaims(token, request)
      } catch (err) {
        // fast-jwt's own code: app.jwt.verify does not wrap its errors as request.jwtVerify does.
        const expired = (err as { code?: string }).code === 'FAST_JWT_EXPIRED'
        throw expired ? unauthorized('Access token has expired', 'TOKEN_EXPIRED') : unauthorized('Missing or invalid access token')
      }
      // Tokens issued before sessions existed name none: they cannot be ended, so they are not taken.
      if (!UUID.test(claims.sub) || !UUID.test(claims.sid) || typeof claims.exp !== 'number') throw unauthorized('Missing or invalid access token')
      const claimed = { userId: claims.sub, sessionId: claims.sid, expiresAt: claims.exp * 1000 }
      if (app.openSessions.has(claims.sid, claims.sub)) return claimed
      const mark = app.openSessions.mark
      // One query for both: the user still exists and the session has not been ended.
      const { rows: [row] } = await sql<{ deleted: boolean; ended: boolean | null }>`
        SELECT u.deleted_at IS NOT NULL AS deleted,
               (SELECT s.ended_at IS NOT NULL FROM sessions s WHERE s.id = ${claims.sid} AND s.user_id = u.id) AS ended
        FROM users u WHERE u.id = ${claims.sub}`.execute(opts.db)
      if (!row || row.deleted) throw unauthorized('This account no longer exists', 'ACCOUNT_DELETED')
      if (row.ended !== false) throw unauthorized('This session has ended; sign in again', 'SESSION_ENDED')
      app.openSessions.remember(claims.sid, claims.sub, mark)
      return claimed
    })

    app.decorate('authenticate', async (request: FastifyRequest) => {
      const { userId, sessionId } = await app.verifyAccess(app.accessToken(request), request)
      request.userId = userId
      request.sessionId = sessionId
    })
  },
  { name: 'auth' },
)
