import { randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, rename, stat, unlink } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { MultipartFile } from '@fastify/multipart'
import { fileTypeFromFile } from 'file-type'
import { sql } from 'kysely'
import type { FilesTable } from '../../db/types.ts'
import type { DB } from '../database.ts'
import { AppError, badRequest, notFound } from '../errors.ts'

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

const tooLarge = (max: number) => new AppError(413, 'PAYLOAD_TOO_LARGE', `The file is larger than ${max} bytes`)

/** The client's file name, kept only for display and downloads: no path, no control characters. */
function cleanName(name: string | undefined): string {
  const base = path.basename(String(name ?? '').replace(/\\/g, '/'))
  const clean = base.replace(/[\u0000-\u001f\u007f"]/g, '').trim().slice(0, 255)
  return clean || 'file'
}

export class FilesService {
  constructor(
    private readonly db: DB,
    private readonly uploadDir: string,
  ) {}

  pathOf(storageName: string): string {
    return path.join(this.uploadDir, storageName)
  }

  /**
   * Streams an upload to disk under a generated name, then sniffs what it really is (the client's
   * Content-Type and file name are never trusted). Whatever goes wrong, nothing stays behind.
   */
  async store(part: MultipartFile | undefined, uploadedBy: string, purpose: FilesTable['purpose'], maxBytes: number, accept?: Set<string>): Promise<StoredFile> {
    if (!part || part.type !== 'file' || part.fieldname !== 'file') {
      part?.file?.resume()
      throw badRequest('Send the file as the multipart field "file"', 'FILE_REQUIRED')
    }
    await mkdir(this.uploadDir, { recursive: true })
    const tmp = this.pathOf(`.${randomUUID()}.part`)
    try {
      await pipeline(part.file, createWriteStream(tmp, { flags: 'wx' }))
      if (part.file.truncated) throw tooLarge(maxBytes)
      const { size } = await stat(tmp)
      if (size === 0) throw badRequest('The file is empty', 'FILE_EMPTY')
      const sniffed = await fileTypeFromFile(tmp)
      const mime = sniffed?.mime ?? 'application/octet-stream'
      if (accept && !accept.has(mime)) throw new AppError(415, 'UNSUPPORTED_MEDIA_TYPE', `Only ${[...accept].join(', ')} are accepted; this file is ${mime}`)
      const storageName = `${randomUUID()}${sniffed ? `.${sniffed.ext}` : ''}`
      await rename(tmp, this.pathOf(storageName))
      const row = await this.db
        .insertInto('files')
        .values({ storage_name: storageName, purpose, mime_type: mime, size, original_name: cleanName(part.filename), uploaded_by: uploadedBy })
        .returning('id')
        .executeTakeFirstOrThrow()
        .catch(async (err) => {
          await unlink(this.pathOf(storageName)).catch(() => {})
          throw err
        })
      const kind = mime.startsWith('image/') ? 'image' : mime.startsWith('video/') ? 'video' : 'file'
      return { id: row.id, storageName, mime, size, originalName: cleanName(part.filename), kind }
    } catch (err) {
      await unlink(tmp).catch(() => {})
      if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw tooLarge(maxBytes)
      throw err
    }
  }

  /** Deletes a file's row and its bytes; nothing can reach it afterwards. */
  async remove(fileId: string | null | undefined): Promise<void> {
    if (!fileId) return
    const row = await this.db.deleteFrom('files').where('id', '=', fileId).returning('storage_name').executeTakeFirst()
    if (row) await unlink(this.pathOf(row.storage_name)).catch(() => {})
  }

  /**
   * A file the user may read: an avatar (any signed-in user), or the file of a message that is not deleted
   * in a conversation the user is a member of. Anything else is 404, whether or not it exists.
   */
  async readable(fileId: string, userId: string) {
    const row = await this.db
      .selectFrom('files as f')
      .selectAll('f')
      .where('f.id', '=', fileId)
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
