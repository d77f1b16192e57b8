import { sql } from 'kysely'
import { type DB, poolOf, queryPrepared } from '../database.ts'

/** One conversation's part of a resume: its events after `after`, up to `until` (a former member's removal). */
export interface ReplayWindow {
  conversation_id: string
  after: number
  until: number | null
  /** The conversation's last seq when the windows were read. */
  last_seq: number
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
    SELECT w.conversation_id, w.after, w.until, c.last_seq FROM windows w JOIN conversations c ON c.id = w.conversation_id
    WHERE c.last_seq > w.after AND (w.until IS NULL OR w.until > w.after)
    ORDER BY w.conversation_id`.execute(db)
  return rows
}

/** A replayed event, as a row of the page: its seq, its type, and its `data` as JSON text, spliced into the frame as PostgreSQL wrote it. */
export type ReplayedEvent = [seq: number, type: string, json: string]

// The first page is small, since nothing is sent before it is all read; each page after is twice the one before,
// up to `pageSize`, so later pages are read while earlier ones are written.
const FIRST_PAGE = 100

/**
 * A window's events in seq order, as the API shows them now, in pages, the next page read while this one
 * is sent. Seqs are gapless, so a page is a seq range: the log's primary key gives exactly its rows, each
 * message is looked up and rendered once, and nothing is parsed and serialized again on the way to the socket.
 * Up to the seq the conversation had when the windows were read: what commits after reaches the socket live.
 */
export async function* replayPages(db: DB, window: ReplayWindow, pageSize: number): AsyncGenerator<ReplayedEvent[]> {
  const end = window.until ?? window.last_seq
  const pool = poolOf(db)!
  const page = (after: number, size: number) => {
    // Rows as arrays: a page is hundreds of rows, and each needs no names, nor the window's conversation id.
    const read = queryPrepared<ReplayedEvent>(pool, { name: 'parley-replay-page', text: REPLAY_PAGE, values: [window.conversation_id, after, Math.min(after + size, end)], rowMode: 'array' })
    // A socket that closes mid-replay leaves the page read ahead unawaited.
    read.catch(() => {})
    return read
  }
  // Two pages in flight: PostgreSQL renders one while the other is read and sent.
  const ahead: Array<ReturnType<typeof page>> = []
  let from = window.after
  let size = Math.min(FIRST_PAGE, pageSize)
  const readAhead = () => {
    while (ahead.length < 2 && from < end) {
      ahead.push(page(from, size))
      from += size
      size = Math.min(size * 2, pageSize)
    }
  }
  readAhead()
  while (ahead.length > 0) {
    const { rows } = await ahead.shift()!
    readAhead()
    yield rows
  }
}

// Prepared once per connection (a named statement): planning it cost a third of running it.
export const REPLAY_PAGE = `
  SELECT seq, type, payload_text FROM parley_served_events
  WHERE conversation_id = $1 AND seq > $2 AND seq <= $3
  ORDER BY seq`
