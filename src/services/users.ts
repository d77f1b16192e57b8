import { type Selectable, type SqlBool, sql } from 'kysely'
import type { UsersTable } from '../../db/types.ts'
import type { DB } from '../database.ts'
import { AppError, badRequest, conflict, forbidden, notFound } from '../errors.ts'
import { mixedScriptWord } from '../mixed-script.ts'
import type { Me, User } from '../schemas/users.ts'
import { normalizeName } from '../text.ts'
import { fileIdOf, fileUrl } from './files.ts'
import { hashPassword, verifyPassword } from './passwords.ts'
import type { OpenSessions } from './open-sessions.ts'
import { endSessions } from './sessions.ts'

type UserRow = Selectable<UsersTable>

type PublicRow = Pick<UserRow, 'id' | 'username' | 'display_name' | 'avatar_url' | 'is_online' | 'last_seen' | 'created_at' | 'deleted_at'>

const userFields = (u: PublicRow, seesPresence: boolean) => ({
  id: u.id,
  username: u.username,
  display_name: u.display_name,
  avatar_url: u.avatar_url,
  is_online: seesPresence && u.is_online,
  last_seen: seesPresence && u.last_seen ? new Date(u.last_seen).toISOString() : null,
  created_at: new Date(u.created_at).toISOString(),
})

/**
 * A user as a viewer sees them: `is_blocked` says whether the viewer blocks them; their presence only to someone
 * who shares a conversation with them and whom they do not block (to others they look offline, never seen).
 */
export const toPublicUser = (u: PublicRow, view: { isBlocked: boolean; seesPresence: boolean }): User => ({
  ...userFields(u, view.seesPresence),
  is_blocked: view.isBlocked,
  is_deleted: u.deleted_at !== null,
})

export const toUser = (u: UserRow): Me => ({ ...userFields(u, true), email: u.email })

/** Whether the viewer sees the presence of the user whose id is `user` (a column): themselves, or someone sharing a conversation who does not block them. */
export const seesPresence = (viewerId: string, user: string) => sql<SqlBool>`(${sql.ref(user)} = ${viewerId} OR (
    EXISTS (SELECT 1 FROM participants mine JOIN participants theirs ON theirs.conversation_id = mine.conversation_id
      WHERE mine.user_id = ${viewerId} AND theirs.user_id = ${sql.ref(user)})
    AND NOT EXISTS (SELECT 1 FROM blocks back WHERE back.blocker_id = ${sql.ref(user)} AND back.blocked_id = ${viewerId})))`

/** Whether the viewer blocks the user whose id is `user` (a column). */
export const blockedBy = (viewerId: string, user: string) =>
  sql<SqlBool>`EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = ${viewerId} AND b.blocked_id = ${sql.ref(user)})`

const viewedBy = (row: UserRow & { sees_presence: SqlBool; is_blocked: SqlBool }): User =>
  toPublicUser(row, { isBlocked: !!row.is_blocked, seesPresence: !!row.sees_presence })

/**
 * A display name as stored: normalized (no controls, bidi overrides or invisible characters), not empty, and no
 * word mixing scripts, so "аlice" with a Cyrillic а cannot pass for "alice". Display names stay free and need not be
 * unique, as in Slack and Matrix: a word wholly in one script that looks like another's ("рау", all Cyrillic), or a
 * plain copy of someone's name, is for clients to tell apart by the @username, which is ASCII and unique.
 */
function displayName(raw: string): string {
  const name = normalizeName(raw)
  if (name === '') throw invalidName('must contain a visible character')
  const mixed = mixedScriptWord(name)
  if (mixed) throw invalidName(`must not mix scripts within a word (${JSON.stringify(mixed)})`)
  return name
}
const invalidName = (why: string) => badRequest(`Invalid body: /display_name ${why}`, 'VALIDATION_ERROR', [`/display_name ${why}`])

/** Maps a unique violation on users to the 409 a client can act on. */
export function userConflict(err: unknown): never {
  const constraint = (err as { constraint?: string }).constraint
  if (constraint === 'users_username_key') throw conflict('That username is taken', 'USERNAME_TAKEN')
  if (constraint === 'users_email_key') throw conflict('That email is already in use', 'EMAIL_TAKEN')
  throw err
}

export class UsersService {
  constructor(
    private readonly db: DB,
    /** Told of the sessions and accounts this instance ends, once committed: their next request here is refused. */
    private readonly open: OpenSessions,
  ) {}

  async create(input: { username: string; password: string; email?: string; display_name?: string }): Promise<UserRow> {
    const display_name = input.display_name === undefined ? input.username : displayName(input.display_name)
    const password_hash = await hashPassword(input.password)
    return this.db
      .insertInto('users')
      .values({
        username: input.username,
        email: input.email ?? null,
        display_name,
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

  async me(id: string): Promise<Me> {
    return toUser(await this.activeRow(id))
  }

  async update(
    id: string,
    patch: { display_name?: string; email?: string | null; password?: string; current_password?: string },
    /** The caller's session, which outlives a password change. */
    currentSession?: string,
  ): Promise<Me> {
    const changes: Partial<Pick<UserRow, 'display_name' | 'email' | 'password_hash'>> = {}
    if (patch.display_name !== undefined) changes.display_name = displayName(patch.display_name)
    if (patch.email !== undefined) changes.email = patch.email
    // The password guards what hands the account over: the password itself, and the email that resets reach.
    // Checked before the email is tried, it also keeps "is this email taken?" (409) from being a free question:
    // each one costs a password guess, and those are limited per user (plugins/rate-limit.ts).
    if (patch.password !== undefined || patch.email !== undefined || patch.current_password !== undefined) {
      await this.checkCurrentPassword(id, patch.current_password)
    }
    if (patch.password !== undefined) changes.password_hash = await hashPassword(patch.password)
    if (Object.keys(changes).length === 0) return this.me(id)
    const user = await this.db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('users')
        .set({ ...changes, updated_at: new Date() })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow()
        .catch(userConflict)
      // A new password ends every other session with it: whoever knew the old one is signed out.
      const ended = changes.password_hash ? await endSessions(trx, id, { except: currentSession }) : []
      return { row, ended }
    })
    this.open.forgetSessions(user.ended)
    return toUser(user.row)
  }

  private async checkCurrentPassword(id: string, currentPassword: string | undefined): Promise<void> {
    if (currentPassword === undefined) {
      throw new AppError(400, 'CURRENT_PASSWORD_REQUIRED', 'current_password is required to change the password or the email')
    }
    const row = await this.activeRow(id)
    if (!(await verifyPassword(row.password_hash, currentPassword))) throw forbidden('current_password is incorrect', 'WRONG_PASSWORD')
  }

  /** Soft delete: the row and the messages stay, login and search stop, every session ends, nothing more is delivered for it. */
  async softDelete(id: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ deleted_at: new Date(), updated_at: new Date() }).where('id', '=', id).execute()
      await trx.updateTable('refresh_tokens').set({ revoked_at: new Date() }).where('user_id', '=', id).where('revoked_at', 'is', null).execute()
      // Nothing more goes out on the account's behalf: its webhooks and its browsers' push subscriptions go.
      await trx.deleteFrom('webhooks').where('owner_id', '=', id).execute()
      await trx.deleteFrom('push_subscriptions').where('user_id', '=', id).execute()
      // Every instance closes this user's open sockets (on commit).
      await sql`SELECT pg_notify('parley_ephemeral', ${JSON.stringify({ type: 'account_deleted', user_id: id })})`.execute(trx)
    })
    this.open.forgetUser(id)
  }

  /** Active users whose username or display name contains the query, as the viewer may see them. */
  async search(viewerId: string, query: string, limit: number): Promise<User[]> {
    // Names are stored NFC (see displayName): the query too, so a decomposed "Zoë" finds the composed one.
    const q = query.normalize('NFC').toLowerCase()
    const pattern = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
    const rows = await this.db
      .selectFrom('users')
      .selectAll()
      .select([seesPresence(viewerId, 'users.id').as('sees_presence'), blockedBy(viewerId, 'users.id').as('is_blocked')])
      .where('deleted_at', 'is', null)
      .where((eb) => eb.or([eb(eb.fn('lower', ['username']), 'like', pattern), eb(eb.fn('lower', ['display_name']), 'like', pattern)]))
      // Exact and prefix matches first.
      .orderBy((eb) => eb.case().when(eb.fn('lower', ['username']), '=', q).then(0).when(eb.fn('lower', ['username']), 'like', `${pattern.slice(1)}`).then(1).else(2).end())
      .orderBy('username')
      .limit(limit)
      .execute()
    return rows.map(viewedBy)
  }

  /** Points the user's avatar at an uploaded file; answers with the previous avatar's file id, for the caller to delete. */
  async setAvatar(id: string, fileId: string): Promise<{ user: Me; previous: string | undefined }> {
    const before = await this.activeRow(id)
    const row = await this.db.updateTable('users').set({ avatar_url: fileUrl(fileId), updated_at: new Date() }).where('id', '=', id).returningAll().executeTakeFirstOrThrow()
    return { user: toUser(row), previous: fileIdOf(before.avatar_url) }
  }

  /** Any user by id, including a deleted one: their old messages still need a name. */
  async publicView(viewerId: string, id: string): Promise<User> {
    const user = await this.db
      .selectFrom('users')
      .selectAll()
      .select([seesPresence(viewerId, 'users.id').as('sees_presence'), blockedBy(viewerId, 'users.id').as('is_blocked')])
      .where('id', '=', id)
      .executeTakeFirst()
    if (!user) throw notFound('user')
    return viewedBy(user)
  }
}
