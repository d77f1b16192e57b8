import { Readable } from 'node:stream'
import multipart from '@fastify/multipart'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Selectable } from 'kysely'
import { type Static, Type } from 'typebox'
import type { FilesTable } from '../../db/types.ts'
import { AppError } from '../errors.ts'
import type { Config } from '../config.ts'
import { streamedBodyCompiler } from '../plugins/validation.ts'
import type { ErrorCode } from '../error-codes.ts'
import { IdParams, SIGNED_IN, Timestamp, Uuid } from '../schemas/common.ts'
import { errors } from '../schemas/error-responses.ts'
import { named } from '../schemas/named.ts'
import { Conversation } from '../schemas/conversations.ts'
import { Content, Message } from '../schemas/messages.ts'
import { Me } from '../schemas/users.ts'
import { answerFor } from '../services/byte-ranges.ts'
import { AVATAR_TYPES, fileUrl, thumbnailUrl } from '../services/files.ts'
import { type App, secured } from './types.ts'

const FileBody = Type.Object({ file: Type.String({ format: 'binary', description: 'The file; its type is sniffed from its bytes' }) })
const multipartSchema = { consumes: ['multipart/form-data'], body: FileBody }
// What an upload can be refused with besides the route's own: no file, too large or over quota, not an image
// that can be read, too slow, the rate, this instance's upload slots, the storage's cap.
const uploadErrors: ErrorCode[] = [
  'VALIDATION_ERROR', 'FILE_REQUIRED', 'FILE_EMPTY', ...SIGNED_IN, 'UPLOAD_TIMEOUT', 'PAYLOAD_TOO_LARGE', 'QUOTA_EXCEEDED', 'IMAGE_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE', 'INVALID_IMAGE', 'RATE_LIMITED', 'UPLOADS_BUSY', 'INSUFFICIENT_STORAGE',
]
// A file's bytes, whole (200) or the range asked for (206), with the Content-Type sniffed at upload.
const bytes = (type: string, description: string) => ({
  description,
  headers: {
    'content-length': Type.Integer(),
    'accept-ranges': Type.String({ description: '`bytes`' }),
    etag: Type.String({ description: "The file's id, quoted: stored bytes never change" }),
    'content-disposition': Type.String({ description: '`inline` for images, video and audio, else `attachment`; with the original file name' }),
  },
  content: { [type]: { schema: Type.String({ format: 'binary' }) } },
})
const download = (type: string) => ({
  200: bytes(type, 'The whole file'),
  206: bytes(type, 'The range the `Range` header asked for, with `Content-Range: bytes <first>-<last>/<size>`'),
  304: Type.Null({ description: 'Not modified: the `If-None-Match` ETag is current' }),
  ...errors('VALIDATION_ERROR', ...SIGNED_IN, 'FILE_URL_INVALID', 'FILE_URL_EXPIRED', 'FILE_NOT_FOUND', 'RANGE_NOT_SATISFIABLE'),
})
const RangeHeaders = Type.Object({
  range: Type.Optional(Type.String({ description: 'Only these bytes, e.g. `bytes=0-1023` (206); one range or several' })),
})

const SignedQuery = Type.Object({
  expires: Type.Optional(Type.Integer({ minimum: 0, description: 'A signed URL: its expiry (epoch seconds)' })),
  u: Type.Optional(Uuid),
  s: Type.Optional(Uuid),
  sig: Type.Optional(Type.String({ maxLength: 100 })),
})
const FileLink = named('FileLink', Type.Object(
  {
    url: Type.String({ description: 'GET it without a token; the same for a while, so browsers cache what it loads' }),
    expires_at: Timestamp,
  },
  { description: 'A signed URL of one file, for where no header can be sent' },
))

// A file's signed URL opens its preview too: they have the same readers.
const SIGNED_ROUTES = new Set(['/files/:id', '/files/:id/thumbnail'])

/** A GET of a file by a signed URL: it stands for its user instead of a token (the route checks it). */
const signedRead = (request: FastifyRequest) =>
  (request.method === 'GET' || request.method === 'HEAD') && SIGNED_ROUTES.has(request.routeOptions.url ?? '') && (request.query as { sig?: unknown }).sig !== undefined

const contentLength = (request: FastifyRequest) => {
  const length = Number(request.headers['content-length'])
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined
}

// Shown inline only where a browser cannot be made to run it; everything else downloads.
const INLINE = /^(image\/(png|jpeg|gif|webp|avif|bmp)|video\/|audio\/)/

/** Uploads (multipart, in this scope only) and the files they store. */
export default async function fileRoutes(app: App, opts: { config: Config }) {
  const { files, messages, users, conversations } = app.services
  const { MAX_UPLOAD_BYTES, MAX_AVATAR_BYTES } = opts.config
  await app.register(multipart, { limits: { fileSize: MAX_UPLOAD_BYTES, files: 1, fields: 0, parts: 1, fieldNameSize: 100, headerPairs: 50 } })
  // Tokens come in the header only: a token in a URL ends up in logs. Where a header cannot be sent (img,
  // video, a download link), a signed URL from GET /files/{id}/url opens the one file.
  app.addHook('onRequest', async (request) => {
    if (!signedRead(request)) await app.authenticate(request)
  })
  // Counts an upload against its user's rate before a byte is read: 429 with Retry-After past it.
  const uploadRate = app.uploadRateLimit
  const avatarUpload = (request: FastifyRequest) => ({ purpose: 'avatar' as const, maxBytes: MAX_AVATAR_BYTES, requestBytes: contentLength(request), accept: AVATAR_TYPES })

  app.post('/messages/upload', {
    validatorCompiler: streamedBodyCompiler,
    schema: {
      tags: ['messages'],
      summary: 'Send a file: an image, video or file message, by its sniffed content',
      operationId: 'uploadFile',
      security: secured,
      querystring: Type.Object({ conversation_id: Uuid, caption: Type.Optional(Content) }),
      ...multipartSchema,
      response: { 201: Message, ...errors(...uploadErrors, 'BLOCKED', 'CONVERSATION_NOT_FOUND') },
    },
    preHandler: uploadRate,
  }, async (request, reply) => {
    const { conversation_id, caption } = request.query
    // The rules first (a member, no block in a direct conversation): a refused upload stores no byte.
    await messages.assertCanSend(conversation_id, request.userId)
    const upload = { purpose: 'message' as const, maxBytes: MAX_UPLOAD_BYTES, requestBytes: contentLength(request) }
    const stored = await files.store(request.userId, upload, (fileSize) => request.file({ limits: { fileSize } }))
    try {
      const { message } = await messages.send(request.userId, { conversation_id, content: caption }, {
        file_id: stored.id, message_type: stored.kind, file_url: fileUrl(stored.id), file_name: stored.originalName, file_size: stored.size, mime_type: stored.mime,
        ...(stored.preview && { thumbnail_url: thumbnailUrl(stored.id), ...stored.preview }),
      })
      return reply.code(201).send(message)
    } catch (err) {
      await files.remove(stored.id)
      throw err
    }
  })

  app.post('/users/me/avatar', {
    validatorCompiler: streamedBodyCompiler,
    schema: {
      tags: ['users'], summary: 'Set your avatar (PNG, JPEG, GIF or WebP; stored as a 256×256 WebP, its middle square)', operationId: 'setMyAvatar',
      security: secured, ...multipartSchema, response: { 200: Me, ...errors(...uploadErrors) },
    },
    preHandler: uploadRate,
  }, async (request) => {
    const stored = await files.store(request.userId, avatarUpload(request), (fileSize) => request.file({ limits: { fileSize } }))
    const { user, previous } = await users.setAvatar(request.userId, stored.id)
    await files.remove(previous)
    return user
  })

  app.post('/conversations/:id/avatar', {
    validatorCompiler: streamedBodyCompiler,
    schema: {
      tags: ['conversations'], summary: "Set a group's avatar (admins)", operationId: 'setConversationAvatar', security: secured, params: IdParams, ...multipartSchema,
      response: { 200: Conversation, ...errors(...uploadErrors, 'NOT_A_GROUP', 'NOT_ADMIN', 'CONVERSATION_NOT_FOUND') },
    },
    preHandler: uploadRate,
  }, async (request) => {
    // The rules first: nothing is stored for someone who may not set it.
    await conversations.assertAdmin(request.params.id, request.userId)
    const stored = await files.store(request.userId, avatarUpload(request), (fileSize) => request.file({ limits: { fileSize } }))
    const previous = await conversations.setAvatar(request.params.id, request.userId, stored.id).catch(async (err) => {
      await files.remove(stored.id)
      throw err
    })
    await files.remove(previous)
    return conversations.get(request.params.id, request.userId)
  })

  app.get('/files/:id/url', {
    schema: {
      tags: ['files'],
      summary: 'A short-lived URL of the file (readers only), for where no header can be sent: img, video, downloads',
      description: 'The URL opens this file only, for you and this session, for FILE_URL_TTL to twice that; ask again when it expires.',
      operationId: 'getFileUrl',
      security: secured,
      params: IdParams,
      response: { 200: FileLink, ...errors('VALIDATION_ERROR', ...SIGNED_IN, 'FILE_NOT_FOUND') },
    },
  }, async (request) => {
    await files.findReadable(request.params.id, request.userId)
    return files.urls.sign(request.params.id, { userId: request.userId, sessionId: request.sessionId })
  })

  // After validation, so the signature's fields have their types.
  const signer = async (request: FastifyRequest<{ Params: { id: string }; Querystring: Static<typeof SignedQuery> }>) => {
    if (!signedRead(request)) return
    const who = files.urls.verify(request.params.id, request.query)
    request.userId = who.userId
    request.sessionId = who.sessionId
  }

  app.get('/files/:id', {
    schema: {
      tags: ['files'],
      summary: "A message's file (members only) or an avatar; supports Range requests",
      description: 'Authenticate with the bearer header, or use the signed URL of `GET /files/{id}/url` where a header cannot be sent (img, video): then no token.',
      operationId: 'downloadFile',
      security: [...secured, {}],
      params: IdParams,
      querystring: SignedQuery,
      headers: RangeHeaders,
      response: download('application/octet-stream'),
    },
    preHandler: signer,
  }, async (request, reply) => {
    const signed = signedRead(request)
    return serve(request, reply, await files.findReadable(request.params.id, request.userId, signed ? request.sessionId : undefined))
  })

  app.get('/files/:id/thumbnail', {
    schema: {
      tags: ['files'],
      summary: "An image's preview (WebP, at most 480×480), to the image's readers; 404 when it has none",
      description: "The image's signed URL (`GET /files/{id}/url`) opens its preview too: the same query after `/files/{id}/thumbnail`.",
      operationId: 'downloadThumbnail',
      security: [...secured, {}],
      params: IdParams,
      querystring: SignedQuery,
      headers: RangeHeaders,
      response: { ...download('image/webp'), ...errors('VALIDATION_ERROR', ...SIGNED_IN, 'FILE_URL_INVALID', 'FILE_URL_EXPIRED', 'FILE_NOT_FOUND', 'PREVIEW_NOT_FOUND', 'RANGE_NOT_SATISFIABLE') },
    },
    preHandler: signer,
  }, async (request, reply) => {
    const signed = signedRead(request)
    return serve(request, reply, await files.findPreview(request.params.id, request.userId, signed ? request.sessionId : undefined))
  })

  /** A stored file's answer: ranges, validators, and headers that keep a browser from running it. */
  async function serve(request: FastifyRequest<{ Querystring: Static<typeof SignedQuery> }>, reply: FastifyReply, file: Selectable<FilesTable>) {
    const signed = signedRead(request)
    const answer = answerFor(request.headers, { size: file.size, etag: `"${file.id}"`, lastModified: file.created_at })
    if (answer.status === 416) {
      reply.headers(answer.headers)
      throw new AppError(416, 'RANGE_NOT_SATISFIABLE', 'The requested range is outside the file')
    }
    // HEAD and 304 answer with headers only, and read no bytes. Fastify keeps a HEAD's Content-Length only
    // when its body is a stream (which it drains): an empty one.
    const body = !answer.range ? undefined : request.method === 'HEAD' ? Readable.from([]) : await files.open(file, answer.range)
    const inline = INLINE.test(file.mime_type)
    const name = encodeURIComponent(file.original_name)
    // A signed URL's answer is kept no longer than the URL works.
    const maxAge = signed ? files.urls.secondsLeft(request.query.expires ?? 0) : 3600
    return (reply as FastifyReply)
      .code(answer.status)
      .headers(answer.headers)
      .header('content-type', file.mime_type)
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "default-src 'none'; sandbox")
      .header('cache-control', `private, max-age=${maxAge}`)
      .header('content-disposition', `${inline ? 'inline' : 'attachment'}; filename="${name}"; filename*=UTF-8''${name}`)
      .send(body)
  }
}
