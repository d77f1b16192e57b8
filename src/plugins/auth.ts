import fastifyJwt from '@fastify/jwt'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { DB } from '../database.ts'
import { unauthorized } from '../errors.ts'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { sub: string }
    user: { sub: string }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    authenticate(request: FastifyRequest): Promise<void>
  }
  interface FastifyRequest {
    userId: string
  }
}

/** Bearer access tokens (JWT, HS256). A token of a user who has since been deleted is refused. */
export default fp(
  async function auth(app: FastifyInstance, opts: { secret: string; accessTtl: number; db: DB }) {
    // A request's token is verified twice (the rate-limit key, then here), and clients reuse it for minutes:
    // fast-jwt's cache (expiry still enforced) makes those repeats a lookup instead of another HMAC.
    await app.register(fastifyJwt, { secret: opts.secret, sign: { expiresIn: opts.accessTtl }, verify: { cache: 10_000 } })
    app.decorateRequest('userId', '')
    app.decorate('authenticate', async (request: FastifyRequest) => {
      let payload: { sub: string }
      try {
        payload = await request.jwtVerify()
      } catch (err) {
        const expired = (err as { code?: string }).code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED'
        throw expired ? unauthorized('Access token has expired', 'TOKEN_EXPIRED') : unauthorized('Missing or invalid access token')
      }
      const user = await opts.db
        .selectFrom('users')
        .select('id')
        .where('id', '=', payload.sub)
        .where('deleted_at', 'is', null)
        .executeTakeFirst()
      if (!user) throw unauthorized('This account no longer exists', 'ACCOUNT_DELETED')
      request.userId = user.id
    })
  },
  { name: 'auth' },
)
