import { type ExpressionBuilder, sql } from 'kysely'
import type { Database } from '../../db/types.ts'
import type { DB } from '../database.ts'
import type { Conversation, Participant } from '../schemas/conversations.ts'
import type { Message } from '../schemas/messages.ts'
import { notifyEphemeral } from '../realtime/events.ts'
import type { ReadState } from '../realtime/protocol.ts'
import { toPublicUser } from './users.ts'

export interface ConversationFilter {
  ids?: string[]
  /** A conversation id of the caller's: only those last active before it. */
  before?: string
  limit?: number
  /** Only the caller's archived conversations (true) or only the others (false); both when left out. */
  archived?: boolean
}

/**
 * The unread messages of member `p` (a participants row in the query), both counts in one pass: messages of
 * others after their read and cleared points, not deleted; system messages don't count, mentions of `p` do.
 * A muted conversation counts the same: muting is for notifications, not for the counts.
 */
const unreadOf = (eb: ExpressionBuilder<Database & { p: Database['participants'] }, 'p'>) =>
  eb.selectFrom('messages as m')
    .select([
      sql<number>`count(*) FILTER (WHERE m.message_type <> 'system')`.as('unread_count'),
      sql<number>`count(*) FILTER (WHERE p.user_id = ANY (m.mentions))`.as('unread_mention_count'),
    ])
    .whereRef('m.conversation_id', '=', 'p.conversation_id')
    .where(sql<boolean>`m.seq > greatest(p.last_read_seq, p.cleared_seq)`)
    .whereRef('m.sender_id', '<>', 'p.user_id')
    .where('m.is_deleted', '=', false)
    .as('unread')

/**
 * Conversations as the given member sees them: their own unread and mention counts, mute and archive, the pins,
 * the last message they can see, the members. One query for the conversations, one for their members.
 */
export async function loadConversations(db: DB, userId: string, filter: ConversationFilter): Promise<Conversation[]> {
  let query = db
    .selectFrom('participants as p')
    .innerJoin('conversations as c', 'c.id', 'p.conversation_id')
    .innerJoinLateral(unreadOf, (join) => join.onTrue())
    .selectAll('c')
    .select([
      sql<Message | null>`(SELECT parley_message_json(m) FROM messages m
          WHERE m.conversation_id = c.id AND m.seq > p.cleared_seq ORDER BY m.seq DESC LIMIT 1)`.as('last_message'),
      'unread.unread_count',
      'unread.unread_mention_count',
      sql<number>`(SELECT count(*) FROM messages m
          WHERE m.conversation_id = c.id AND m.pinned_at IS NOT NULL AND m.seq > p.cleared_seq)`.as('pinned_count'),
      // A mute that has run out reads as none: it expires by itself, no job clears it.
      sql<Date | null>`CASE WHEN p.muted_until > now() THEN p.muted_until END`.as('muted_until'),
      'p.is_archived',
    ])
    .where('p.user_id', '=', userId)
    .orderBy('c.updated_at', 'desc')
    .orderBy('c.id', 'desc')
  if (filter.ids) query = query.where('c.id', 'in', filter.ids)
  if (filter.archived !== undefined) query = query.where('p.is_archived', '=', filter.archived)
  if (filter.before) {
    // The cursor must be one of the caller's own conversations: a stranger's pages like an unknown id (nothing),
    // or the page would tell that it exists and when it was last active.
    query = query.where(sql<boolean>`(c.updated_at, c.id) < (SELECT cc.updated_at, cc.id FROM participants cp
        JOIN conversations cc ON cc.id = cp.conversation_id WHERE cp.conversation_id = ${filter.before} AND cp.user_id = ${userId})`)
  }
  if (filter.limit) query = query.limit(filter.limit)
  const rows = await query.execute()
  if (rows.length === 0) return []

  const members = await db
    .selectFrom('participants as p')
    .innerJoin('users as u', 'u.id', 'p.user_id')
    // Two probes by key per member: whether the caller blocks them, whether they block the caller (who then sees
    // no presence of theirs). Sharing this conversation, the caller sees the others' presence otherwise.
    .leftJoin('blocks as mine', (j) => j.onRef('mine.blocked_id', '=', 'u.id').on('mine.blocker_id', '=', userId))
    .leftJoin('blocks as theirs', (j) => j.onRef('theirs.blocker_id', '=', 'u.id').on('theirs.blocked_id', '=', userId))
    .select(['p.conversation_id', 'p.role', 'p.joined_at', 'u.id', 'u.username', 'u.display_name', 'u.avatar_url', 'u.is_online', 'u.last_seen', 'u.created_at', 'u.deleted_at'])
    .select(['mine.blocker_id as i_block', 'theirs.blocker_id as blocks_me'])
    .where('p.conversation_id', 'in', rows.map((r) => r.id))
    .orderBy('p.joined_at')
    .orderBy('u.username')
    .execute()
  const byConversation = new Map<string, Participant[]>()
  for (const m of members) {
    const list = byConversation.get(m.conversation_id) ?? []
    const user = toPublicUser(m, { isBlocked: m.i_block !== null, seesPresence: m.blocks_me === null })
    list.push({ user, role: m.role, joined_at: new Date(m.joined_at).toISOString() })
    byConversation.set(m.conversation_id, list)
  }
  return rows.map((r) => ({
    id: r.id,
    is_group: r.is_group,
    name: r.name,
    avatar_url: r.avatar_url,
    created_by: r.created_by,
    created_at: new Date(r.created_at).toISOString(),
    updated_at: new Date(r.updated_at).toISOString(),
    participants: byConversation.get(r.id) ?? [],
    last_message: r.last_message,
    unread_count: r.unread_count,
    unread_mention_count: r.unread_mention_count,
    pinned_count: r.pinned_count,
    muted_until: r.muted_until ? new Date(r.muted_until).toISOString() : null,
    is_archived: r.is_archived,
    last_seq: r.last_seq,
  }))
}

/**
 * A member's read position and counts, as `read_state` tells their devices: the last message they can see at or
 * before their read point (null when there is none), and the same counts as their Conversation's.
 */
export async function readStateOf(db: DB, conversationId: string, userId: string): Promise<ReadState | undefined> {
  return db
    .selectFrom('participants as p')
    .innerJoinLateral(unreadOf, (join) => join.onTrue())
    .select([
      'p.conversation_id',
      sql<string | null>`(SELECT m.id FROM messages m WHERE m.conversation_id = p.conversation_id
          AND m.seq <= p.last_read_seq AND m.seq > p.cleared_seq ORDER BY m.seq DESC LIMIT 1)`.as('last_read_message_id'),
      'unread.unread_count',
      'unread.unread_mention_count',
    ])
    .where('p.conversation_id', '=', conversationId)
    .where('p.user_id', '=', userId)
    .executeTakeFirst()
}

/** Tells the member's sockets, on every instance and once committed, where their read position is now. */
export async function announceReadState(trx: DB, conversationId: string, userId: string): Promise<void> {
  const state = await readStateOf(trx, conversationId, userId)
  if (state) await notifyEphemeral(trx, { type: 'read_state', user_id: userId, ...state })
}
