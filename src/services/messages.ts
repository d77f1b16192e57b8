import { sql } from 'kysely'
import type { MessageType } from '../../db/types.ts'
import type { DB } from '../database.ts'
import { badRequest, forbidden, notFound } from '../errors.ts'
import { mentionNames } from '../mentions.ts'
import { DELETED_CONTENT, type Message, type MessageEdit, type Receipt } from '../schemas/messages.ts'
import { blockedBetween, blockedError } from './blocks.ts'
import { announceReadState } from './conversation-view.ts'
import type { ConversationsService } from './conversations.ts'
import type { FilesService } from './files.ts'
import type { MessageWriter } from './message-writer.ts'

const messageNotFound = () => notFound('message')

// Messages leave the database through parley_message_json (triggers/messages.sql), the function that
// also builds the event log's payloads, so a REST answer and a live event can never disagree.
export const messageJson = sql<Message>`parley_message_json(m)`.as('message')

export interface SendInput {
  conversation_id?: string
  recipient_id?: string
  /** Required for text; the optional caption of a file. */
  content?: string
  reply_to_id?: string
  /** A reply into this message's thread (its root's, if it is itself a reply). */
  thread_id?: string
  client_id?: string
}

export interface FileInput {
  file_id: string
  message_type: Exclude<MessageType, 'text' | 'system'>
  file_url: string
  file_name: string
  file_size: number
  mime_type: string
  /** An image's preview (its URL) and the image's size, when one was made. */
  thumbnail_url?: string
  width?: number
  height?: number
}

export class MessagesService {
  constructor(
    private readonly db: DB,
    private readonly conversations: ConversationsService,
    private readonly files: FilesService,
    private readonly writer: MessageWriter,
  ) {}

  /** A message the user may see: they are a member and have not cleared it away. */
  async visible(messageId: string, userId: string) {
    const row = await this.db
      .selectFrom('messages as m')
      .innerJoin('participants as p', (j) => j.onRef('p.conversation_id', '=', 'm.conversation_id').on('p.user_id', '=', userId))
      .innerJoin('conversations as c', 'c.id', 'm.conversation_id')
      .select(['m.id', 'm.conversation_id', 'm.sender_id', 'm.seq', 'm.is_deleted', 'm.message_type', 'm.file_id', 'm.thread_id', 'p.role', 'p.last_read_seq', 'p.cleared_seq', 'c.is_group', messageJson])
      .where('m.id', '=', messageId)
      .whereRef('m.seq', '>', 'p.cleared_seq')
      .executeTakeFirst()
    if (!row) throw messageNotFound()
    return row
  }

  /**
   * Sends a message; `created` is false when client_id matched an earlier send, which is returned as it was.
   * The rules (membership, the reply target, the client_id) are checked by the insert itself, in one round trip;
   * only a refused send asks again, to say why.
   */
  async send(userId: string, input: SendInput, file?: FileInput, forwarded?: { sender_id: string; created_at: string }): Promise<{ message: Message; created: boolean }> {
    const conversationId = input.recipient_id !== undefined ? (await this.conversations.openDirect(userId, input.recipient_id)).id : input.conversation_id!
    let result
    try {
      result = await this.writer.insert({
        conversation_id: conversationId,
        sender_id: userId,
        message_type: file?.message_type ?? 'text',
        content: input.content ?? null,
        reply_to_id: input.reply_to_id ?? null,
        client_id: input.client_id ?? null,
        file_id: file?.file_id ?? null,
        file_url: file?.file_url ?? null,
        file_name: file?.file_name ?? null,
        file_size: file?.file_size ?? null,
        mime_type: file?.mime_type ?? null,
        ...(file?.thumbnail_url !== undefined && { thumbnail_url: file.thumbnail_url, width: file.width, height: file.height }),
        thread_id: input.thread_id ?? null,
        // A forwarded copy names no one: its @names were written for another conversation.
        mention_names: forwarded ? [] : mentionNames(input.content),
        forwarded_sender_id: forwarded?.sender_id ?? null,
        forwarded_created_at: forwarded?.created_at ?? null,
      })
    } catch (err) {
      // A concurrent retry with the same client_id committed first: answer with its message.
      if ((err as { constraint?: string }).constraint === 'messages_client_id') {
        const earlier = await this.byClientId(userId, input.client_id!)
        if (earlier) return { message: earlier, created: false }
      }
      throw err
    }
    if (result) return result
    await this.assertCanSend(conversationId, userId)
    if (input.thread_id !== undefined && !(await this.inConversation(input.thread_id, conversationId))) {
      throw badRequest('thread_id is not a message of this conversation', 'INVALID_THREAD')
    }
    throw badRequest('reply_to_id is not a message of this conversation', 'INVALID_REPLY')
  }

  /** The errors a send would give before its content is looked at: not a member (404), blocked either way in a direct conversation (403). */
  async assertCanSend(conversationId: string, userId: string): Promise<void> {
    const me = await this.conversations.membership(conversationId, userId)
    if (me.peer_id !== null && (await blockedBetween(this.db, userId, me.peer_id))) throw blockedError()
  }

  /** The seq of a page's cursor, which must be a message of that conversation (or thread): else 404. */
  private async cursorSeq(id: string, within: 'conversation_id' | 'thread_id', value: string): Promise<number> {
    const row = await this.db.selectFrom('messages').select('seq').where('id', '=', id).where(within, '=', value).executeTakeFirst()
    if (!row) throw messageNotFound()
    return row.seq
  }

  private async inConversation(messageId: string, conversationId: string): Promise<boolean> {
    return !!(await this.db.selectFrom('messages').select('id').where('id', '=', messageId).where('conversation_id', '=', conversationId).executeTakeFirst())
  }

  private async byClientId(userId: string, clientId: string): Promise<Message | undefined> {
    const row = await this.db.selectFrom('messages as m').select(messageJson).where('m.sender_id', '=', userId).where('m.client_id', '=', clientId).executeTakeFirst()
    return row?.message
  }

  async get(messageId: string, userId: string): Promise<Message> {
    return (await this.visible(messageId, userId)).message
  }

  /** A page of history: newest first, or oldest first when `after` is given (bounded by `before` if both are). */
  async list(conversationId: string, userId: string, page: { limit: number; before?: string; after?: string }): Promise<Message[]> {
    const me = await this.conversations.membership(conversationId, userId)
    const seqOf = (id: string) => this.cursorSeq(id, 'conversation_id', conversationId)
    let query = this.db
      .selectFrom('messages as m')
      .select(messageJson)
      .where('m.conversation_id', '=', conversationId)
      .where('m.seq', '>', me.cleared_seq)
    if (page.before !== undefined) query = query.where('m.seq', '<', await seqOf(page.before))
    if (page.after !== undefined) query = query.where('m.seq', '>', await seqOf(page.after))
    const rows = await query
      .orderBy('m.seq', page.after !== undefined ? 'asc' : 'desc')
      .limit(page.limit)
      .execute()
    return rows.map((r) => r.message)
  }

  /**
   * A thread's replies, oldest first: the first `limit`, those after `after`, or the `limit` just before `before`.
   * Named by its root or by any reply in it; replies the caller cleared away are not shown.
   */
  async thread(messageId: string, userId: string, page: { limit: number; before?: string; after?: string }): Promise<Message[]> {
    const msg = await this.visible(messageId, userId)
    const root = msg.thread_id ?? msg.id
    const seqOf = (id: string) => this.cursorSeq(id, 'thread_id', root)
    let query = this.db.selectFrom('messages as m').select(messageJson).where('m.thread_id', '=', root).where('m.seq', '>', msg.cleared_seq)
    if (page.before !== undefined) query = query.where('m.seq', '<', await seqOf(page.before))
    if (page.after !== undefined) query = query.where('m.seq', '>', await seqOf(page.after))
    const backwards = page.before !== undefined && page.after === undefined
    const rows = await query.orderBy('m.seq', backwards ? 'desc' : 'asc').limit(page.limit).execute()
    const messages = rows.map((r) => r.message)
    return backwards ? messages.reverse() : messages
  }

  async edit(messageId: string, userId: string, content: string): Promise<Message> {
    const msg = await this.visible(messageId, userId)
    if (msg.sender_id !== userId || msg.message_type === 'system') throw forbidden('Only the sender can edit a message', 'NOT_SENDER')
    if (msg.is_deleted) throw badRequest('A deleted message cannot be edited', 'MESSAGE_DELETED')
    if (msg.message.content === content) return msg.message
    const row = await this.db
      .updateTable('messages as m')
      .set({ content, is_edited: true, updated_at: new Date(), mentions: sql<string[]>`parley_members_named(m.conversation_id, ${mentionNames(content)}::text[])` })
      .where('m.id', '=', messageId)
      .where('m.is_deleted', '=', false)
      .returning(messageJson)
      .executeTakeFirst()
    if (!row) throw badRequest('A deleted message cannot be edited', 'MESSAGE_DELETED')
    return row.message
  }

  /** The versions an edit replaced, oldest first, to whoever may see the message (a deleted one has none). */
  async edits(messageId: string, userId: string): Promise<MessageEdit[]> {
    await this.visible(messageId, userId)
    const rows = await this.db.selectFrom('message_edits').select(['content', 'edited_at']).where('message_id', '=', messageId).orderBy('id').execute()
    return rows.map((r) => ({ content: r.content, edited_at: r.edited_at.toISOString() }))
  }

  /** Soft delete: the row stays, its content and file are gone. Deleting twice is harmless. */
  async remove(messageId: string, userId: string): Promise<Message> {
    const msg = await this.visible(messageId, userId)
    const groupAdmin = msg.is_group && msg.role === 'admin'
    if (msg.sender_id !== userId && !groupAdmin) throw forbidden('Only the sender or a group admin can delete a message', 'NOT_ALLOWED')
    if (msg.is_deleted) return msg.message
    const row = await this.db
      .updateTable('messages as m')
      .set({ is_deleted: true, content: DELETED_CONTENT, file_id: null, file_url: null, file_name: null, file_size: null, mime_type: null, thumbnail_url: null, width: null, height: null, updated_at: new Date() })
      .where('m.id', '=', messageId)
      .returning(messageJson)
      .executeTakeFirstOrThrow()
    await this.files.remove(msg.file_id)
    return row.message
  }

  /**
   * Moves the reader's pointer up to this message (never back); a move is a receipt and an event, unless the reader
   * had read this far before and marked it unread since: others were told then, and a receipt says when a message
   * was first read. The reader's own sockets get `read_state`.
   */
  async markRead(messageId: string, userId: string): Promise<void> {
    const msg = await this.visible(messageId, userId)
    // Already read: nothing to move, no lock to take. The UPDATE below checks again under its lock.
    if (msg.last_read_seq >= msg.seq) return
    await this.db.transaction().execute(async (trx) => {
      // Conversation row first, participant row second, as membership changes lock them: the receipt's
      // event takes the conversation's seq after the participant update, and the other order deadlocks.
      await trx.selectFrom('conversations').select('id').where('id', '=', msg.conversation_id).forUpdate().execute()
      const { rows } = await sql<{ moved: number }>`
        WITH moved AS (
          UPDATE participants SET last_read_seq = ${msg.seq}
          WHERE conversation_id = ${msg.conversation_id} AND user_id = ${userId} AND last_read_seq < ${msg.seq}
          RETURNING conversation_id
        ), receipt AS (
          INSERT INTO read_receipts (conversation_id, user_id, seq, message_id)
          SELECT conversation_id, ${userId}, ${msg.seq}, ${messageId} FROM moved
          WHERE NOT EXISTS (SELECT 1 FROM read_receipts r WHERE r.conversation_id = ${msg.conversation_id} AND r.user_id = ${userId} AND r.seq >= ${msg.seq})
        )
        SELECT count(*)::int AS moved FROM moved`.execute(trx)
      if (rows[0].moved > 0) await announceReadState(trx, msg.conversation_id, userId)
    })
  }

  /**
   * Moves the reader's pointer back to just before this message, so that it and what follows count as unread
   * again. It never moves forward: marking a message unread reads nothing. Receipts stay and nobody else is told
   * (as in Slack and Matrix, it is the reader's own bookmark); the reader's own sockets get `read_state`.
   */
  async markUnread(messageId: string, userId: string): Promise<void> {
    const msg = await this.visible(messageId, userId)
    await this.db.transaction().execute(async (trx) => {
      const moved = await trx
        .updateTable('participants')
        .set({ last_read_seq: msg.seq - 1 })
        .where('conversation_id', '=', msg.conversation_id)
        .where('user_id', '=', userId)
        .where('last_read_seq', '>=', msg.seq)
        .executeTakeFirst()
      if (moved.numUpdatedRows > 0n) await announceReadState(trx, msg.conversation_id, userId)
    })
  }

  /** Who has read the message, and when: the first receipt of each reader that reaches it. */
  async receipts(messageId: string, userId: string): Promise<Receipt[]> {
    const msg = await this.visible(messageId, userId)
    const rows = await sql<{ user_id: string; read_at: Date }>`
      SELECT * FROM (
        SELECT DISTINCT ON (user_id) user_id, read_at FROM read_receipts
        WHERE conversation_id = ${msg.conversation_id} AND seq >= ${msg.seq} AND user_id <> ${msg.sender_id}
        ORDER BY user_id, seq
      ) firsts ORDER BY read_at, user_id`.execute(this.db)
    return rows.rows.map((r) => ({ user_id: r.user_id, read_at: new Date(r.read_at).toISOString() }))
  }
}
