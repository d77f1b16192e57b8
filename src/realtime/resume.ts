import type { DB } from '../database.ts'
import { AppError } from '../errors.ts'
import type { ConversationsService } from '../services/conversations.ts'
import type { Connection, HeldFrame } from './connection.ts'
import { eventFrameText, eventHead } from './protocol.ts'
import { replayPages, replayWindows } from './replay.ts'
import { CONVERSATION_FRAMES, conversationFrame } from './served-event.ts'

export interface ResumeContext {
  db: DB
  conversations: ConversationsService
  /** Events read from the log per query. */
  pageSize: number
}

/**
 * Every event the client missed, from its last seen seqs (`seen`), then `resumed`; live frames wait meanwhile.
 * One resume at a time per socket, read from the log a page at a time and written only as fast as the socket
 * drains, so a small frame cannot make the instance hold a large answer. `mine`: the conversations the user is
 * in now (a former member's are replayed up to their removal, and then forgotten).
 */
export async function resume(ctx: ResumeContext, conn: Connection, mine: ReadonlySet<string>, seen: Record<string, number>): Promise<void> {
  if (conn.held) throw new AppError(409, 'RESUME_IN_PROGRESS', 'A resume is already running on this socket; wait for its resumed frame')
  const held: HeldFrame[] = (conn.held = [])
  try {
    // Seqs the client has seen are remembered only for conversations it is in: nothing else is kept per id.
    for (const [conv, seq] of Object.entries(seen)) if (mine.has(conv) && (conn.sent.get(conv) ?? 0) < seq) conn.sent.set(conv, seq)
    for (const window of await replayWindows(ctx.db, conn.userId, seen)) {
      for await (const page of replayPages(ctx.db, window, ctx.pageSize)) {
        conn.cork()
        const conv = window.conversation_id
        for (const [seq, type, json] of page) {
          if (conn.backedUp && !(await conn.drained())) return
          if (CONVERSATION_FRAMES.has(type)) {
            const frame = await conversationFrame(ctx.conversations, conv, seq, conn.userId)
            if (frame) conn.deliver(frame, undefined, true)
          } else conn.deliverText(eventHead(type, conv, seq), eventFrameText(type, conv, seq, json), true)
        }
        conn.uncork()
      }
      conn.replayedUpTo(window.conversation_id, window.until ?? window.last_seq)
      if (!mine.has(window.conversation_id)) conn.sent.delete(window.conversation_id)
    }
  } finally {
    conn.uncork()
    for (const [head, text, bytes] of held) conn.deliverText(head, text, false, bytes)
    conn.held = undefined
  }
  conn.deliver({ type: 'resumed' })
}
