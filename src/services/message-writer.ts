import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import type { DB } from '../database.ts'
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
}

interface Pending {
  row: NewMessage & { id: string }
  resolve(message: Message): void
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
 */
export class MessageWriter {
  private queue: Pending[] = []
  private inFlight = 0

  constructor(
    private readonly db: DB,
    private readonly opts: { maxBatch: number; maxInFlight: number },
  ) {}

  insert(row: NewMessage): Promise<Message> {
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
    let rows: { id: string; message: Message }[]
    try {
      rows = await this.insertMany(batch.map((p) => p.row))
    } catch {
      // One bad row (a client_id raced by a retry, a reply target deleted meanwhile, a deadlock) must not fail
      // the others: each is tried on its own and gets its own answer.
      await Promise.all(batch.map((p) => this.writeOne(p)))
      return
    }
    const byId = new Map(rows.map((r) => [r.id, r.message]))
    for (const p of batch) p.resolve(byId.get(p.row.id)!)
  }

  private async writeOne(p: Pending): Promise<void> {
    await this.insertMany([p.row]).then((rows) => p.resolve(rows[0].message), p.reject)
  }

  /**
   * One INSERT for all rows, in conversation order: each row's trigger locks its conversation, and every
   * writer taking those locks in the same order is what keeps two batches from deadlocking.
   */
  private async insertMany(rows: (NewMessage & { id: string })[]): Promise<{ id: string; message: Message }[]> {
    const { rows: inserted } = await sql<{ id: string; message: Message }>`
      INSERT INTO messages (id, conversation_id, sender_id, message_type, content, reply_to_id, client_id, file_id, file_url, file_name, file_size, mime_type)
      SELECT r.id, r.conversation_id, r.sender_id, r.message_type, r.content, r.reply_to_id, r.client_id, r.file_id, r.file_url, r.file_name, r.file_size, r.mime_type
      FROM jsonb_to_recordset(${JSON.stringify(rows.map((r, i) => ({ ...r, i })))}::jsonb) AS r(
        id uuid, conversation_id uuid, sender_id uuid, message_type text, content text, reply_to_id uuid, client_id text,
        file_id uuid, file_url text, file_name text, file_size bigint, mime_type text, i int)
      ORDER BY r.conversation_id, r.i
      RETURNING id, parley_message_json(messages) AS message`.execute(this.db)
    return inserted
  }
}
