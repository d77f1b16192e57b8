import { Readable } from 'node:stream'
import { type ControlledTransaction, sql } from 'kysely'
import type { Database } from '../../db/types.ts'
import type { DB } from '../database.ts'
import { AppError, notFound } from '../errors.ts'
import { toUser } from './users.ts'

type Trx = ControlledTransaction<Database>

export interface ExportOptions {
  /** Exports running at once on this instance: each holds a pool connection while its client reads. */
  maxConcurrent: number
  /** The longest an export may take, reader included, before it is cut off (and its snapshot let go). */
  timeoutMs: number
}

export interface Archive {
  username: string
  exportedAt: Date
  /** The archive's JSON, produced as the client reads it. */
  body: Readable
}

// Rows fetched per round trip of the cursor, and bytes gathered before a write: small enough to keep the
// memory of an export flat, large enough that 100,000 messages are not 100,000 writes.
const ROWS_PER_FETCH = 500
const CHUNK_CHARS = 64 * 1024

export const exportBusy = () => new AppError(503, 'EXPORT_BUSY', 'Too many exports are running; retry in a minute')

/**
 * The caller's data as one JSON document, read through server-side cursors from one REPEATABLE READ, READ
 * ONLY transaction (so every section comes from the same moment) and written only as fast as the client
 * reads it: `Readable.from` asks the generator for the next chunk only when the socket has drained.
 *
 * What is in it, and why:
 * - profile: the caller's own profile (Me), email included (what GET /users/me gives);
 * - conversations the caller is a member of now, with the members' public names only;
 * - every message the caller sent in those conversations, through parley_message_json like any REST answer:
 *   deleted ones in their deleted form (the row is what we keep: that something was sent, and when), and
 *   those before the caller's cleared point too (clearing hides history from the caller's own pages; the
 *   rows stay, visible to the others, so they are still data we hold about the caller). Messages in
 *   conversations the caller left or was removed from are not included: they are no longer theirs to read;
 * - the reactions the caller gave, in those conversations, on messages not deleted (a message's own
 *   `reactions` says who else reacted to what they sent);
 * - files the caller uploaded that are still stored: metadata only, never the bytes.
 */
export class ExportService {
  private running = 0

  constructor(
    private readonly db: DB,
    private readonly opts: ExportOptions,
  ) {}

  /** Takes the snapshot and reads the profile; the rest is read as `body` is consumed. */
  async open(userId: string): Promise<Archive> {
    if (this.running >= this.opts.maxConcurrent) throw exportBusy()
    this.running++
    let trx: Trx | undefined
    let released = false
    const release = async () => {
      if (released) return
      released = true
      this.running--
      await trx?.rollback().execute().catch(() => {})
    }
    try {
      trx = await this.db.startTransaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute()
      const user = await trx.selectFrom('users').selectAll().where('id', '=', userId).where('deleted_at', 'is', null).executeTakeFirst()
      if (!user) throw notFound('user')
      const exportedAt = new Date()
      const body = Readable.from(archive(trx, user, exportedAt, release), { objectMode: false })
      // A client that stops reading must not hold a connection and a snapshot for ever.
      const deadline = setTimeout(() => body.destroy(new Error('export timed out')), this.opts.timeoutMs)
      // Whichever way the body ends (read to the end, the client gone, the deadline), including before the
      // generator ever ran (then its own `finally` never does), the transaction ends and the slot is freed.
      body.once('close', () => {
        clearTimeout(deadline)
        void release()
      })
      return { username: user.username, exportedAt, body }
    } catch (err) {
      await release()
      throw err
    }
  }
}

async function* archive(trx: Trx, user: Parameters<typeof toUser>[0], exportedAt: Date, release: () => Promise<void>): AsyncGenerator<string> {
  try {
    yield `{"exported_at":${JSON.stringify(exportedAt.toISOString())},"profile":${JSON.stringify(toUser(user))}`
    yield* section('conversations', conversations(trx, user.id))
    yield* section('messages', messages(trx, user.id))
    yield* section('reactions', reactions(trx, user.id))
    yield* section('files', files(trx, user.id))
    yield '}\n'
  } finally {
    await release()
  }
}

/** `,"name":[row,row,...]`, in chunks of about CHUNK_CHARS. Each row is JSON text made by PostgreSQL. */
async function* section(name: string, rows: AsyncIterable<{ json: string }>): AsyncGenerator<string> {
  let chunk = `,"${name}":[`
  let first = true
  for await (const { json } of rows) {
    chunk += first ? json : `,${json}`
    first = false
    if (chunk.length >= CHUNK_CHARS) {
      yield chunk
      chunk = ''
    }
  }
  yield `${chunk}]`
}

// Each query answers jsonb cast to text: PostgreSQL's JSON goes out as it comes in, never parsed here.

const conversations = (trx: Trx, userId: string) =>
  trx
    .selectFrom('participants as p')
    .innerJoin('conversations as c', 'c.id', 'p.conversation_id')
    .select(
      sql<string>`jsonb_build_object(
        'id', c.id, 'is_group', c.is_group, 'name', c.name, 'created_by', c.created_by, 'created_at', parley_iso(c.created_at),
        'role', p.role, 'joined_at', parley_iso(p.joined_at),
        'participants', (
          SELECT jsonb_agg(jsonb_build_object('id', u.id, 'username', u.username, 'display_name', u.display_name) ORDER BY o.joined_at, u.id)
          FROM participants o JOIN users u ON u.id = o.user_id WHERE o.conversation_id = c.id))::text`.as('json'),
    )
    .where('p.user_id', '=', userId)
    .orderBy('p.joined_at')
    .orderBy('c.id')
    .stream(ROWS_PER_FETCH)

const messages = (trx: Trx, userId: string) =>
  trx
    .selectFrom('participants as p')
    .innerJoin('messages as m', 'm.conversation_id', 'p.conversation_id')
    .select(sql<string>`parley_message_text(m)`.as('json'))
    .where('p.user_id', '=', userId)
    .where('m.sender_id', '=', userId)
    .orderBy('m.conversation_id')
    .orderBy('m.seq')
    .stream(ROWS_PER_FETCH)

const reactions = (trx: Trx, userId: string) =>
  trx
    .selectFrom('reactions as r')
    .innerJoin('messages as m', 'm.id', 'r.message_id')
    .innerJoin('participants as p', (j) => j.onRef('p.conversation_id', '=', 'm.conversation_id').on('p.user_id', '=', userId))
    .select(
      sql<string>`jsonb_build_object('message_id', r.message_id, 'conversation_id', m.conversation_id, 'emoji', r.emoji,
        'created_at', parley_iso(r.created_at))::text`.as('json'),
    )
    .where('r.user_id', '=', userId)
    .orderBy('r.created_at')
    .orderBy('r.message_id')
    .stream(ROWS_PER_FETCH)

const files = (trx: Trx, userId: string) =>
  trx
    .selectFrom('files as f')
    .select(
      sql<string>`jsonb_build_object('id', f.id, 'name', f.original_name, 'mime_type', f.mime_type, 'size', f.size,
        'purpose', f.purpose, 'created_at', parley_iso(f.created_at))::text`.as('json'),
    )
    .where('f.uploaded_by', '=', userId)
    // Previews are the server's, made from an upload listed here.
    .where('f.purpose', '<>', 'preview')
    .orderBy('f.created_at')
    .orderBy('f.id')
    .stream(ROWS_PER_FETCH)
