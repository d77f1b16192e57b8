// The history phase of `npm run bench` (issue 14, "Speed"): `GET /conversations/{id}/messages?limit=100` in a
// conversation of HISTORY_MESSAGES messages, each with 10 reactions and every tenth a reply (its quote read with
// it), against one Parley instance doing nothing else. A page is one query; this measures what it costs.
import pg from 'pg'
import { authedGet, mintToken, percentile, round } from './lib.ts'
import { startParley } from './systems.ts'

export interface HistoryOptions {
  logDir: string
  /** Messages in the conversation. */
  messages: number
  /** Pages read, one after another, each at a random point of the history. */
  pages: number
  log: (line: string) => void
}

const REACTIONS_PER_MESSAGE = 10

export async function historyPhase(databaseUrl: string, opts: HistoryOptions) {
  const sys = await startParley(databaseUrl, 1, { logDir: opts.logDir })
  try {
    const plan = await sys.seed(1, REACTIONS_PER_MESSAGE)
    const conversationId = plan.senders[0].body.conversation_id as string
    const db = new pg.Client({ connectionString: databaseUrl })
    db.on('error', () => {}) // a failure is thrown by the query; the bench then stops the database under this client
    await db.connect()
    const seeded = performance.now()
    const { members, reader, session } = await seedHistory(db, conversationId, opts.messages)
    opts.log(`history: ${opts.messages} messages with ${REACTIONS_PER_MESSAGE} reactions each in ${((performance.now() - seeded) / 1000).toFixed(0)} s (${members} members)`)
    const { rows } = await db.query<{ id: string }>(
      `SELECT id FROM messages WHERE conversation_id = $1 AND seq % 997 = 0 ORDER BY seq`, [conversationId])
    await db.end()
    const token = mintToken(reader, session)
    const { get, close } = authedGet(sys.bases[0], token)
    // The newest page, then pages before random messages: what scrolling back does.
    const times: number[] = []
    for (let i = 0; i < opts.pages + 20; i++) {
      const before = i === 0 ? '' : `&before=${rows[Math.floor(Math.random() * rows.length)].id}`
      const t0 = performance.now()
      const res = await get(`/conversations/${conversationId}/messages?limit=100${before}`)
      const ms = performance.now() - t0
      if (res.status !== 200) throw new Error(`history page: ${res.status} ${res.body.slice(0, 200)}`)
      const page = JSON.parse(res.body) as { reactions: unknown[] }[]
      if (page.length !== 100 || page.some((m) => m.reactions.length === 0)) throw new Error('history page: not 100 messages with reactions')
      if (i >= 20) times.push(ms) // the first twenty warm the instance
    }
    close()
    times.sort((a, b) => a - b)
    const result = { messages: opts.messages, reactions_per_message: REACTIONS_PER_MESSAGE, pages: times.length, p50_ms: round(percentile(times, 50), 2), p95_ms: round(percentile(times, 95), 2) }
    opts.log(`history: a page of 100 messages, p50 ${result.p50_ms} ms, p95 ${result.p95_ms} ms over ${result.pages} pages`)
    return result
  } finally {
    await sys.stop()
  }
}

/**
 * Set-based, as bench/search.ts seeds: the messages go in with their seqs taken in one step and the triggers of
 * `messages` off but the one that keeps each row's Message text (a send's event and notification are not what a
 * page reads, and 100,000 of them took a third of the phase), each with the reaction summary the reaction trigger keeps on it: 10 members' one reaction each. A page
 * reads that summary, never the `reactions` table, so the table is left empty (a million rows into it took as
 * long as the messages). Every tenth message quotes the one five before it.
 */
async function seedHistory(db: pg.Client, conversationId: string, n: number) {
  const { rows: people } = await db.query<{ user_id: string }>(`SELECT user_id FROM participants WHERE conversation_id = $1 ORDER BY user_id`, [conversationId])
  const ids = people.map((p) => p.user_id)
  await db.query('BEGIN')
  await db.query('ALTER TABLE messages DISABLE TRIGGER USER')
  await db.query('ALTER TABLE messages ENABLE TRIGGER messages_render') // the Message's text, which a page reads
  await db.query(
    `WITH c AS (UPDATE conversations SET last_seq = last_seq + $3 WHERE id = $1 RETURNING last_seq - $3 AS base)
     INSERT INTO messages (conversation_id, sender_id, seq, message_type, content, reactions, created_at, updated_at)
     SELECT $1, ($2::uuid[])[1 + i % cardinality($2::uuid[])], c.base + i, 'text', 'history message ' || i || ' with a few words in it',
       (SELECT jsonb_agg(jsonb_build_object('emoji', (ARRAY['👍','❤️','😂','🎉','🔥','👀','✅','🙏','😮','💯'])[1 + (k + c.base + i) % 10],
                                            'count', 1, 'user_ids', jsonb_build_array(u)) ORDER BY k)
        FROM unnest($4::uuid[]) WITH ORDINALITY AS x(u, k)),
       t.at, t.at
     FROM c, generate_series(1, $3::int) i, LATERAL (SELECT now() - make_interval(secs => $3 - i) AS at) t`,
    [conversationId, ids, n, ids.slice(0, REACTIONS_PER_MESSAGE)],
  )
  await db.query(
    `UPDATE messages m SET reply_to_id = t.id FROM messages t
     WHERE m.conversation_id = $1 AND t.conversation_id = $1 AND m.seq % 10 = 0 AND t.seq = m.seq - 5`, [conversationId])
  await db.query('ALTER TABLE messages ENABLE TRIGGER USER')
  await db.query('COMMIT')
  await db.query('ANALYZE messages')
  const { rows: [session] } = await db.query<{ id: string }>(`SELECT id FROM sessions WHERE user_id = $1 AND ended_at IS NULL LIMIT 1`, [ids[0]])
  return { members: ids.length, reader: ids[0], session: session.id }
}
