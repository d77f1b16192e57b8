import { sql } from 'kysely'
import type { DB } from '../database.ts'
import { badRequest, forbidden, notFound } from '../errors.ts'
import type { User } from '../schemas/users.ts'
import { seesPresence, toPublicUser } from './users.ts'

/** A direct conversation or message between a blocker and the one they block, either way. */
export const blockedError = () => forbidden('You cannot message this user: one of you blocks the other', 'BLOCKED')

/** Whether either of the two blocks the other. */
export async function blockedBetween(db: DB, a: string, b: string): Promise<boolean> {
  const row = await db
    .selectFrom('blocks')
    .select('blocker_id')
    .where((eb) => eb.or([eb.and([eb('blocker_id', '=', a), eb('blocked_id', '=', b)]), eb.and([eb('blocker_id', '=', b), eb('blocked_id', '=', a)])]))
    .executeTakeFirst()
  return row !== undefined
}

/**
 * Blocking: the caller's own list. Its effects live where they apply: the send statement (message-writer.ts) and
 * opening a direct conversation refuse, the fan-out of presence and typing leaves the blocked user out, and the
 * public User says `is_blocked`.
 */
export class BlocksService {
  constructor(private readonly db: DB) {}

  /** Blocking twice is blocking once. A deleted or unknown user is 404, yourself 400. */
  async block(userId: string, targetId: string): Promise<void> {
    if (targetId === userId) throw badRequest('You cannot block yourself', 'CANNOT_BLOCK_SELF')
    const { rows } = await sql<{ found: boolean }>`
      WITH target AS (SELECT id FROM users WHERE id = ${targetId} AND deleted_at IS NULL),
      added AS (INSERT INTO blocks (blocker_id, blocked_id) SELECT ${userId}, id FROM target ON CONFLICT DO NOTHING)
      SELECT true AS found FROM target`.execute(this.db)
    if (rows.length === 0) throw notFound('user')
  }

  /** Unblocking someone not blocked changes nothing; a deleted user can be unblocked (to tidy the list), an unknown one is 404. */
  async unblock(userId: string, targetId: string): Promise<void> {
    if (targetId === userId) throw badRequest('You cannot block yourself', 'CANNOT_BLOCK_SELF')
    const { rows } = await sql<{ found: boolean }>`
      WITH target AS (SELECT id FROM users WHERE id = ${targetId}),
      removed AS (DELETE FROM blocks WHERE blocker_id = ${userId} AND blocked_id IN (SELECT id FROM target))
      SELECT true AS found FROM target`.execute(this.db)
    if (rows.length === 0) throw notFound('user')
  }

  /** The users the caller blocks, most recently blocked first; their presence as it is to the caller. */
  async list(userId: string): Promise<User[]> {
    const rows = await this.db
      .selectFrom('blocks as b')
      .innerJoin('users as u', 'u.id', 'b.blocked_id')
      .selectAll('u')
      .select(seesPresence(userId, 'u.id').as('sees_presence'))
      .where('b.blocker_id', '=', userId)
      .orderBy('b.created_at', 'desc')
      .orderBy('u.id')
      .execute()
    return rows.map((r) => toPublicUser(r, { isBlocked: true, seesPresence: !!r.sees_presence }))
  }
}
