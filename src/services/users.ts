import { type Selectable, sql } from 'kysely'
import type { UsersTable } from '../../db/types.ts'
import type { DB } from '../database.ts'
import { AppError, conflict, forbidden, notFound } from '../errors.ts'
import type { PublicUser, User } from '../schemas/users.ts'
import { fileIdOf, fileUrl } from './files.ts'
import { hashPassword, verifyPassword } from './passwords.ts'

type UserRow = Selectable<UsersTable>

export const toPublicUser = (u: Pick<UserRow, 'id' | 'username' | 'display_name' | 'avatar_url' | 'is_online' | 'last_seen' | 'created_at'>): PublicUser => ({
  id: u.id,
  username: u.username,
  display_name: u.display_name,
  avatar_url: u.avatar_url,
  is_online: u.is_online,
  last_seen: u.last_seen ? new Date(u.last_seen).toISOString() : null,
  created_at: new Date(u.created_at).toISOString(),
})

export const toUser = (u: UserRow): User => ({ ...toPublicUser(u), email: u.email })

/** Maps a unique violation on users to the 409 a client can act on. */
export function userConflict(err: unknown): never {
  const constraint = (err as { constraint?: string }).constraint
  if (constraint === 'users_username_key') throw conflict('That username is taken', 'USERNAME_TAKEN')
  if (constraint === 'users_email_key') throw conflict('That email is already in use', 'EMAIL_TAKEN')
  throw err
}

export class UsersService {
  constructor(private readonly db: DB) {}

  async create(input: { username: string; password: string; email?: string; display_name?: string }): Promise<UserRow> {
    const password_hash = await hashPassword(input.password)
    return this.db
      .insertInto('users')
      .values({
        username: input.username,
        email: input.email ?? null,
        display_name: input.display_name ?? input.username,
        password_hash,
      })
      .returningAll()
      .executeTakeFirstOrThrow()
      .catch(userConflict)
  }

  /** The active user with this username (any case) if the password matches. */
  async verifyCredentials(username: string, password: string): Promise<UserRow | undefined> {
    const user = await this.db
      .selectFrom('users')
      .selectAll()
      .where((eb) => eb(eb.fn('lower', ['username']), '=', username.toLowerCase()))
      .where('deleted_at', 'is', null)
      .executeTakeFirst()
    return (await verifyPassword(user?.password_hash, password)) ? user : undefined
  }

  async activeRow(id: string): Promise<UserRow> {
    const user = await this.db.selectFrom('users').selectAll().where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst()
    if (!user) throw notFound('user')
    return user
  }

  async me(id: string): Promise<User> {
    return toUser(await this.activeRow(id))
  }

  async update(
    id: string,
    patch: { display_name?: string; email?: string | null; password?: string; current_password?: string },
  ): Promise<User> {
    const changes: Partial<Pick<UserRow, 'display_name' | 'email' | 'password_hash'>> = {}
    if (patch.display_name !== undefined) changes.display_name = patch.display_name
    if (patch.email !== undefined) changes.email = patch.email
    if (patch.password !== undefined) {
      if (patch.current_password === undefined) {
        throw new AppError(400, 'CURRENT_PASSWORD_REQUIRED', 'current_password is required to change the password')
      }
      const row = await this.activeRow(id)
      if (!(await verifyPassword(row.password_hash, patch.current_password))) {
        throw forbidden('current_password is incorrect', 'WRONG_PASSWORD')
      }
      changes.password_hash = await hashPassword(patch.password)
    }
    if (Object.keys(changes).length === 0) return this.me(id)
    const user = await this.db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('users')
        .set({ ...changes, updated_at: new Date() })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow()
        .catch(userConflict)
      // A new password signs every session out at its next refresh.
      if (changes.password_hash) {
        await trx.updateTable('refresh_tokens').set({ revoked_at: new Date() }).where('user_id', '=', id).where('revoked_at', 'is', null).execute()
      }
      return row
    })
    return toUser(user)
  }

  /** Soft delete: the row and the messages stay, login and search stop, every session ends. */
  async softDelete(id: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ deleted_at: new Date(), updated_at: new Date() }).where('id', '=', id).execute()
      await trx.updateTable('refresh_tokens').set({ revoked_at: new Date() }).where('user_id', '=', id).where('revoked_at', 'is', null).execute()
      // Every instance closes this user's open sockets (on commit).
      await sql`SELECT pg_notify('parley_ephemeral', ${JSON.stringify({ type: 'account_deleted', user_id: id })})`.execute(trx)
    })
  }

  async search(query: string, limit: number): Promise<PublicUser[]> {
    const q = query.toLowerCase()
    const pattern = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
    const rows = await this.db
      .selectFrom('users')
      .selectAll()
      .where('deleted_at', 'is', null)
      .where((eb) => eb.or([eb(eb.fn('lower', ['username']), 'like', pattern), eb(eb.fn('lower', ['display_name']), 'like', pattern)]))
      // Exact and prefix matches first.
      .orderBy((eb) => eb.case().when(eb.fn('lower', ['username']), '=', q).then(0).when(eb.fn('lower', ['username']), 'like', `${pattern.slice(1)}`).then(1).else(2).end())
      .orderBy('username')
      .limit(limit)
      .execute()
    return rows.map(toPublicUser)
  }

  /** Points the user's avatar at an uploaded file; answers with the previous avatar's file id, for the caller to delete. */
  async setAvatar(id: string, fileId: string): Promise<{ user: User; previous: string | undefined }> {
    const before = await this.activeRow(id)
    const row = await this.db.updateTable('users').set({ avatar_url: fileUrl(fileId), updated_at: new Date() }).where('id', '=', id).returningAll().executeTakeFirstOrThrow()
    return { user: toUser(row), previous: fileIdOf(before.avatar_url) }
  }

  /** Any user by id, including a deleted one: their old messages still need a name. */
  async publicView(id: string): Promise<PublicUser> {
    const user = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()
    if (!user) throw notFound('user')
    return toPublicUser(user)
  }
}
