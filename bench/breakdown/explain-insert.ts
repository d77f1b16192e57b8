// Part 2 of the breakdown: EXPLAIN (ANALYZE, BUFFERS, WAL) of the writer's INSERT as the service sends it, with
// one row and with a batch of 10, each run 30 times in a rolled-back transaction: the plan, and the median
// execution and trigger times.
import pg from 'pg'
import { INSERT_MESSAGE, INSERT_MESSAGES, parameters } from '../../src/services/message-writer.ts'
import { round } from '../lib.ts'
import type { Plan } from '../systems.ts'
import { say } from './report.ts'

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

export async function explainInsert(appUrl: string, plan: Plan) {
  const db = new pg.Client({ connectionString: appUrl })
  await db.connect()
  // The statement the writer prepares, from its one source (a search of pg_stat_statements for it went stale when
  // the statement's text changed).
  const result: Record<string, unknown> = { statement: INSERT_MESSAGES, statement_one_row: INSERT_MESSAGE }
  try {
    const convs = plan.senders.slice(0, 10).map((s) => s.body.conversation_id)
    const { rows: members } = await db.query<{ conversation_id: string; user_id: string }>(
      'SELECT DISTINCT ON (conversation_id) conversation_id, user_id FROM participants WHERE conversation_id = ANY ($1::uuid[]) ORDER BY conversation_id, user_id',
      [convs],
    )
    const row = (m: { conversation_id: string; user_id: string }, i: number) => ({
      id: crypto.randomUUID(), conversation_id: m.conversation_id, sender_id: m.user_id, message_type: 'text', content: `explain ${i} ${'x'.repeat(20)}`,
      reply_to_id: null, client_id: crypto.randomUUID(), file_id: null, file_url: null, file_name: null, file_size: null, mime_type: null,
      thread_id: null, mention_names: [], forwarded_sender_id: null, forwarded_created_at: null, i,
    })
    say()
    say('### EXPLAIN (ANALYZE, BUFFERS, WAL) of the writer\'s INSERT (INSERT_MESSAGE for one row, INSERT_MESSAGES for a batch, of src/services/message-writer.ts), each in a transaction rolled back')
    for (const k of [1, 10]) {
      const times: number[] = []
      const triggers = new Map<string, number[]>()
      let text = ''
      for (let r = 0; r < 30; r++) {
        const rows = Array.from({ length: k }, (_, i) => row(members[i % members.length], i))
        await db.query('BEGIN')
        // As the writer sends them: one row as parameters (INSERT_MESSAGE), a batch as JSON (INSERT_MESSAGES).
        const { rows: lines } = k === 1
          ? await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS, WAL) ${INSERT_MESSAGE}`, parameters(rows[0]))
          : await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS, WAL) ${INSERT_MESSAGES}`, [JSON.stringify(rows)])
        await db.query('ROLLBACK')
        text = lines.map((l) => l['QUERY PLAN']).join('\n')
        times.push(Number(/Execution Time: ([\d.]+)/.exec(text)?.[1]))
        for (const m of text.matchAll(/Trigger (?:for constraint )?(\S+)( on \S+)?: time=([\d.]+) calls=(\d+)/g)) {
          if (!triggers.has(m[1])) triggers.set(m[1], [])
          triggers.get(m[1])!.push(Number(m[3]))
        }
      }
      say()
      say(`${k} row${k > 1 ? 's' : ''} (${k > 1 ? 'one per conversation, as a batch under load' : 'as unloaded'}): median execution ${round(median(times), 3)} ms over 30 runs; triggers (median total per statement): ${[...triggers].map(([t, xs]) => `${t} ${round(median(xs), 3)} ms`).join(', ')}. The last run's plan:`)
      say()
      say('```')
      say(text)
      say('```')
      result[`rows_${k}`] = { median_ms: median(times), triggers: Object.fromEntries([...triggers].map(([t, xs]) => [t, median(xs)])), plan: text }
    }
  } finally {
    await db.end()
  }
  return result
}
