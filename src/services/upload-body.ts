import { fileTypeFromBuffer } from 'file-type'
import { AppError, badRequest } from '../errors.ts'
import { type Images, type Preview, PREVIEW_TYPE } from './images.ts'

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
export function inspectUpload(file: AsyncIterable<Buffer> & { truncated?: boolean }, opts: InspectOptions): Inspected {
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

export interface Inspected {
  body: AsyncIterable<Buffer>
  facts: UploadFacts
}

/**
 * A message upload on its way to the storage; an image's bytes are kept too (as much as MAX_UPLOAD_BYTES), for
 * its preview. The header is measured from the first piece (a bomb is refused before the rest is read), and
 * the preview is made once the whole body has passed its checks, before the storage keeps anything: an image
 * that cannot be decoded, or has too many pixels, is refused like a file of a type not accepted.
 */
export function withPreview(upload: Inspected, images: Images): Inspected & { preview: () => Preview | undefined } {
  let made: Preview | undefined
  async function* body() {
    let kept: Buffer[] | undefined
    let first = true
    for await (const piece of upload.body) {
      // The first piece is the sniffed head: the type is known from it on.
      if (first && images.previewable(upload.facts.mime)) {
        await images.checkHeader(piece)
        kept = []
      }
      first = false
      kept?.push(piece)
      yield piece
    }
    if (kept) made = await images.preview(Buffer.concat(kept), upload.facts.mime)
  }
  return { body: body(), facts: upload.facts, preview: () => made }
}

/** An avatar upload, whole (at most MAX_AVATAR_BYTES), and what is stored instead: its square WebP. */
export function asAvatar(upload: Inspected, images: Images): Inspected {
  const facts: UploadFacts = { size: 0, mime: PREVIEW_TYPE }
  async function* body() {
    const kept: Buffer[] = []
    for await (const piece of upload.body) {
      if (!kept.length) await images.checkHeader(piece)
      kept.push(piece)
    }
    const data = await images.avatar(Buffer.concat(kept), upload.facts.mime)
    facts.size = data.length
    yield data
  }
  return { body: body(), facts }
}
