import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { DB } from '../database.ts'
import { unauthorized } from '../errors.ts'
import type { AuthTokens } from '../schemas/users.ts'
import { toUser, type UsersService } from './users.ts'

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex')

export interface AuthOptions {
  accessTtl: number
  refreshTtl: number
  signAccessToken(userId: string): string
}

/**
 * Sessions: a short-lived JWT access token and an opaque refresh token stored only as its hash.
 * Each refresh spends its token and issues the next one of the same family; presenting a spent
 * token again means it was stolen or replayed, so the whole family is revoked.
 */
export class AuthService {
  constructor(
    private readonly db: DB,
    private readonly users: UsersService,
    private readonly opts: AuthOptions,
  ) {}

  async register(input: { username: string; password: string; email?: string; display_name?: string }): Promise<AuthTokens> {
    const user = await this.users.create(input)
    return this.issue(user, randomUUID())
  }

  async login(username: string, password: string): Promise<AuthTokens> {
    const user = await this.users.verifyCredentials(username, password)
    if (!user) throw unauthorized('Wrong username or password', 'INVALID_CREDENTIALS')
    return this.issue(user, randomUUID())
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
        await trx.updateTable('refresh_tokens').set({ revoked_at: new Date() }).where('family_id', '=', token.family_id).where('revoked_at', 'is', null).execute()
        return 'reused' as const
      }
      if (new Date(token.expires_at) <= new Date()) return 'invalid' as const
      const user = await trx.selectFrom('users').selectAll().where('id', '=', token.user_id).where('deleted_at', 'is', null).executeTakeFirst()
      if (!user) return 'invalid' as const
      await trx.updateTable('refresh_tokens').set({ used_at: new Date() }).where('id', '=', token.id).execute()
      // The next token is inserted in the same transaction: a concurrent reuse, waiting on the row lock,
      // then sees it and revokes it with the rest of the family.
      return this.issue(user, token.family_id, trx)
    })
    if (outcome === 'reused') throw unauthorized('Refresh token was already used; every session of its family is revoked', 'REFRESH_TOKEN_REUSED')
    if (outcome === 'invalid') throw unauthorized('Refresh token is invalid or expired', 'INVALID_REFRESH_TOKEN')
    return outcome
  }

  /** Ends the session the refresh token belongs to, if it is the caller's; always quiet. */
  async logout(userId: string, refreshToken: string): Promise<void> {
    const token = await this.db.selectFrom('refresh_tokens').select('family_id').where('token_hash', '=', hashToken(refreshToken)).where('user_id', '=', userId).executeTakeFirst()
    if (!token) return
    await this.db.updateTable('refresh_tokens').set({ revoked_at: new Date() }).where('family_id', '=', token.family_id).where('revoked_at', 'is', null).execute()
  }

  private async issue(user: Parameters<typeof toUser>[0], family: string, db: DB = this.db): Promise<AuthTokens> {
    const refresh = randomBytes(32).toString('base64url')
    await db
      .insertInto('refresh_tokens')
      .values({ user_id: user.id, family_id: family, token_hash: hashToken(refresh), expires_at: new Date(Date.now() + this.opts.refreshTtl * 1000) })
      .execute()
    return {
      access_token: this.opts.signAccessToken(user.id),
      refresh_token: refresh,
      token_type: 'bearer',
      expires_in: this.opts.accessTtl,
      user: toUser(user),
    }
  }
}
