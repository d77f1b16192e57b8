import { randomUUID } from 'node:crypto'
import type pg from 'pg'
import { type DB, poolOf, queryPrepared } from '../database.ts'
import type { Message } from '../schemas/messages.ts'

export interface NewMessage {
  conversation_id: string
  sender_id: string
  message_type: string
  content: string | null
  reply_to_id: string | null
  client_id: string | null
  file_id: string | null
  file_url: string | null
  file_name: string | null
  file_size: number | null
  mime_type: string | null
  /** An image's preview and size; left out (not null) otherwise, so a text message's parameter is what it was. */
  thumbnail_url?: string
  width?: number
  height?: number
  /** A message of the conversation whose thread this is a reply in (its root, or another reply of it). */
  thread_id: string | null
  /** Usernames written as @name in the content, lower-cased: those of current members become `mentions`. */
  mention_names: string[]
  /** A forwarded copy: whose message it was, and when that was sent. */
  forwarded_sender_id: string | null
  forwarded_created_at: string | null
}

/** A row's outcome: written (`created`), or an earlier message of the same sender and client_id; undefined: refused. */
export type Written = { message: Message; created: boolean } | undefined

interface Pending {
  row: NewMessage & { id: string }
  resolve(result: Written): void
  reject(err: unknown): void
}

/**
 * Inserts new messages, several to a transaction when they arrive faster than they commit.
 *
 * Why: a transaction that NOTIFYs (every message's does, from its trigger) takes one database-wide lock at
 * commit and holds it through the WAL flush, so notifying commits run one at a time whatever the hardware
 * (docs/SCALING.md has the measurements). Rows that queue while `maxInFlight` inserts are running go into
 * the next insert together: one commit, one lock, one flush for all of them. Unloaded, a message is
 * inserted at once, as before. Each row still fires its own triggers, takes its own seq and is logged and
 * notified on its own; nothing a client sees changes.
 *
 * The send's rules ride in the same statement, so a send is one round trip: a row is written only if its
 * sender is a member of its conversation (of a direct one, with no block between the pair) and its reply target
 * is a message of that conversation, and not if
 * the sender already sent that client_id (then the earlier message is the answer). A refused row answers
 * undefined, and the caller finds out why (off the hot path).
 */
export class MessageWriter {
  private queue: Pending[] = []
  private inFlight = 0

  private readonly pool: pg.Pool

  constructor(
    db: DB,
    private readonly opts: { maxBatch: number; maxInFlight: number },
  ) {
    const pool = poolOf(db)
    if (!pool) throw new Error('MessageWriter needs a database made by createDatabase (it prepares its statement on the pool)')
    this.pool = pool
  }

  insert(row: NewMessage): Promise<Written> {
    return new Promise((resolve, reject) => {
      this.queue.push({ row: { ...row, id: randomUUID() }, resolve, reject })
      this.drain()
    })
  }

  private drain(): void {
    while (this.inFlight < this.opts.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.opts.maxBatch)
      this.inFlight++
      this.write(batch).finally(() => {
        this.inFlight--
        this.drain()
      })
    }
  }

  private async write(batch: Pending[]): Promise<void> {
    if (batch.length === 1) return this.writeOne(batch[0])
    let rows: Outcome[]
    try {
      rows = await this.insertMany(batch.map((p) => p.row))
    } catch {
      // One bad row (a client_id raced by a concurrent retry, a deadlock) must not fail the others: each is
      // tried on its own and gets its own answer.
      await Promise.all(batch.map((p) => this.writeOne(p)))
      return
    }
    const byId = new Map(rows.map((r) => [r.id, r]))
    for (const p of batch) p.resolve(written(byId.get(p.row.id)))
  }

  private async writeOne(p: Pending): Promise<void> {
    await queryPrepared<Outcome>(this.pool, { name: 'parley-insert-message', text: INSERT_MESSAGE, values: parameters(p.row) })
      .then(({ rows }) => p.resolve(written(rows[0])), p.reject)
  }

  /**
   * One INSERT for all rows, in conversation order: each row's trigger locks its conversation, and every
   * writer taking those locks in the same order is what keeps two batches from deadlocking. The rules are
   * conditions of the INSERT's SELECT rather than ON CONFLICT: the BEFORE trigger takes a seq before a conflict
   * would be found, and a row skipped after that would leave a gap in the log. A duplicate committed by a
   * concurrent retry after this statement's snapshot still fails on the unique index, as before.
   */
  private async insertMany(rows: (NewMessage & { id: string })[]): Promise<Outcome[]> {
    const values = [JSON.stringify(rows.map((r, i) => ({ ...r, i })))]
    // Prepared once per connection (a named statement): planned anew each time, it cost more to plan than to run.
    return (await queryPrepared<Outcome>(this.pool, { name: 'parley-insert-messages', text: INSERT_MESSAGES, values })).rows
  }
}

/** A row's fields as the statements read them, with their types: from the batch's JSON, or as parameters $1…$19. */
const FIELDS = [
  ['id', 'uuid'], ['conversation_id', 'uuid'], ['sender_id', 'uuid'], ['message_type', 'text'], ['content', 'text'], ['reply_to_id', 'uuid'],
  ['client_id', 'text'], ['file_id', 'uuid'], ['file_url', 'text'], ['file_name', 'text'], ['file_size', 'bigint'], ['mime_type', 'text'],
  ['thumbnail_url', 'text'], ['width', 'int'], ['height', 'int'], ['thread_id', 'uuid'], ['mention_names', 'text[]'],
  ['forwarded_sender_id', 'uuid'], ['forwarded_created_at', 'timestamptz'],
] as const satisfies ReadonlyArray<readonly [keyof NewMessage | 'id', string]>

/** One send's parameters for INSERT_MESSAGE, in FIELDS' order. */
export const parameters = (row: NewMessage & { id: string }): unknown[] => FIELDS.map(([name]) => row[name] ?? null)

/**
 * The send statement around a source of rows `x` (its fields, and `i`, the row's place in the batch) and an answer
 * read from the CTEs `r` (every row), `earlier` (rows whose client_id was sent before) and `ins` (rows written).
 * Two sources, one set of rules: a batch's rows from JSON, a single row from parameters, which spares PostgreSQL
 * the JSON, the joins of the answer and their hash tables (0.05–0.10 ms a send on a slow box; docs/SCALING.md).
 */
const sendStatement = (source: string, answer: string) => `
      WITH r AS (
        -- A thread is named by its root or by any reply in it; the row goes into the root's thread (probed by key).
        SELECT x.*, CASE WHEN x.thread_id IS NULL THEN NULL ELSE (SELECT coalesce(m.thread_id, m.id) FROM messages m
            WHERE m.id = x.thread_id AND m.conversation_id = x.conversation_id) END AS thread_root
        FROM ${source}
      ),
      earlier AS (
        -- Probed per row through messages_client_id (a partial index: its predicate is spelled out for the plan).
        SELECT r.id, e.message FROM r CROSS JOIN LATERAL (
          SELECT parley_message_json(m) AS message FROM messages m
          WHERE m.sender_id = r.sender_id AND m.client_id = r.client_id AND m.client_id IS NOT NULL LIMIT 1) e
        WHERE r.client_id IS NOT NULL
      ),
      ins AS (
        INSERT INTO messages (id, conversation_id, sender_id, message_type, content, reply_to_id, client_id, file_id, file_url, file_name, file_size, mime_type,
          thumbnail_url, width, height, thread_id, mentions, forwarded_sender_id, forwarded_created_at)
        SELECT r.id, r.conversation_id, r.sender_id, r.message_type, r.content, r.reply_to_id, r.client_id, r.file_id, r.file_url, r.file_name, r.file_size, r.mime_type,
          r.thumbnail_url, r.width, r.height, r.thread_root, CASE WHEN cardinality(r.mention_names) > 0 THEN parley_members_named(r.conversation_id, r.mention_names) ELSE '{}' END,
          r.forwarded_sender_id, r.forwarded_created_at
        FROM r
        WHERE NOT EXISTS (SELECT 1 FROM earlier e WHERE e.id = r.id)
          AND (r.thread_id IS NULL OR r.thread_root IS NOT NULL)
          -- Scalar subqueries, probed per row by primary key. As EXISTS (or as a LATERAL join, which the planner
          -- pulls up) they became hash joins on a scan of participants or of every message: costs that grew
          -- with the tables.
          -- In a direct conversation, no block either way between the pair: two probes of blocks by key, made
          -- only there (CASE evaluates its branch only when taken; a group's membership row has no peer).
          AND (SELECT CASE WHEN p.peer_id IS NULL THEN true ELSE
                NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = r.sender_id AND b.blocked_id = p.peer_id)
                AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = p.peer_id AND b.blocked_id = r.sender_id) END
              FROM participants p WHERE p.conversation_id = r.conversation_id AND p.user_id = r.sender_id)
          AND (r.reply_to_id IS NULL OR (SELECT t.conversation_id = r.conversation_id FROM messages t WHERE t.id = r.reply_to_id))
        ORDER BY r.conversation_id, r.i
        RETURNING id, parley_message_json(messages) AS message
      )
      ${answer}`

/** A batch: the rows as one JSON array ($1), every row answered (a refused one with a null message). */
export const INSERT_MESSAGES = sendStatement(
  `jsonb_to_recordset($1::jsonb) AS x(${FIELDS.map(([name, type]) => `${name} ${type}`).join(', ')}, i int)`,
  `SELECT r.id, coalesce(ins.message, earlier.message) AS message, ins.id IS NOT NULL AS created
      FROM r LEFT JOIN ins USING (id) LEFT JOIN earlier USING (id)`,
)

/** One row, as parameters (FIELDS' order): answered by one row, or by none if refused. */
export const INSERT_MESSAGE = sendStatement(
  `(SELECT ${FIELDS.map(([name, type], k) => `$${k + 1}::${type} AS ${name}`).join(', ')}, 0 AS i) AS x`,
  `SELECT id, message, true AS created FROM ins UNION ALL SELECT id, message, false FROM earlier`,
)

interface Outcome {
  id: string
  message: Message | null
  created: boolean
}

const written = (o: Outcome | undefined): Written => (o?.message ? { message: o.message, created: o.created } : undefined)
