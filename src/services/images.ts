import sharp, { type Metadata, type Sharp } from 'sharp'
import { AppError } from '../errors.ts'

/** A preview fits in this square; an avatar is stored as exactly this square. */
export const PREVIEW_SIZE = 480
export const AVATAR_SIZE = 256
export const PREVIEW_TYPE = 'image/webp'

/**
 * The types sharp's prebuilt libvips decodes: they get a preview. Another image type (BMP, ICO, HEIC, …) is
 * kept as it is, an image message without a preview.
 */
const PREVIEWABLE = new Set(['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/avif', 'image/tiff'])

// libvips keeps recent operations and their pixels for re-use; every upload is a new image, so that memory
// would only make the process's size hard to predict.
sharp.cache(false)

/** A preview and the size of the image it was made from, as the image is shown (EXIF orientation applied). */
export interface Preview {
  data: Buffer
  width: number
  height: number
}

export interface ImagesOptions {
  /** Width × height of the first frame beyond which an image is refused (413), before it is decoded. */
  maxPixels: number
}

const tooManyPixels = (width: number, height: number, max: number) =>
  new AppError(413, 'IMAGE_TOO_LARGE', `The image is ${width}×${height} pixels; at most ${max} pixels are accepted`)
const unreadable = (mime: string) => new AppError(415, 'INVALID_IMAGE', `The file looks like ${mime} but cannot be read as an image`)

/** What libvips' refusal means to the sender: too many pixels (its own limit), else an image it cannot decode. */
const refusal = (err: unknown, mime: string) =>
  /pixel limit/i.test((err as Error).message) ? new AppError(413, 'IMAGE_TOO_LARGE', 'The image has too many pixels') : unreadable(mime)

// EXIF orientations 5–8 turn the image a quarter: its width is shown as its height.
const shown = (meta: Metadata) => ((meta.orientation ?? 1) >= 5 ? { width: meta.height, height: meta.width } : { width: meta.width, height: meta.height })

/**
 * What the server makes of uploaded images, with sharp (libvips): previews of message images and avatars at
 * a fixed size. Both are new images encoded from the pixels, so nothing of the upload's metadata (EXIF and
 * its GPS position, XMP, IPTC, comments) comes along. Only the first frame of an animation is read. An image
 * is measured from its header before it is decoded, and libvips is told the same limit, so a small file that
 * claims billions of pixels is refused without a pixel being allocated.
 */
export class Images {
  constructor(private readonly opts: ImagesOptions) {}

  previewable(mime: string): boolean {
    return PREVIEWABLE.has(mime)
  }

  /**
   * Refuses an image whose header alone claims too many pixels, from the first bytes of an upload, before the
   * rest is read. A head that does not tell (a JPEG whose metadata runs past it) is decided at the end.
   */
  async checkHeader(head: Buffer): Promise<void> {
    const meta = await sharp(head, { limitInputPixels: false }).metadata().catch(() => undefined)
    if (meta) this.assertPixels(meta)
  }

  /** The preview of a whole image: within PREVIEW_SIZE², its aspect ratio kept, never enlarged, WebP. */
  async preview(input: Buffer, mime: string): Promise<Preview> {
    const image = this.open(input)
    const meta = await this.measure(image, mime)
    const { width, height } = shown(meta)
    const data = await this.encode(image.resize(PREVIEW_SIZE, PREVIEW_SIZE, { fit: 'inside', withoutEnlargement: true }), mime)
    return { data, width: width!, height: height! }
  }

  /** An avatar: the middle square of the image, AVATAR_SIZE², WebP (smaller ones are enlarged to it). */
  async avatar(input: Buffer, mime: string): Promise<Buffer> {
    const image = this.open(input)
    await this.measure(image, mime)
    return this.encode(image.resize(AVATAR_SIZE, AVATAR_SIZE, { fit: 'cover', position: 'centre' }), mime)
  }

  private open(input: Buffer) {
    // failOn 'error': a photo with a small flaw (a warning) still gets its preview; one that cannot be decoded
    // does not. The orientation is applied first, so the preview stands as the photo was taken.
    return sharp(input, { limitInputPixels: this.opts.maxPixels, failOn: 'error', pages: 1, autoOrient: true }).timeout({ seconds: 30 })
  }

  private async measure(image: Sharp, mime: string): Promise<Metadata> {
    const meta = await image.metadata().catch((err) => {
      throw refusal(err, mime)
    })
    this.assertPixels(meta)
    return meta
  }

  private async encode(image: Sharp, mime: string): Promise<Buffer> {
    return image.webp({ quality: 80 }).toBuffer().catch((err) => {
      throw refusal(err, mime)
    })
  }

  private assertPixels(meta: Metadata): void {
    const width = meta.width ?? 0
    const height = meta.pageHeight ?? meta.height ?? 0
    if (width * height > this.opts.maxPixels) throw tooManyPixels(width, height, this.opts.maxPixels)
  }
}
