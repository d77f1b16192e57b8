import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { DB } from '../database.ts'
import { notFound, unauthorized } from '../errors.ts'
import type { Session } from '../schemas/sessions.ts'
import type { AuthTokens } from '../schemas/users.ts'
import { endSessions, listSessions, type SessionFilter, userAgentOf } from './sessions.ts'
import type { OpenSessions } from './open-sessions.ts'
import { toUser, type UsersService } from './users.ts'

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex')

export interface AuthOptions {
  accessTtl: number
  refreshTtl: number
  signAccessToken(userId: string, sessionId: string): string
}

/**
 * Sessions: a short-lived JWT access token naming its session (`sid`) and an opaque refresh token stored
 * only as its hash. Each refresh spends its token and issues the next one of the same family (the session);
 * presenting a spent token again means it was stolen or replayed, so the whole session is ended.
 */
export class AuthService {
  constructor(
    private readonly db: DB,
    private readonly users: UsersService,
    private readonly opts: AuthOptions,
    /** Told of every session this instance ends, once committed: its next request here is refused at once. */
    private readonly open: OpenSessions,
  ) {}

  async register(input: { username: string; password: string; email?: string; display_name?: string }, userAgent?: string): Promise<AuthTokens> {
    const user = await this.users.create(input)
    return this.signIn(user, userAgent)
  }

  async login(username: string, password: string, userAgent?: string): Promise<AuthTokens> {
    const user = await this.users.verifyCredentials(username, password)
    if (!user) throw unauthorized('Wrong username or password', 'INVALID_CREDENTIALS')
    return this.signIn(user, userAgent)
  }

  async refresh(refreshToken: string): Promise<AuthTokens> {
    const outcome = await this.db.transaction().execute(async (trx) => {
      const token = await trx
        .selectFrom('refresh_tokens')
        .selectAll()
        .where('token_hash', '=', hashToken(refreshToken))
        .forUpdate()
        .executeTakeFirst()
      if (!token || token.revoked_at) return 'invalid' as const
      if (token.used_at) {
        await endSessions(trx, token.user_id, { only: [token.family_id] })
        return { reused: token.family_id }
      }
      if (new Date(token.expires_at) <= new Date()) return 'invalid' as const
      const user = await trx.selectFrom('users').selectAll().where('id', '=', token.user_id).where('deleted_at', 'is', null).executeTakeFirst()
      if (!user) return 'invalid' as const
      await trx.updateTable('refresh_tokens').set({ used_at: new Date() }).where('id', '=', token.id).execute()
      await trx.updateTable('sessions').set({ last_used_at: new Date() }).where('id', '=', token.family_id).execute()
      // The next token is inserted in the same transaction: a concurrent reuse, waiting on the row lock,
      // then sees it and revokes it with the rest of the family.
      return this.issue(user, token.family_id, trx)
    })
    if (typeof outcome === 'object' && 'reused' in outcome) {
      this.open.forgetSessions([outcome.reused])
      throw unauthorized('Refresh token was already used; its session is ended', 'REFRESH_TOKEN_REUSED')
    }
    if (outcome === 'invalid') throw unauthorized('Refresh token is invalid or expired', 'INVALID_REFRESH_TOKEN')
    return outcome
  }

  /** Ends the session the refresh token belongs to, if it is the caller's; always quiet. */
  async logout(userId: string, refreshToken: string): Promise<void> {
    const token = await this.db.selectFrom('refresh_tokens').select('family_id').where('token_hash', '=', hashToken(refreshToken)).where('user_id', '=', userId).executeTakeFirst()
    if (token) this.open.forgetSessions(await endSessions(this.db, userId, { only: [token.family_id] }))
  }

  /** The caller's open sessions; `current` marks the one of this request. */
  sessions(userId: string, currentSessionId: string): Promise<Session[]> {
    return listSessions(this.db, userId, currentSessionId)
  }

  /** Ends one of the caller's open sessions; any other id (someone else's, ended, unknown) is a 404. */
  async endSession(userId: string, sessionId: string): Promise<void> {
    const ended = await endSessions(this.db, userId, { only: [sessionId] })
    if (ended.length === 0) throw notFound('session')
    this.open.forgetSessions(ended)
  }

  /** Ends the user's open sessions the filter names (all by default); returns their ids. */
  async endSessions(userId: string, filter: SessionFilter = {}): Promise<string[]> {
    const ended = await endSessions(this.db, userId, filter)
    this.open.forgetSessions(ended)
    return ended
  }

  private async signIn(user: Parameters<typeof toUser>[0], userAgent: string | undefined): Promise<AuthTokens> {
    return this.db.transaction().execute(async (trx) => {
      const session = await trx.insertInto('sessions').values({ id: randomUUID(), user_id: user.id, user_agent: userAgentOf(userAgent) }).returning('id').executeTakeFirstOrThrow()
      return this.issue(user, session.id, trx)
    })
  }

  private async issue(user: Parameters<typeof toUser>[0], sessionId: string, db: DB): Promise<AuthTokens> {
    const refresh = randomBytes(32).toString('base64url')
    await db
      .insertInto('refresh_tokens')
      .values({ user_id: user.id, family_id: sessionId, token_hash: hashToken(refresh), expires_at: new Date(Date.now() + this.opts.refreshTtl * 1000) })
      .execute()
    return {
      access_token: this.opts.signAccessToken(user.id, sessionId),
      refresh_token: refresh,
      token_type: 'bearer',
      expires_in: this.opts.accessTtl,
      user: toUser(user),
    }
  }
}
