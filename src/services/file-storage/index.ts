import type { Readable } from 'node:stream'
import type { Transaction } from 'kysely'
import type { Database } from '../../../db/types.ts'
import type { DB } from '../../database.ts'
import { PostgresStorage } from './postgres.ts'
import type { S3Options } from './s3.ts'

export type Trx = Transaction<Database>

/** Inclusive byte offsets, as in a Range header. */
export interface ByteRange {
  start: number
  end: number
}

/**
 * Where the bytes of uploaded files live, shared by every instance. The files row is the file: storages
 * keep bytes only while a row names them, so a failed upload, a deleted file or a crash leaves nothing.
 */
export interface FileStorage {
  /**
   * Stores `body` under `key`, then runs `commit` (which writes the files row) so that both happen or
   * neither: when `body` or `commit` throws, or the process dies on the way, no bytes stay behind.
   */
  store<T>(key: string, body: AsyncIterable<Buffer>, commit: (trx: Trx) => Promise<T>): Promise<T>
  /**
   * Runs `deleteRows` (which deletes files rows, a file and its preview, and answers with their keys) and
   * deletes the bytes; once a row is gone, its bytes go too, even if the process dies in between.
   */
  remove(deleteRows: (trx: Trx) => Promise<string[]>): Promise<void>
  /** The bytes of `key` (`size` of them), or of a range; rejects before a byte is sent when they are missing. */
  open(key: string, size: number, range?: ByteRange): Promise<Readable>
  /** Background work (sweeps) starts and stops with the app. */
  start(): Promise<void>
  close(): Promise<void>
}

export type StorageConfig = { kind: 'postgres' } | ({ kind: 's3' } & S3Options)

/** The AWS SDK is loaded only when S3 is chosen: otherwise it cost a sixth of every start-up, for nothing. */
export async function createFileStorage(db: DB, config: StorageConfig): Promise<FileStorage> {
  if (config.kind !== 's3') return new PostgresStorage(db)
  const { S3Storage } = await import('./s3.ts')
  return new S3Storage(db, config)
}
