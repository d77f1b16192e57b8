import { Readable } from 'node:stream'
import { DeleteObjectCommand, GetObjectCommand, NoSuchKey, S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { sql } from 'kysely'
import type { DB } from '../../database.ts'
import { notFound } from '../../errors.ts'
import type { ByteRange, FileStorage, Trx } from './index.ts'

export interface S3Options {
  bucket: string
  region: string
  endpoint?: string
  forcePathStyle: boolean
  /** Unset: the SDK's own chain (environment, shared files, an instance or task role). */
  credentials?: { accessKeyId: string; secretAccessKey: string }
  /** How long an upload may take (FilesService cuts it off then): its pending mark expires after that. */
  uploadTimeoutMs: number
  /** How often expired pending marks are swept. */
  sweepIntervalMs: number
}

// S3's smallest multipart part. lib-storage holds a part in memory while it goes out, and one more as it fills.
const PART_BYTES = 5 * 1024 * 1024

/**
 * Files as objects in an S3-compatible bucket, for deployments whose files outgrow their database. An object
 * exists only once its upload completes (a multipart upload cut short is not one), but it comes before its
 * files row, and it goes after: each is marked in `file_objects_pending` first, and the mark is removed
 * with the row's write (or after the object's deletion). A mark that outlives its expiry means an instance
 * died in between: the sweep, on every instance, deletes its object.
 */
export class S3Storage implements FileStorage {
  private readonly client: S3Client
  private timer: NodeJS.Timeout | undefined
  private sweeping: Promise<void> | undefined

  constructor(
    private readonly db: DB,
    private readonly opts: S3Options,
  ) {
    this.client = new S3Client({
      region: opts.region,
      endpoint: opts.endpoint,
      forcePathStyle: opts.forcePathStyle,
      credentials: opts.credentials,
      // Checksums only where S3 requires them: the SDK's default streams uploads with trailing checksums
      // (aws-chunked), which many S3-compatible servers refuse. TLS already guards the bytes in transit.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    })
  }

  async store<T>(key: string, body: AsyncIterable<Buffer>, commit: (trx: Trx) => Promise<T>): Promise<T> {
    await this.mark(this.db, key, this.opts.uploadTimeoutMs + 60_000)
    try {
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.opts.bucket, Key: key, Body: Readable.from(body) },
        partSize: PART_BYTES,
        queueSize: 1,
      })
      await upload.done()
      return await this.db.transaction().execute(async (trx) => {
        const result = await commit(trx)
        await trx.deleteFrom('file_objects_pending').where('storage_name', '=', key).execute()
        return result
      })
    } catch (err) {
      await this.discard(key).catch(() => {})
      throw err
    }
  }

  async remove(deleteRows: (trx: Trx) => Promise<string[]>): Promise<void> {
    const keys = await this.db.transaction().execute(async (trx) => {
      const keys = await deleteRows(trx)
      for (const key of keys) await this.mark(trx, key, 0)
      return keys
    })
    for (const key of keys) await this.discard(key)
  }

  async open(key: string, size: number, range?: ByteRange): Promise<Readable> {
    try {
      const { Body } = await this.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key: key, Range: range && `bytes=${range.start}-${range.end}` }))
      return Body as Readable
    } catch (err) {
      if (err instanceof NoSuchKey) throw notFound('file')
      throw err
    }
  }

  /** Sweeps now, then every sweepIntervalMs. */
  async start(): Promise<void> {
    await this.sweep()
    this.timer = setInterval(() => void this.sweep().catch(() => {}), this.opts.sweepIntervalMs).unref()
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    await this.sweeping
    this.client.destroy()
  }

  /** Deletes the objects of expired marks, and the marks; several instances at once share them out. */
  sweep(): Promise<void> {
    this.sweeping ??= (async () => {
      try {
        for (;;) {
          const done = await this.db.transaction().execute(async (trx) => {
            const rows = await trx.selectFrom('file_objects_pending').select('storage_name').where('expires_at', '<', sql<Date>`now()`).limit(100).forUpdate().skipLocked().execute()
            for (const { storage_name } of rows) await this.deleteObject(storage_name)
            if (rows.length) await trx.deleteFrom('file_objects_pending').where('storage_name', 'in', rows.map((r) => r.storage_name)).execute()
            return rows.length < 100
          })
          if (done) return
        }
      } finally {
        this.sweeping = undefined
      }
    })()
    return this.sweeping
  }

  private async mark(db: DB | Trx, key: string, expiresInMs: number): Promise<void> {
    await db.insertInto('file_objects_pending').values({ storage_name: key, expires_at: sql<Date>`now() + make_interval(secs => ${expiresInMs / 1000})` })
      .onConflict((oc) => oc.column('storage_name').doUpdateSet({ expires_at: (eb) => eb.ref('excluded.expires_at') }))
      .execute()
  }

  /** The object (if any) and its mark. */
  private async discard(key: string): Promise<void> {
    await this.deleteObject(key)
    await this.db.deleteFrom('file_objects_pending').where('storage_name', '=', key).execute()
  }

  private async deleteObject(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: key }))
  }
}
