import { Readable } from 'node:stream'
import type { DB } from '../../database.ts'
import { notFound } from '../../errors.ts'
import type { ByteRange, FileStorage, Trx } from './index.ts'

/** Bytes per row: big enough that a 25 MiB file is 100 inserts, small enough that a row is cheap to hold. */
export const CHUNK_BYTES = 256 * 1024

/** `source` cut into pieces of exactly `size` bytes (the last one shorter), holding at most about two. */
export async function* rechunk(source: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = []
  let held = 0
  for await (const piece of source) {
    parts.push(piece)
    held += piece.length
    if (held < size) continue
    let all = Buffer.concat(parts, held)
    while (all.length >= size) {
      yield all.subarray(0, size)
      all = all.subarray(size)
    }
    parts = all.length ? [all] : []
    held = all.length
  }
  if (held) yield Buffer.concat(parts, held)
}

/**
 * The default storage: files in the database every instance already shares, as CHUNK_BYTES rows of
 * `file_chunks`. An upload writes its chunks as they stream in and its files row last, in one transaction:
 * a failure or a crash (PostgreSQL rolls back a transaction whose connection is gone) leaves nothing, with
 * no sweep. That transaction holds a pool connection for as long as the client takes to send the file, so
 * FilesService bounds uploads at once per instance (UPLOAD_MAX_CONCURRENT) and cuts each off after
 * UPLOAD_TIMEOUT_MS. Reads fetch one chunk per query, as the client takes them, and only the chunks a range
 * covers.
 */
export class PostgresStorage implements FileStorage {
  constructor(private readonly db: DB) {}

  store<T>(key: string, body: AsyncIterable<Buffer>, commit: (trx: Trx) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      let n = 0
      for await (const data of rechunk(body, CHUNK_BYTES)) {
        await trx.insertInto('file_chunks').values({ storage_name: key, n: n++, data }).execute()
      }
      return commit(trx)
    })
  }

  /** The chunks go with the row (ON DELETE CASCADE), in its transaction. */
  async remove(deleteRows: (trx: Trx) => Promise<string[]>): Promise<void> {
    await this.db.transaction().execute(deleteRows)
  }

  async open(key: string, size: number, range: ByteRange = { start: 0, end: size - 1 }): Promise<Readable> {
    const first = Math.floor(range.start / CHUNK_BYTES)
    const last = Math.floor(range.end / CHUNK_BYTES)
    const chunk = async (n: number) => {
      const row = await this.db.selectFrom('file_chunks').select('data').where('storage_name', '=', key).where('n', '=', n).executeTakeFirst()
      // Gone mid-way: the file was deleted while it was being read.
      if (!row) throw notFound('file')
      return row.data
    }
    // The first chunk before anything is sent, so that missing bytes are a 404 rather than a cut response.
    const head = await chunk(first)
    async function* chunks() {
      for (let n = first; n <= last; n++) {
        const data = n === first ? head : await chunk(n)
        const from = n === first ? range.start - n * CHUNK_BYTES : 0
        const to = n === last ? range.end - n * CHUNK_BYTES + 1 : data.length
        yield data.subarray(from, to)
      }
    }
    // Bytes, not objects: the stream reads one chunk ahead of the socket, not sixteen.
    return Readable.from(chunks(), { objectMode: false, highWaterMark: CHUNK_BYTES })
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {}
}
