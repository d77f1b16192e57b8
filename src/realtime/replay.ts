import { sql } from 'kysely'
import type { DB } from '../database.ts'
import type { ConversationEvent } from './events.ts'

/** One conversation's part of a resume: its events after `after`, up to `until` (a former member's removal). */
export interface ReplayWindow {
  conversation_id: string
  after: number
  until: number | null
}

/**
 * Where each conversation's replay starts and ends, for the conversations that have anything in it. A current
 * member gets what follows the seq they name (all since joining when they name none), never what they cleared,
 * nor what happened while they were away if they were removed and added again meanwhile. A former member who
 * names a conversation gets what followed up to their removal, never what they had cleared. Conversations the
 * caller never belonged to give no window: naming them costs an index probe and stores nothing.
 */
export async function replayWindows(db: DB, userId: string, seen: Record<string, number>): Promise<ReplayWindow[]> {
  const ids = Object.keys(seen)
  const seqs = ids.map((id) => seen[id])
  const { rows } = await sql<ReplayWindow>`
    WITH seen(conversation_id, after) AS (SELECT * FROM unnest(${ids}::uuid[], ${seqs}::bigint[])),
    windows AS (
      SELECT p.conversation_id, NULL::bigint AS until,
        greatest(coalesce(s.after, p.joined_seq), p.cleared_seq,
          CASE WHEN EXISTS (SELECT 1 FROM conversation_events r WHERE r.conversation_id = p.conversation_id
            AND r.type = 'participant_removed' AND r.payload->>'user_id' = ${userId}::text
            AND r.seq > s.after AND r.seq <= p.joined_seq) THEN p.joined_seq END) AS after
      FROM participants p LEFT JOIN seen s USING (conversation_id)
      WHERE p.user_id = ${userId}
      UNION ALL
      SELECT s.conversation_id, r.seq, greatest(s.after, (r.payload->>'cleared_seq')::bigint)
      FROM seen s
      CROSS JOIN LATERAL (
        SELECT e.seq, e.payload FROM conversation_events e
        WHERE e.conversation_id = s.conversation_id AND e.type = 'participant_removed'
          AND e.payload->>'user_id' = ${userId}::text AND e.seq > s.after
        ORDER BY e.seq LIMIT 1) r
      WHERE NOT EXISTS (SELECT 1 FROM participants p WHERE p.conversation_id = s.conversation_id AND p.user_id = ${userId})
    )
    SELECT w.conversation_id, w.after, w.until FROM windows w JOIN conversations c ON c.id = w.conversation_id
    WHERE c.last_seq > w.after AND (w.until IS NULL OR w.until > w.after)
    ORDER BY w.conversation_id`.execute(db)
  return rows
}

/** A window's events in seq order, as the API shows them now, read a page at a time. */
export async function* replayEvents(db: DB, window: ReplayWindow, pageSize: number): AsyncGenerator<ConversationEvent> {
  for (let cursor = window.after; ; ) {
    let q = db
      .selectFrom('parley_served_events')
      .select(['conversation_id', 'seq', 'type', 'payload'])
      .where('conversation_id', '=', window.conversation_id)
      .where('seq', '>', cursor)
    if (window.until !== null) q = q.where('seq', '<=', window.until)
    const page = (await q.orderBy('seq').limit(pageSize).execute()) as ConversationEvent[]
    yield* page
    if (page.length < pageSize) return
    cursor = page[page.length - 1].seq
  }
}
