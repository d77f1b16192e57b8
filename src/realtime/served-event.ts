// One event of the log as a given member may be served it now: what a `resume` would send them. A webhook
// delivery is that frame, as its owner sees it.
import { sql } from 'kysely'
import type { DB } from '../database.ts'
import type { ConversationsService } from '../services/conversations.ts'
import { eventFrameText, type ServerFrame } from './protocol.ts'
import { replayWindows } from './replay.ts'

/** Events whose frame is the Conversation as each recipient sees it (their own counts and settings). */
export const CONVERSATION_FRAMES = new Set(['conversation_updated', 'participant_role_changed'])

/** The frame of a Conversation event for one member: the Conversation as they see it (undefined if they no longer may). */
export async function conversationFrame(conversations: ConversationsService, conversationId: string, seq: number, userId: string): Promise<ServerFrame | undefined> {
  const data = await conversations.get(conversationId, userId).catch(() => undefined)
  return data && { type: 'conversation_updated', conversation_id: conversationId, seq, data }
}

export interface ServedEvent {
  /** The frame's type (a role change is a conversation_updated). */
  type: string
  /** The frame, `{type, conversation_id, seq, data}`, as JSON text. */
  text: string
}

/**
 * The event at `seq` of a conversation as `userId` may see it, or undefined when it is not theirs to see: before
 * they joined or their cleared point, after they left, or no longer in the log.
 */
export async function servedEvent(db: DB, conversations: ConversationsService, userId: string, conversationId: string, seq: number): Promise<ServedEvent | undefined> {
  const [window] = await replayWindows(db, userId, { [conversationId]: seq - 1 })
  if (!window || window.after >= seq || (window.until !== null && window.until < seq)) return undefined
  const { rows } = await sql<{ type: string; json: string }>`
    SELECT type, payload_text AS json FROM parley_served_events WHERE conversation_id = ${conversationId} AND seq = ${seq}`.execute(db)
  if (!rows[0]) return undefined
  const { type, json } = rows[0]
  if (!CONVERSATION_FRAMES.has(type)) return { type, text: eventFrameText(type, conversationId, seq, json) }
  const frame = await conversationFrame(conversations, conversationId, seq, userId)
  return frame && { type: frame.type, text: JSON.stringify(frame) }
}
