import { sql } from 'kysely'
import type { DB } from '../database.ts'
import { notFound } from '../errors.ts'
import type { SearchHit } from '../schemas/search.ts'
import type { ConversationsService } from './conversations.ts'
import { messageJson, type MessagesService } from './messages.ts'
import { CONFIG, pageQuery, type SearchInput, shapeFor, tsquery } from './search-query.ts'

export type { SearchInput } from './search-query.ts'

// ts_headline wraps matches in OPEN and CLOSE and escapes nothing; it also drops whatever its parser takes for an
// HTML tag (`<script>`), which in a chat message is text. So before it runs, the content's own OPEN and CLOSE are
// taken out and `<` `>` become LT and GT (private-use characters all four, which the parser treats as spaces);
// markHighlight then escapes the passage and turns the four into <mark>, </mark>, &lt; and &gt;.
const OPEN = '\uE000'
const CLOSE = '\uE001'
const LT = '\uE002'
const GT = '\uE003'
const HEADLINE_OPTIONS = `StartSel=${OPEN}, StopSel=${CLOSE}, MaxWords=35, MinWords=15`

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** The passage as HTML: every character escaped, then the sentinels made <mark> and </mark>, and the brackets put back. */
export function markHighlight(passage: string): string {
  return passage
    .replace(/[&<>"']/g, (c) => ESCAPES[c])
    .replaceAll(OPEN, '<mark>')
    .replaceAll(CLOSE, '</mark>')
    .replaceAll(LT, '&lt;')
    .replaceAll(GT, '&gt;')
}

/**
 * Message search: only what the caller could read in the conversation's history (a current member, after their
 * cleared point, not deleted, not a system notice), newest first by (created_at, conversation_id, seq): messages of the same millisecond in
 * one conversation keep their order. The cursor is a message the caller can see, and stands for its place in that order.
 */
export class SearchService {
  constructor(
    private readonly db: DB,
    private readonly conversations: ConversationsService,
    private readonly history: MessagesService,
  ) {}

  async messages(userId: string, input: SearchInput): Promise<{ results: SearchHit[]; next_before: string | null }> {
    if (input.conversation_id !== undefined) await this.conversations.membership(input.conversation_id, userId)
    const cursor = input.before === undefined ? undefined : (await this.history.visible(input.before, userId)).message
    // As in a history page, a cursor from another conversation than the one searched is not found.
    if (cursor && input.conversation_id !== undefined && cursor.conversation_id !== input.conversation_id) throw notFound('message')
    const query = tsquery(input.q)
    const page = pageQuery(this.db, userId, input, await shapeFor(this.db, userId, input), cursor)
    // The JSON and the headline (the costly part) only for the page, once it is chosen.
    const rows = await this.db
      .selectFrom(page.as('page'))
      .innerJoin('messages as m', 'm.id', 'page.id')
      .select([
        'm.id',
        messageJson,
        sql<string>`ts_headline(${CONFIG}, translate(m.content, ${'<>' + OPEN + CLOSE + LT + GT}, ${LT + GT}), ${query}, ${HEADLINE_OPTIONS})`.as('passage'),
      ])
      .orderBy('page.created_at', 'desc')
      .orderBy('page.conversation_id', 'desc')
      .orderBy('page.seq', 'desc')
      .execute()
    return {
      results: rows.map((r) => ({ message: r.message, highlight: markHighlight(r.passage) })),
      next_before: rows.length === input.limit ? rows[rows.length - 1].id : null,
    }
  }
}
