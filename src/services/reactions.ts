import type { DB } from '../database.ts'
import { reactionKey } from '../emoji.ts'
import { badRequest, conflict } from '../errors.ts'
import { MAX_REACTIONS_PER_MESSAGE, type Message, type Reaction } from '../schemas/messages.ts'
import { messageJson, type MessagesService } from './messages.ts'

/**
 * Reactions to messages. The rules are here; the summary on the message and the events are the database's
 * (triggers/reactions.sql). Each change takes the message's row lock first, so that the limit of emoji per
 * message holds however many react at once.
 */
export class ReactionsService {
  constructor(
    private readonly db: DB,
    private readonly messages: MessagesService,
  ) {}

  /** Adds the user's reaction; adding it again changes nothing. */
  async react(messageId: string, userId: string, emoji: string): Promise<Message> {
    const key = this.key(emoji)
    await this.messages.visible(messageId, userId)
    return this.db.transaction().execute(async (trx) => {
      const { reactions } = await this.lock(trx, messageId)
      if (!reactions.some((r) => r.emoji === key) && reactions.length >= MAX_REACTIONS_PER_MESSAGE) {
        throw conflict(`A message takes at most ${MAX_REACTIONS_PER_MESSAGE} different reactions`, 'TOO_MANY_REACTIONS')
      }
      await trx.insertInto('reactions').values({ message_id: messageId, emoji: key, user_id: userId }).onConflict((oc) => oc.doNothing()).execute()
      return this.current(trx, messageId)
    })
  }

  /** Takes the user's reaction back; taking back one that is not there changes nothing. */
  async unreact(messageId: string, userId: string, emoji: string): Promise<Message> {
    const key = this.key(emoji)
    await this.messages.visible(messageId, userId)
    return this.db.transaction().execute(async (trx) => {
      await this.lock(trx, messageId)
      await trx.deleteFrom('reactions').where('message_id', '=', messageId).where('emoji', '=', key).where('user_id', '=', userId).execute()
      return this.current(trx, messageId)
    })
  }

  private key(emoji: string): string {
    const key = reactionKey(emoji)
    if (!key) throw badRequest('A reaction is one emoji or a :short_code:', 'INVALID_EMOJI')
    return key
  }

  private async lock(trx: DB, messageId: string): Promise<{ reactions: Reaction[] }> {
    const row = await trx.selectFrom('messages').select(['is_deleted', 'reactions']).where('id', '=', messageId).forNoKeyUpdate().executeTakeFirstOrThrow()
    if (row.is_deleted) throw conflict('A deleted message takes no reactions', 'MESSAGE_DELETED')
    return { reactions: row.reactions as Reaction[] }
  }

  private async current(trx: DB, messageId: string): Promise<Message> {
    const row = await trx.selectFrom('messages as m').select(messageJson).where('m.id', '=', messageId).executeTakeFirstOrThrow()
    return row.message
  }
}
