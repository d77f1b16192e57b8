import { fileTypeFromBuffer } from 'file-type'
import { AppError, badRequest } from '../errors.ts'

// What the type is sniffed from: file-type reads the magic bytes near the start (4 KiB are enough for most
// types); a longer head lets the container formats that look further in (zip-based documents) be found too.
const HEAD_BYTES = 256 * 1024

export interface UploadFacts {
  size: number
  mime: string
}

export interface InspectOptions {
  accept?: Set<string>
  /** The error for a file that the part's size limit cut short. */
  truncated: () => AppError
}

const sniff = async (head: Buffer) => (await fileTypeFromBuffer(head))?.mime ?? 'application/octet-stream'

/**
 * The upload's bytes as they stream in, counted, with its type sniffed from its head (never from the
 * client's name or Content-Type). A file cut short, empty or of a type not accepted fails at its end, so
 * the storage never keeps it. `facts` are complete once the body has been read to the end without an error.
 */
export function inspectUpload(file: AsyncIterable<Buffer> & { truncated?: boolean }, opts: InspectOptions): { body: AsyncIterable<Buffer>; facts: UploadFacts } {
  const facts: UploadFacts = { size: 0, mime: 'application/octet-stream' }
  async function* body() {
    let head: Buffer[] | undefined = []
    for await (const piece of file) {
      facts.size += piece.length
      if (!head) {
        yield piece
        continue
      }
      head.push(piece)
      if (facts.size < HEAD_BYTES) continue
      const whole = Buffer.concat(head)
      facts.mime = await sniff(whole)
      head = undefined
      yield whole
    }
    if (file.truncated) throw opts.truncated()
    if (facts.size === 0) throw badRequest('The file is empty', 'FILE_EMPTY')
    if (head) {
      const whole = Buffer.concat(head)
      facts.mime = await sniff(whole)
      yield whole
    }
    // Refused at the end, as a file too large for its room is: that answer wins when both apply.
    if (opts.accept && !opts.accept.has(facts.mime)) {
      throw new AppError(415, 'UNSUPPORTED_MEDIA_TYPE', `Only ${[...opts.accept].join(', ')} are accepted; this file is ${facts.mime}`)
    }
  }
  return { body: body(), facts }
}
