// A member's own state in a conversation, which nobody else sees change: mute and archive, clearing the history,
// typing. Each reaches only the member's own devices (or, typing, the others' live screens), never the log.
import { sql } from 'kysely'
import type { DB } from '../database.ts'
import { notFound } from '../errors.ts'
import { notifyEphemeral } from '../realtime/events.ts'
import type { Conversation, ConversationSettings } from '../schemas/conversations.ts'
import { announceReadState } from './conversation-view.ts'
import type { ConversationsService } from './conversations.ts'

export class MemberStateService {
  constructor(private readonly db: DB, private readonly conversations: ConversationsService) {}

  /**
   * The caller's own mute and archive of a conversation; nobody else sees a change. The caller's sockets, on every
   * instance, get the Conversation as they now see it (`conversation_updated`, without seq: it is no event of the
   * conversation's log).
   */
  async updateSettings(conversationId: string, userId: string, settings: ConversationSettings): Promise<Conversation> {
    await this.db.transaction().execute(async (trx) => {
      const changed = await trx
        .updateTable('participants')
        .set({
          ...(settings.muted_until !== undefined && { muted_until: settings.muted_until }),
          ...(settings.is_archived !== undefined && { is_archived: settings.is_archived }),
        })
        .where('conversation_id', '=', conversationId)
        .where('user_id', '=', userId)
        .executeTakeFirst()
      if (changed.numUpdatedRows === 0n) throw notFound('conversation')
      await notifyEphemeral(trx, { type: 'conversation_settings', user_id: userId, conversation_id: conversationId })
    })
    return this.conversations.get(conversationId, userId)
  }

  /** Hides everything up to now from this member only; nobody else sees a change, and their devices see it read. */
  async clearHistory(conversationId: string, userId: string): Promise<void> {
    await this.conversations.membership(conversationId, userId)
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('participants as p')
        .from('conversations as c')
        .set({ cleared_seq: sql`c.last_seq`, last_read_seq: sql`greatest(p.last_read_seq, c.last_seq)` })
        .whereRef('c.id', '=', 'p.conversation_id')
        .where('p.conversation_id', '=', conversationId)
        .where('p.user_id', '=', userId)
        .execute()
      await announceReadState(trx, conversationId, userId)
    })
  }

  /** Typing is ephemeral: announced to the live layer, never stored. */
  async typing(conversationId: string, userId: string, isTyping: boolean): Promise<void> {
    // The members the typist blocks, found with the membership: they are not told.
    const me = await this.db
      .selectFrom('participants as p')
      .select(sql<string[]>`array(SELECT b.blocked_id FROM blocks b JOIN participants q ON q.conversation_id = p.conversation_id
          AND q.user_id = b.blocked_id WHERE b.blocker_id = p.user_id)`.as('hidden_from'))
      .where('p.conversation_id', '=', conversationId)
      .where('p.user_id', '=', userId)
      .executeTakeFirst()
    if (!me) throw notFound('conversation')
    await notifyEphemeral(this.db, {
      type: 'typing_indicator', conversation_id: conversationId, user_id: userId, is_typing: isTyping,
      ...(me.hidden_from.length > 0 && { hidden_from: me.hidden_from }),
    })
  }
}
