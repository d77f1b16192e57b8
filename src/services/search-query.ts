import { type RawBuilder, sql } from 'kysely'
import type { DB } from '../database.ts'
import type { Message } from '../schemas/messages.ts'

// The statement behind a page of search results, and the choice between its two shapes.
//
// A page is the newest `limit` matches among the caller's conversations. PostgreSQL answers a GIN condition with
// a bitmap of every match in the table, and cannot share that bitmap between the conversations of a nested loop:
// planned as one join, a common word's posting list is read once per membership. So the service plans the join
// itself, from the planner's estimate of how many messages match (`estimatedMatches`):
//
// - `newest-per-conversation`: each conversation read newest first along its (conversation_id, seq) index,
//   checking each message's tsvector, stopping at `limit` matches; then the conversations' pages merged. It reads
//   about limit / selectivity messages per conversation (all of a small one), so it suits common words.
// - `matches-first`: the GIN index read once for every match in the table, then kept to the caller's
//   conversations. It reads every match, at random places in the table, so it suits rare words.
//
// Both rest on one invariant the insert trigger keeps: within a conversation created_at never decreases with
// seq, so a conversation's newest by seq are its newest by (created_at, seq).

export interface SearchInput {
  q: string
  conversation_id?: string
  sender_id?: string
  before?: string
  limit: number
}

export type Cursor = Pick<Message, 'created_at' | 'conversation_id' | 'seq'>
export type Shape = 'newest-per-conversation' | 'matches-first'

export const CONFIG = sql`'parley_search'::regconfig`

/**
 * Whether the last word of a query is still being typed and should match as a prefix ("hel" finds "hello"):
 * not inside an unclosed quote nor at the end of a phrase, not an excluded `-word`, not the operator `or`,
 * and ending in a letter or digit (a word followed by punctuation is finished).
 */
export function prefixesLastWord(q: string): boolean {
  if ((q.match(/"/g) ?? []).length % 2 === 1) return false
  const last = q.trimEnd().split(/\s+/).pop() ?? ''
  return !last.startsWith('-') && !/^or$/i.test(last) && /[\p{L}\p{N}]$/u.test(last)
}

/**
 * The query as PostgreSQL parses it: websearch_to_tsquery (words, "phrases", -excluded, OR), with the last
 * lexeme made a prefix (`:*`) when the last word is being typed. The last lexeme of the parsed text is that
 * word's (websearch keeps the order of the words). Every function here is immutable, so the planner folds the
 * whole expression into a constant and can use the column's statistics for it.
 */
export function tsquery(q: string): RawBuilder<unknown> {
  const parsed = sql`websearch_to_tsquery(${CONFIG}, ${q})`
  return prefixesLastWord(q) ? sql`regexp_replace(${parsed}::text, '''$', ''':*')::tsquery` : parsed
}

// A match read through the GIN index costs about five messages read in order along a conversation's index
// (measured on the bench's million messages: 3 to 7 µs against 0.6 to 1 µs), mostly because it lands on a random page.
const RANDOM_READ_COST = 5

// The planner estimates a phrase as if its words could be anywhere in the message (what the GIN index returns,
// before the positions are checked), and that overstates what matches: on the bench's messages, a tenth of the
// messages holding two words held them side by side. So each phrase operator (<->, <N>) in the query divides
// the matches the in-order scan can expect by PHRASE_ADJACENCY.
const PHRASE_ADJACENCY = 10

/**
 * The cheaper shape, by the messages each would read: `candidates` (the planner's estimate of what the GIN index
 * returns, over the whole table of `total`) at RANDOM_READ_COST each, or in every conversation of `sizes` its
 * newest messages up to the limit / selectivity that hold `limit` matches.
 */
export function chooseShape(candidates: number, phrases: number, total: number, sizes: number[], limit: number): Shape {
  const matches = candidates / PHRASE_ADJACENCY ** phrases
  const perConversation = (limit * Math.max(total, 1)) / Math.max(matches, 1)
  const inOrder = sizes.reduce((sum, size) => sum + Math.min(size, perConversation), 0)
  return candidates * RANDOM_READ_COST < inOrder ? 'matches-first' : 'newest-per-conversation'
}

/**
 * What the choice needs, in two statements: the planner's estimate of the messages matching the query, and the
 * table's size and the caller's conversations' (in seqs after their cleared point, an upper bound on messages).
 */
export async function shapeFor(db: DB, userId: string, input: SearchInput): Promise<Shape> {
  const explained = await sql<{ 'QUERY PLAN': [{ Plan: Record<string, string | undefined> & { 'Plan Rows': number } }] }>`
    EXPLAIN (FORMAT JSON) SELECT 1 FROM messages WHERE search @@ ${tsquery(input.q)}`.execute(db)
  const plan = explained.rows[0]['QUERY PLAN'][0].Plan
  // The plan's condition shows the query as the planner folded it, with its phrase operators to count: a bitmap
  // scan's (a small table's sequential scan has it as its filter).
  const condition = plan['Recheck Cond'] ?? plan.Filter ?? ''
  const phrases = (condition.match(/<(?:-|\d+)>/g) ?? []).length
  let sizes = db
    .selectFrom('participants as p')
    .innerJoin('conversations as c', 'c.id', 'p.conversation_id')
    .select([sql<number>`(c.last_seq - p.cleared_seq)::float8`.as('size'), sql<number>`(SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass)::float8`.as('total')])
    .where('p.user_id', '=', userId)
  if (input.conversation_id !== undefined) sizes = sizes.where('p.conversation_id', '=', input.conversation_id)
  const rows = await sizes.execute()
  return chooseShape(plan['Plan Rows'], phrases, rows[0]?.total ?? 0, rows.map((r) => r.size), input.limit)
}

const before = (cursor: Cursor) =>
  sql<boolean>`(m.created_at, m.conversation_id, m.seq) < (${cursor.created_at}::timestamptz, ${cursor.conversation_id}::uuid, ${cursor.seq}::bigint)`

/** The page's keys (id, created_at, conversation_id, seq), newest first, in the given shape. */
export function pageQuery(db: DB, userId: string, input: SearchInput, shape: Shape, cursor?: Cursor) {
  return shape === 'matches-first' ? matchesFirst(db, userId, input, cursor) : newestPerConversation(db, userId, input, cursor)
}

function newestPerConversation(db: DB, userId: string, input: SearchInput, cursor?: Cursor) {
  let members = db.selectFrom('participants as p').where('p.user_id', '=', userId)
  if (input.conversation_id !== undefined) members = members.where('p.conversation_id', '=', input.conversation_id)
  const page = members
    .innerJoinLateral(
      (eb) => {
        // ts_match_vq is @@ written as a function, which no index answers: the scan stays on the conversation's index.
        let q = eb
          .selectFrom('messages as m')
          .select(['m.id', 'm.created_at', 'm.conversation_id', 'm.seq'])
          .whereRef('m.conversation_id', '=', 'p.conversation_id')
          .whereRef('m.seq', '>', 'p.cleared_seq')
          .where(sql<boolean>`ts_match_vq(m.search, ${tsquery(input.q)})`)
        if (input.sender_id !== undefined) q = q.where('m.sender_id', '=', input.sender_id)
        if (cursor) q = q.where(before(cursor))
        return q.orderBy('m.seq', 'desc').limit(input.limit).as('x')
      },
      (j) => j.onTrue(),
    )
    .select(['x.id', 'x.created_at', 'x.conversation_id', 'x.seq'])
  return page.orderBy('x.created_at', 'desc').orderBy('x.conversation_id', 'desc').orderBy('x.seq', 'desc').limit(input.limit)
}

function matchesFirst(db: DB, userId: string, input: SearchInput, cursor?: Cursor) {
  // MATERIALIZED, so that the planner cannot put the GIN scan back inside a loop over the memberships.
  return db
    .with(
      (w) => w('hits').materialized(),
      (q) => {
        let hits = q.selectFrom('messages as m').select(['m.id', 'm.created_at', 'm.conversation_id', 'm.seq']).where(sql<boolean>`m.search @@ ${tsquery(input.q)}`)
        if (input.conversation_id !== undefined) hits = hits.where('m.conversation_id', '=', input.conversation_id)
        if (input.sender_id !== undefined) hits = hits.where('m.sender_id', '=', input.sender_id)
        if (cursor) hits = hits.where(before(cursor))
        return hits
      },
    )
    .selectFrom('hits as h')
    .innerJoin('participants as p', (j) => j.onRef('p.conversation_id', '=', 'h.conversation_id').on('p.user_id', '=', userId))
    .whereRef('h.seq', '>', 'p.cleared_seq')
    .select(['h.id', 'h.created_at', 'h.conversation_id', 'h.seq'])
    .orderBy('h.created_at', 'desc')
    .orderBy('h.conversation_id', 'desc')
    .orderBy('h.seq', 'desc')
    .limit(input.limit)
}
