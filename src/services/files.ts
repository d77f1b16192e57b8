import { randomUUID } from 'node:crypto'
import path from 'node:path'
import { Readable } from 'node:stream'
import type { MultipartFile } from '@fastify/multipart'
import { sql } from 'kysely'
import type { FilesTable, NewFile } from '../../db/types.ts'
import type { DB } from '../database.ts'
import { AppError, badRequest, notFound } from '../errors.ts'
import { normalizeName } from '../text.ts'
import type { ByteRange, FileStorage, Trx } from './file-storage/index.ts'
import type { FileUrls } from './file-urls.ts'
import { type Images, type Preview, PREVIEW_TYPE } from './images.ts'
import { asAvatar, inspectUpload, withPreview } from './upload-body.ts'

/** Images a browser may show inline and we accept as avatars. */
export const AVATAR_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp'])

/** Where a file is served; avatar_url and file_url hold this. */
export const fileUrl = (fileId: string) => `/files/${fileId}`
export const fileIdOf = (url: string | null | undefined) => url?.match(/^\/files\/([0-9a-f-]{36})$/)?.[1]
/** Where an image's preview is served: thumbnail_url. */
export const thumbnailUrl = (fileId: string) => `/files/${fileId}/thumbnail`

export interface StoredFile {
  id: string
  storageName: string
  mime: string
  size: number
  originalName: string
  kind: 'image' | 'video' | 'file'
  /** An image with a preview: the image's size, as shown. */
  preview?: { width: number; height: number }
}

export interface FilesOptions {
  storage: FileStorage
  /** Bytes a user may keep stored, all their files together. */
  quotaBytes: number
  /** Bytes all files together may take; beyond, uploads stop with 507. Unset: no cap. */
  storageMaxBytes?: number
  /** Uploads streaming at once on this instance (each may hold a pool connection), and how long each may take. */
  maxConcurrent: number
  timeoutMs: number
  urls: FileUrls
  images: Images
}

export interface Upload {
  purpose: FilesTable['purpose']
  maxBytes: number
  /** The request's Content-Length: a bound on the file's size, known before a byte is read. */
  requestBytes?: number
  accept?: Set<string>
}

// What a multipart body may carry besides the file (boundaries, the part's headers: at most 80 KiB with
// busboy's defaults). A body longer than the file could be by more than this is refused before it is read.
const MULTIPART_SLACK = 128 * 1024

const tooLarge = (max: number) => new AppError(413, 'PAYLOAD_TOO_LARGE', `The file is larger than ${max} bytes`)
const quotaExceeded = (used: number, quota: number, size?: number) =>
  new AppError(413, 'QUOTA_EXCEEDED', 'Your storage is full: delete some files to upload more', [
    `${used} of ${quota} bytes in use`,
    ...(size === undefined ? [] : [`this file is ${size} bytes`]),
  ])
const lowOnStorage = () => new AppError(507, 'INSUFFICIENT_STORAGE', 'The server is low on storage; try again later')

/** The client's file name, kept only for display and downloads: no path, no controls, no bidi tricks. */
function cleanName(name: string | undefined): string {
  const base = path.basename(normalizeName(String(name ?? '')).replace(/\\/g, '/'))
  const clean = base.replace(/"/g, '').trim()
  return [...clean].slice(0, 255).join('') || 'file'
}

const FOREIGN_KEY_VIOLATION = '23503'

export class FilesService {
  readonly urls: FileUrls
  private readonly storage: FileStorage
  private streaming = 0

  constructor(
    private readonly db: DB,
    private readonly opts: FilesOptions,
  ) {
    this.storage = opts.storage
    this.urls = opts.urls
  }

  /**
   * Streams an upload into the storage under a generated name, sniffing what it really is from its first
   * bytes (the client's Content-Type and file name are never trusted). The quota, the storage's cap and the
   * instance's upload slots are checked before a byte is read (`nextPart` is asked for the file only then,
   * with the most it may hold), and the quota again when the row is written. Whatever goes wrong, nothing
   * stays behind (the storage's `store`).
   */
  async store(uploadedBy: string, upload: Upload, nextPart: (fileSize: number) => Promise<MultipartFile | undefined>): Promise<StoredFile> {
    const { maxBytes, requestBytes } = upload
    const used = await this.usedBy(uploadedBy)
    const room = this.opts.quotaBytes - used
    const limit = Math.min(maxBytes, room)
    const leastFileBytes = requestBytes === undefined ? 0 : requestBytes - MULTIPART_SLACK
    const cutShort = () => (limit < maxBytes ? quotaExceeded(used, this.opts.quotaBytes) : tooLarge(maxBytes))
    if (room <= 0 || (leastFileBytes > room && room < maxBytes)) throw quotaExceeded(used, this.opts.quotaBytes)
    if (leastFileBytes > maxBytes) throw tooLarge(maxBytes)
    await this.assertRoom(Math.min(limit, requestBytes ?? limit))
    if (this.streaming >= this.opts.maxConcurrent) throw new AppError(503, 'UPLOADS_BUSY', 'Too many uploads on this server right now; try again shortly')
    this.streaming++
    try {
      return await this.streamIn(uploadedBy, upload, await nextPart(limit), cutShort)
    } catch (err) {
      if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw cutShort()
      throw err
    } finally {
      this.streaming--
    }
  }

  private async streamIn(uploadedBy: string, upload: Upload, part: MultipartFile | undefined, cutShort: () => AppError): Promise<StoredFile> {
    if (!part || part.type !== 'file' || part.fieldname !== 'file') {
      part?.file?.resume()
      throw badRequest('Send the file as the multipart field "file"', 'FILE_REQUIRED')
    }
    const inspected = inspectUpload(part.file, { accept: upload.accept, truncated: cutShort })
    // A message's image streams to the storage as it comes and gets a preview; an avatar is stored remade.
    const previewing = upload.purpose === 'message' ? withPreview(inspected, this.opts.images) : undefined
    const { body, facts } = previewing ?? asAvatar(inspected, this.opts.images)
    // A client that stops sending would hold its slot (and, on PostgreSQL, a connection) for ever.
    const timeout = setTimeout(() => part.file.destroy(new AppError(408, 'UPLOAD_TIMEOUT', `The upload took longer than ${this.opts.timeoutMs / 1000} s`)), this.opts.timeoutMs)
    const storageName = randomUUID()
    const originalName = upload.purpose === 'avatar' ? 'avatar.webp' : cleanName(part.filename)
    try {
      const id = await this.storage.store(storageName, body, (trx) =>
        this.insertWithinQuota(trx, { storage_name: storageName, purpose: upload.purpose, mime_type: facts.mime, size: facts.size, original_name: originalName, uploaded_by: uploadedBy }),
      )
      const kind = facts.mime.startsWith('image/') ? 'image' : facts.mime.startsWith('video/') ? 'video' : 'file'
      const stored: StoredFile = { id, storageName, mime: facts.mime, size: facts.size, originalName, kind }
      const preview = previewing?.preview()
      if (preview) await this.storePreview(stored, preview, uploadedBy)
      return { ...stored, ...(preview && { preview: { width: preview.width, height: preview.height } }) }
    } catch (err) {
      // Refused before its end (its type, the timeout): the rest of the part is read and dropped.
      part.file.resume()
      throw err
    } finally {
      clearTimeout(timeout)
    }
  }

  /**
   * The preview as a file of its own, stored after its image: an upload cut off in between keeps the image
   * without a preview (its message is not sent either), never a preview without its image. A preview that
   * cannot be stored fails the upload, and the image goes.
   */
  private async storePreview(image: StoredFile, preview: Preview, uploadedBy: string): Promise<void> {
    const storageName = randomUUID()
    const row: NewFile = {
      storage_name: storageName, purpose: 'preview', preview_of: image.id, mime_type: PREVIEW_TYPE, size: preview.data.length,
      original_name: `${path.parse(image.originalName).name || 'image'}.webp`, uploaded_by: uploadedBy,
    }
    try {
      await this.storage.store(storageName, Readable.from([preview.data]), (trx) => trx.insertInto('files').values(row).execute())
    } catch (err) {
      await this.remove(image.id)
      throw err
    }
  }

  /** Bytes of all the files a user has uploaded (previews are the server's, made from them). */
  private async usedBy(userId: string, db: DB = this.db): Promise<number> {
    const row = await db.selectFrom('files').select((eb) => eb.fn.coalesce(eb.fn.sum<string>('size'), sql<string>`0`).as('used'))
      .where('uploaded_by', '=', userId).where('purpose', '<>', 'preview').executeTakeFirstOrThrow()
    return Number(row.used)
  }

  /**
   * The row, if the user's files and this one fit the quota. Uploads of one user run in parallel (and on
   * several instances), each checked before its bytes came: one lock per user makes "sum, then insert" one
   * step, so that no two of them can both fit in the same room.
   */
  private async insertWithinQuota(trx: Trx, row: NewFile & { uploaded_by: string; size: number }): Promise<string> {
    await sql`SELECT pg_advisory_xact_lock(hashtextextended(${`parley upload quota ${row.uploaded_by}`}, 0))`.execute(trx)
    const used = await this.usedBy(row.uploaded_by, trx)
    if (used + row.size > this.opts.quotaBytes) throw quotaExceeded(used, this.opts.quotaBytes, row.size)
    return (await trx.insertInto('files').values(row).returning('id').executeTakeFirstOrThrow()).id
  }

  /**
   * 507 when storing `bytes` more would take all files past FILE_STORAGE_MAX_BYTES: the storage's own free
   * space cannot be seen from here (a database server's disk, a bucket), so the operator sets what it may hold.
   */
  private async assertRoom(bytes: number): Promise<void> {
    const max = this.opts.storageMaxBytes
    if (max === undefined) return
    const row = await this.db.selectFrom('files').select((eb) => eb.fn.coalesce(eb.fn.sum<string>('size'), sql<string>`0`).as('n')).executeTakeFirstOrThrow()
    if (Number(row.n) + bytes > max) throw lowOnStorage()
  }

  /**
   * Deletes a file's row and its bytes, unless a message still refers to it (a forwarded copy shares its
   * original's file): the last message to let go of a file deletes it. Each caller has let go of it first.
   */
  async remove(fileId: string | null | undefined): Promise<void> {
    if (!fileId) return
    try {
      await this.storage.remove(async (trx) => {
        // Its preview goes with it (ON DELETE CASCADE); read in the same statement, its key is still in sight.
        const rows = await trx
          .with('gone', (db) => db.deleteFrom('files').where('id', '=', fileId)
            .where(({ not, exists, selectFrom }) => not(exists(selectFrom('messages').select('id').where('file_id', '=', fileId))))
            .returning(['id', 'storage_name']))
          .selectFrom('gone').select('storage_name')
          .union((db) => db.selectFrom('files as p').innerJoin('gone', 'gone.id', 'p.preview_of').select('p.storage_name'))
          .execute()
        return rows.map((r) => r.storage_name)
      })
    } catch (err) {
      // A forward of it committed meanwhile (its key check held the row): it is still referred to.
      if ((err as { code?: string }).code !== FOREIGN_KEY_VIOLATION) throw err
    }
  }

  /** A stored file's bytes, or a range of them. */
  open(file: { storage_name: string; size: number }, range?: ByteRange): Promise<Readable> {
    return this.storage.open(file.storage_name, file.size, range)
  }

  /**
   * A file the user may read: an avatar (any signed-in user), or the file of a message that is not deleted
   * in a conversation the user is a member of. Anything else is 404, whether or not it exists. With
   * `sessionId` (a signed URL, which outlives the token it was asked with), the account must still be open
   * and that session not ended.
   */
  async findReadable(fileId: string, userId: string, sessionId?: string) {
    const row = await this.db
      .selectFrom('files as f')
      .selectAll('f')
      .where('f.id', '=', fileId)
      .$if(sessionId !== undefined, (qb) =>
        qb.where((eb) =>
          eb.exists(
            eb
              .selectFrom('sessions as s')
              .innerJoin('users as u', 'u.id', 's.user_id')
              .select(sql`1`.as('one'))
              .where('s.id', '=', sessionId!)
              .where('s.user_id', '=', userId)
              .where('s.ended_at', 'is', null)
              .where('u.deleted_at', 'is', null),
          ),
        ),
      )
      .where((eb) =>
        eb.or([
          eb('f.purpose', '=', 'avatar'),
          eb.exists(
            eb
              .selectFrom('messages as m')
              .innerJoin('participants as p', 'p.conversation_id', 'm.conversation_id')
              .select(sql`1`.as('one'))
              .whereRef('m.file_id', '=', 'f.id')
              .where('m.is_deleted', '=', false)
              .where('p.user_id', '=', userId)
              .whereRef('m.seq', '>', 'p.cleared_seq'),
          ),
        ]),
      )
      .executeTakeFirst()
    if (!row) throw notFound('file')
    return row
  }

  /** The preview of a file the user may read (the file's readers, no others); 404 PREVIEW_NOT_FOUND when it has none. */
  async findPreview(fileId: string, userId: string, sessionId?: string) {
    const file = await this.findReadable(fileId, userId, sessionId)
    const preview = await this.db.selectFrom('files').selectAll().where('preview_of', '=', file.id).executeTakeFirst()
    if (!preview) throw notFound('preview')
    return preview
  }
}
