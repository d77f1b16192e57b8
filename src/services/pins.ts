import { sql } from 'kysely'
import type { DB } from '../database.ts'
import { conflict, forbidden } from '../errors.ts'
import type { Message } from '../schemas/messages.ts'
import { actAs, actorName, type ConversationsService, systemMessage } from './conversations.ts'
import { messageJson, type MessagesService } from './messages.ts'

export const MAX_PINS = 50

/**
 * Pinned messages. Any member of a direct conversation may pin, only admins of a group; a group pin says so
 * with a system message. The events are the messages trigger's (message_pinned, message_unpinned). Each change
 * locks the conversation first, as sending does, so the limit holds however many pin at once.
 */
export class PinsService {
  constructor(
    private readonly db: DB,
    private readonly messages: MessagesService,
    private readonly conversations: ConversationsService,
  ) {}

  async pin(messageId: string, userId: string): Promise<Message> {
    return this.change(messageId, userId, true)
  }

  async unpin(messageId: string, userId: string): Promise<Message> {
    return this.change(messageId, userId, false)
  }

  /** The conversation's pinned messages, most recently pinned first. */
  async list(conversationId: string, userId: string): Promise<Message[]> {
    const me = await this.conversations.membership(conversationId, userId)
    const rows = await this.db
      .selectFrom('messages as m')
      .select(messageJson)
      .where('m.conversation_id', '=', conversationId)
      .where('m.pinned_at', 'is not', null)
      .where('m.seq', '>', me.cleared_seq)
      .orderBy('m.pinned_at', 'desc')
      .orderBy('m.seq', 'desc')
      .execute()
    return rows.map((r) => r.message)
  }

  private async change(messageId: string, userId: string, pinned: boolean): Promise<Message> {
    const msg = await this.messages.visible(messageId, userId)
    if (msg.is_group && msg.role !== 'admin') throw forbidden('Only group admins can pin messages', 'NOT_ADMIN')
    if (msg.is_deleted) throw conflict('A deleted message cannot be pinned', 'MESSAGE_DELETED')
    if ((msg.message.pinned_at !== null) === pinned) return msg.message
    return this.db.transaction().execute(async (trx) => {
      await actAs(trx, userId)
      await trx.selectFrom('conversations').select('id').where('id', '=', msg.conversation_id).forUpdate().execute()
      if (pinned) {
        const { n } = await trx.selectFrom('messages').select(sql<number>`count(*)`.as('n'))
          .where('conversation_id', '=', msg.conversation_id).where('pinned_at', 'is not', null).executeTakeFirstOrThrow()
        if (n >= MAX_PINS) throw conflict(`A conversation holds at most ${MAX_PINS} pinned messages`, 'TOO_MANY_PINS')
      }
      const row = await trx
        .updateTable('messages as m')
        .set(pinned ? { pinned_at: new Date(), pinned_by: userId } : { pinned_at: null, pinned_by: null })
        .where('m.id', '=', messageId)
        .where('m.is_deleted', '=', false)
        .returning(messageJson)
        .executeTakeFirst()
      if (!row) throw conflict('A deleted message cannot be pinned', 'MESSAGE_DELETED')
      if (pinned && msg.is_group) {
        await systemMessage(trx, msg.conversation_id, userId, `${await actorName(trx, userId)} pinned a message`, { action: 'message_pinned', message_id: messageId })
      }
      return row.message
    })
  }
}
