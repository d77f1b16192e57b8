import { type Transaction, sql } from 'kysely'
import type { Database, ParticipantRow } from '../../db/types.ts'
import type { DB } from '../database.ts'
import { AppError, badRequest, conflict, forbidden, notFound } from '../errors.ts'
import type { Conversation, Participant } from '../schemas/conversations.ts'
import type { SystemEvent } from '../schemas/messages.ts'
import { blockedError } from './blocks.ts'
import { fileIdOf, fileUrl } from './files.ts'
import { type ConversationFilter, loadConversations } from './conversation-view.ts'

type Trx = Transaction<Database>
type Role = 'admin' | 'member'

const conversationNotFound = () => notFound('conversation')

/** Marks the transaction's changes as made by this user, for the `by` of participant and rename events. */
export const actAs = (trx: Trx, userId: string) => sql`SELECT set_config('parley.actor_id', ${userId}, true)`.execute(trx)

/**
 * Writes a `system` message; the messages trigger gives it its seq and logs it. Its `system` field says what
 * happened by ids, so clients render it with the names they know now; `content` is the same in words, for
 * clients that don't.
 */
export const systemMessage = (trx: Trx, conversationId: string, actorId: string, content: string, event: Omit<SystemEvent, 'actor_id'>) =>
  trx
    .insertInto('messages')
    .values({ conversation_id: conversationId, sender_id: actorId, message_type: 'system', content, system_event: JSON.stringify({ ...event, actor_id: actorId }) })
    .execute()

/** The name a system message gives the actor: their display name now. */
export const actorName = async (trx: Trx, userId: string): Promise<string> =>
  (await trx.selectFrom('users').select('display_name').where('id', '=', userId).executeTakeFirstOrThrow()).display_name

function checkGroupRole(me: { is_group: boolean; role: Role }, adminOnly: boolean): void {
  if (!me.is_group) throw badRequest('Direct conversations have no settings or members to change', 'NOT_A_GROUP')
  if (adminOnly && me.role !== 'admin') throw forbidden('Only group admins can do that', 'NOT_ADMIN')
}

export class ConversationsService {
  constructor(
    private readonly db: DB,
    private readonly opts: { maxGroupSize: number },
  ) {}

  /** The caller's membership, or 404: a stranger never learns the conversation exists. */
  async membership(conversationId: string, userId: string, db: DB | Trx = this.db): Promise<ParticipantRow & { is_group: boolean }> {
    const row = await db
      .selectFrom('participants')
      .innerJoin('conversations', 'conversations.id', 'participants.conversation_id')
      .selectAll('participants')
      .select('conversations.is_group')
      .where('participants.conversation_id', '=', conversationId)
      .where('participants.user_id', '=', userId)
      .executeTakeFirst()
    if (!row) throw conversationNotFound()
    return row
  }

  private load(userId: string, filter: ConversationFilter): Promise<Conversation[]> {
    return loadConversations(this.db, userId, filter)
  }

  async get(conversationId: string, userId: string): Promise<Conversation> {
    const [conversation] = await this.load(userId, { ids: [conversationId] })
    if (!conversation) throw conversationNotFound()
    return conversation
  }

  /** The caller's conversations, archived ones apart (`archived: true` lists only them). */
  list(userId: string, page: { limit: number; before?: string; archived: boolean }): Promise<Conversation[]> {
    return this.load(userId, page)
  }

  private async assertUsersExist(db: DB | Trx, ids: string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map()
    const rows = await db.selectFrom('users').select(['id', 'display_name']).where('id', 'in', ids).where('deleted_at', 'is', null).execute()
    const found = new Map(rows.map((r) => [r.id, r.display_name]))
    const missing = ids.filter((id) => !found.has(id))
    if (missing.length) throw new AppError(404, 'USER_NOT_FOUND', 'User not found', missing)
    return found
  }

  /** The id of the direct conversation of a pair, created on first use; `created` tells which. */
  async openDirect(userId: string, otherId: string): Promise<{ id: string; created: boolean }> {
    if (otherId === userId) throw badRequest('A direct conversation needs another user', 'INVALID_PARTICIPANTS')
    // The other user, and whether either of the two blocks the other, in the one look-up.
    const other = await this.db
      .selectFrom('users')
      .select(sql<boolean>`EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = ${userId} AND b.blocked_id = users.id)
          OR (b.blocker_id = users.id AND b.blocked_id = ${userId}))`.as('blocked'))
      .where('id', '=', otherId)
      .where('deleted_at', 'is', null)
      .executeTakeFirst()
    if (!other) throw new AppError(404, 'USER_NOT_FOUND', 'User not found', [otherId])
    if (other.blocked) throw blockedError()
    const directKey = [userId, otherId].sort().join(':')
    const find = () => this.db.selectFrom('conversations').select('id').where('direct_key', '=', directKey).executeTakeFirst()
    const existing = await find()
    if (existing) return { id: existing.id, created: false }
    const id = await this.db.transaction().execute(async (trx) => {
      await actAs(trx, userId)
      // Two first messages at once: one insert wins, the other finds its conversation below.
      const conv = await trx
        .insertInto('conversations')
        .values({ is_group: false, created_by: userId, direct_key: directKey })
        .onConflict((oc) => oc.column('direct_key').doNothing())
        .returning('id')
        .executeTakeFirst()
      if (!conv) return undefined
      await trx
        .insertInto('participants')
        .values([userId, otherId].map((user_id) => ({ conversation_id: conv.id, user_id, role: 'member' as Role })))
        .execute()
      return conv.id
    })
    return id ? { id, created: true } : { id: (await find())!.id, created: false }
  }

  async createGroup(userId: string, name: string, participantIds: string[]): Promise<Conversation> {
    const others = [...new Set(participantIds)].filter((id) => id !== userId)
    if (others.length + 1 > this.opts.maxGroupSize) {
      throw badRequest(`A group has at most ${this.opts.maxGroupSize} members`, 'GROUP_TOO_LARGE')
    }
    const id = await this.db.transaction().execute(async (trx) => {
      const names = await this.assertUsersExist(trx, [userId, ...others])
      await actAs(trx, userId)
      const conv = await trx.insertInto('conversations').values({ is_group: true, name, created_by: userId }).returning('id').executeTakeFirstOrThrow()
      await trx
        .insertInto('participants')
        .values([{ conversation_id: conv.id, user_id: userId, role: 'admin' as Role }, ...others.map((user_id) => ({ conversation_id: conv.id, user_id, role: 'member' as Role }))])
        .execute()
      await systemMessage(trx, conv.id, userId, `${names.get(userId)} created the group "${name}"`, { action: 'group_created', name })
      return conv.id
    })
    return this.get(id, userId)
  }

  /**
   * Runs a change to a group's membership or settings: the conversation row is locked first, so
   * concurrent admin changes serialize (and the last admin cannot vanish between check and write).
   */
  private async adminChange<T>(conversationId: string, userId: string, change: (trx: Trx, actorName: string) => Promise<T>, opts: { adminOnly?: boolean } = {}): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      await trx.selectFrom('conversations').select('id').where('id', '=', conversationId).forUpdate().execute()
      const me = await this.membership(conversationId, userId, trx)
      checkGroupRole(me, opts.adminOnly !== false)
      await actAs(trx, userId)
      return change(trx, await actorName(trx, userId))
    })
  }

  /** The errors an admin-only change would give this user, without making one. */
  async assertAdmin(conversationId: string, userId: string): Promise<void> {
    checkGroupRole(await this.membership(conversationId, userId), true)
  }

  async rename(conversationId: string, userId: string, name: string): Promise<Conversation> {
    await this.adminChange(conversationId, userId, async (trx, actor) => {
      const result = await trx.updateTable('conversations').set({ name }).where('id', '=', conversationId).where('name', 'is distinct from', name).executeTakeFirst()
      if (result.numUpdatedRows > 0n) await systemMessage(trx, conversationId, userId, `${actor} renamed the group to "${name}"`, { action: 'group_renamed', name })
    })
    return this.get(conversationId, userId)
  }

  /** Sets a group's avatar (admins); answers with the previous avatar's file id, for the caller to delete. */
  async setAvatar(conversationId: string, userId: string, fileId: string): Promise<string | undefined> {
    return this.adminChange(conversationId, userId, async (trx, actor) => {
      const before = await trx.selectFrom('conversations').select('avatar_url').where('id', '=', conversationId).executeTakeFirstOrThrow()
      await trx.updateTable('conversations').set({ avatar_url: fileUrl(fileId) }).where('id', '=', conversationId).execute()
      await systemMessage(trx, conversationId, userId, `${actor} changed the group photo`, { action: 'photo_changed' })
      return fileIdOf(before.avatar_url)
    })
  }

  async participants(conversationId: string, userId: string): Promise<Participant[]> {
    return (await this.get(conversationId, userId)).participants
  }

  async addParticipants(conversationId: string, userId: string, userIds: string[]): Promise<Participant[]> {
    await this.adminChange(conversationId, userId, async (trx, actor) => {
      const current = await trx.selectFrom('participants').select('user_id').where('conversation_id', '=', conversationId).execute()
      const present = new Set(current.map((p) => p.user_id))
      const fresh = [...new Set(userIds)].filter((id) => !present.has(id))
      if (fresh.length === 0) return
      if (present.size + fresh.length > this.opts.maxGroupSize) {
        throw badRequest(`A group has at most ${this.opts.maxGroupSize} members`, 'GROUP_TOO_LARGE')
      }
      const names = await this.assertUsersExist(trx, fresh)
      await trx.insertInto('participants').values(fresh.map((user_id) => ({ conversation_id: conversationId, user_id, role: 'member' as Role }))).execute()
      await systemMessage(trx, conversationId, userId, `${actor} added ${fresh.map((id) => names.get(id)).join(', ')}`, { action: 'members_added', user_ids: fresh })
    })
    return this.participants(conversationId, userId)
  }

  async removeParticipant(conversationId: string, userId: string, targetId: string): Promise<void> {
    if (targetId === userId) return this.leave(conversationId, userId)
    await this.adminChange(conversationId, userId, async (trx, actor) => {
      const target = await this.removeMember(trx, conversationId, targetId)
      await systemMessage(trx, conversationId, userId, `${actor} removed ${target}`, { action: 'member_removed', user_ids: [targetId] })
    })
  }

  async setRole(conversationId: string, userId: string, targetId: string, role: Role): Promise<Participant> {
    await this.adminChange(conversationId, userId, async (trx, actor) => {
      const target = await this.targetMember(trx, conversationId, targetId)
      if (target.role === role) return
      if (role === 'member') {
        const admins = await trx.selectFrom('participants').select('user_id').where('conversation_id', '=', conversationId).where('role', '=', 'admin').execute()
        if (admins.length === 1) throw conflict('A group needs at least one admin; promote someone else first', 'LAST_ADMIN')
      }
      await trx.updateTable('participants').set({ role }).where('conversation_id', '=', conversationId).where('user_id', '=', targetId).execute()
      await systemMessage(trx, conversationId, userId, `${actor} made ${target.display_name} ${role === 'admin' ? 'an admin' : 'a member'}`, { action: 'role_changed', user_ids: [targetId], role })
    })
    const participant = (await this.participants(conversationId, userId)).find((p) => p.user.id === targetId)
    return participant!
  }

  /** Leaves a group; when the last admin leaves, the longest-standing member becomes admin. */
  async leave(conversationId: string, userId: string): Promise<void> {
    await this.adminChange(
      conversationId,
      userId,
      async (trx, actor) => {
        await this.removeMember(trx, conversationId, userId)
        await systemMessage(trx, conversationId, userId, `${actor} left`, { action: 'member_left' })
        const admins = await trx.selectFrom('participants').select('user_id').where('conversation_id', '=', conversationId).where('role', '=', 'admin').execute()
        if (admins.length > 0) return
        const heir = await trx
          .selectFrom('participants as p')
          .innerJoin('users as u', 'u.id', 'p.user_id')
          .select(['p.user_id', 'u.display_name'])
          .where('p.conversation_id', '=', conversationId)
          .orderBy('p.joined_at')
          .orderBy('p.user_id')
          .limit(1)
          .executeTakeFirst()
        if (!heir) return
        await trx.updateTable('participants').set({ role: 'admin' }).where('conversation_id', '=', conversationId).where('user_id', '=', heir.user_id).execute()
        await systemMessage(trx, conversationId, userId, `${heir.display_name} is now an admin`, { action: 'admin_inherited', user_ids: [heir.user_id] })
      },
      { adminOnly: false },
    )
  }

  private async targetMember(trx: Trx, conversationId: string, targetId: string) {
    const target = await trx
      .selectFrom('participants as p')
      .innerJoin('users as u', 'u.id', 'p.user_id')
      .select(['p.role', 'u.display_name'])
      .where('p.conversation_id', '=', conversationId)
      .where('p.user_id', '=', targetId)
      .executeTakeFirst()
    if (!target) throw notFound('participant')
    return target
  }

  private async removeMember(trx: Trx, conversationId: string, targetId: string): Promise<string> {
    const target = await this.targetMember(trx, conversationId, targetId)
    await trx.deleteFrom('participants').where('conversation_id', '=', conversationId).where('user_id', '=', targetId).execute()
    return target.display_name
  }
}
