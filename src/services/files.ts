import { randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, rename, stat, statfs, unlink } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { MultipartFile } from '@fastify/multipart'
import { fileTypeFromFile } from 'file-type'
import { sql } from 'kysely'
import type { FilesTable } from '../../db/types.ts'
import type { DB } from '../database.ts'
import { AppError, badRequest, notFound } from '../errors.ts'
import { normalizeName } from '../text.ts'
import type { FileUrls } from './file-urls.ts'

/** Images a browser may show inline and we accept as avatars. */
export const AVATAR_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp'])

/** Where a file is served; avatar_url and file_url hold this. */
export const fileUrl = (fileId: string) => `/files/${fileId}`
export const fileIdOf = (url: string | null | undefined) => url?.match(/^\/files\/([0-9a-f-]{36})$/)?.[1]

export interface StoredFile {
  id: string
  storageName: string
  mime: string
  size: number
  originalName: string
  kind: 'image' | 'video' | 'file'
}

export interface FilesOptions {
  uploadDir: string
  /** Bytes a user may keep stored, all their files together. */
  quotaBytes: number
  /** Free bytes the upload directory's file system keeps: no upload may take it below. */
  minFreeBytes: number
  urls: FileUrls
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

export class FilesService {
  readonly urls: FileUrls
  private readonly uploadDir: string

  constructor(
    private readonly db: DB,
    private readonly opts: FilesOptions,
  ) {
    this.uploadDir = opts.uploadDir
    this.urls = opts.urls
  }

  pathOf(storageName: string): string {
    return path.join(this.uploadDir, storageName)
  }

  /**
   * Streams an upload to disk under a generated name, then sniffs what it really is (the client's
   * Content-Type and file name are never trusted). The quota and the free space are checked before a byte
   * is read (`nextPart` is asked for the file only then, with the most it may hold), and the quota again
   * when the row is written. Whatever goes wrong, nothing stays behind.
   */
  async store(uploadedBy: string, upload: Upload, nextPart: (fileSize: number) => Promise<MultipartFile | undefined>): Promise<StoredFile> {
    const { maxBytes, requestBytes, accept } = upload
    await mkdir(this.uploadDir, { recursive: true })
    const used = await this.usedBy(uploadedBy)
    const room = this.opts.quotaBytes - used
    const limit = Math.min(maxBytes, room)
    const leastFileBytes = requestBytes === undefined ? 0 : requestBytes - MULTIPART_SLACK
    if (room <= 0 || (leastFileBytes > room && room < maxBytes)) throw quotaExceeded(used, this.opts.quotaBytes)
    if (leastFileBytes > maxBytes) throw tooLarge(maxBytes)
    await this.assertFreeSpace(Math.min(limit, requestBytes ?? limit))

    const part = await nextPart(limit)
    if (!part || part.type !== 'file' || part.fieldname !== 'file') {
      part?.file?.resume()
      throw badRequest('Send the file as the multipart field "file"', 'FILE_REQUIRED')
    }
    const tmp = this.pathOf(`.${randomUUID()}.part`)
    try {
      await pipeline(part.file, createWriteStream(tmp, { flags: 'wx' }))
      if (part.file.truncated) throw limit < maxBytes ? quotaExceeded(used, this.opts.quotaBytes) : tooLarge(maxBytes)
      const { size } = await stat(tmp)
      if (size === 0) throw badRequest('The file is empty', 'FILE_EMPTY')
      const sniffed = await fileTypeFromFile(tmp)
      const mime = sniffed?.mime ?? 'application/octet-stream'
      if (accept && !accept.has(mime)) throw new AppError(415, 'UNSUPPORTED_MEDIA_TYPE', `Only ${[...accept].join(', ')} are accepted; this file is ${mime}`)
      const storageName = `${randomUUID()}${sniffed ? `.${sniffed.ext}` : ''}`
      const originalName = cleanName(part.filename)
      await rename(tmp, this.pathOf(storageName))
      const id = await this.insertWithinQuota({ storage_name: storageName, purpose: upload.purpose, mime_type: mime, size, original_name: originalName, uploaded_by: uploadedBy })
        .catch(async (err) => {
          await unlink(this.pathOf(storageName)).catch(() => {})
          throw err
        })
      const kind = mime.startsWith('image/') ? 'image' : mime.startsWith('video/') ? 'video' : 'file'
      return { id, storageName, mime, size, originalName, kind }
    } catch (err) {
      await unlink(tmp).catch(() => {})
      if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw limit < maxBytes ? quotaExceeded(used, this.opts.quotaBytes) : tooLarge(maxBytes)
      throw err
    }
  }

  /** Bytes of all the files a user has stored. */
  private async usedBy(userId: string, db: DB = this.db): Promise<number> {
    const row = await db.selectFrom('files').select((eb) => eb.fn.coalesce(eb.fn.sum<string>('size'), sql<string>`0`).as('used')).where('uploaded_by', '=', userId).executeTakeFirstOrThrow()
    return Number(row.used)
  }

  /**
   * The row, if the user's files and this one fit the quota. Uploads of one user run in parallel (and on
   * several instances), each checked before its bytes came: one lock per user makes "sum, then insert" one
   * step, so that no two of them can both fit in the same room.
   */
  private insertWithinQuota(row: Omit<FilesTable, 'id' | 'created_at'>): Promise<string> {
    return this.db.transaction().execute(async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(hashtextextended(${`parley upload quota ${row.uploaded_by}`}, 0))`.execute(trx)
      const used = await this.usedBy(row.uploaded_by, trx)
      if (used + row.size > this.opts.quotaBytes) throw quotaExceeded(used, this.opts.quotaBytes, row.size)
      return (await trx.insertInto('files').values(row).returning('id').executeTakeFirstOrThrow()).id
    })
  }

  /** 507 when storing `bytes` more would leave the upload directory's file system below its floor. */
  private async assertFreeSpace(bytes: number): Promise<void> {
    const fs = await statfs(this.uploadDir)
    if (fs.bavail * fs.bsize - bytes < this.opts.minFreeBytes) throw lowOnStorage()
  }

  /** Deletes a file's row and its bytes; nothing can reach it afterwards. */
  async remove(fileId: string | null | undefined): Promise<void> {
    if (!fileId) return
    const row = await this.db.deleteFrom('files').where('id', '=', fileId).returning('storage_name').executeTakeFirst()
    if (row) await unlink(this.pathOf(row.storage_name)).catch(() => {})
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
}
