import type { IncomingHttpHeaders } from 'node:http'
import parseRange from 'range-parser'
import type { ByteRange } from './file-storage/index.ts'

export interface Answer {
  status: 200 | 206 | 304 | 416
  /** The bytes to send: a range for 206, the whole file for 200, none for 304 and 416. */
  range?: ByteRange
  headers: Record<string, string>
}

const matches = (list: string | undefined, etag: string) =>
  list !== undefined && list.split(',').some((tag) => ['*', etag, `W/${etag}`].includes(tag.trim()))

/**
 * What a GET of an immutable file answers, as @fastify/send did for files on disk: its ETag and
 * Last-Modified, 304 to a cache that has it, and one range (206, or 416 outside the file). Like send, a Range
 * that asks for several ranges gets the whole file, and an If-Range that names another version ignores the
 * Range. A file's bytes never change once stored, so its id is a strong ETag.
 */
export function answerFor(headers: IncomingHttpHeaders, file: { size: number; etag: string; lastModified: Date }): Answer {
  const common = { 'accept-ranges': 'bytes', etag: file.etag, 'last-modified': file.lastModified.toUTCString() }
  if (matches(headers['if-none-match'], file.etag)) return { status: 304, headers: common }
  const whole: Answer = { status: 200, range: { start: 0, end: file.size - 1 }, headers: { ...common, 'content-length': String(file.size) } }
  const ifRange = headers['if-range']?.toString().trim()
  if (!headers.range || (ifRange !== undefined && ifRange !== file.etag && ifRange !== common['last-modified'])) return whole
  const ranges = parseRange(file.size, headers.range, { combine: true })
  if (ranges === -1) return { status: 416, headers: { ...common, 'content-range': `bytes */${file.size}` } }
  if (ranges === -2 || ranges.type !== 'bytes' || ranges.length !== 1) return whole
  const [{ start, end }] = ranges
  return {
    status: 206,
    range: { start, end },
    headers: { ...common, 'content-range': `bytes ${start}-${end}/${file.size}`, 'content-length': String(end - start + 1) },
  }
}
