import multipart from '@fastify/multipart'
import send from '@fastify/send'
import type { FastifyReply } from 'fastify'
import { Type } from 'typebox'
import { AppError, notFound } from '../errors.ts'
import type { Config } from '../config.ts'
import { streamedBodyCompiler } from '../plugins/validation.ts'
import { errors, IdParams, Uuid } from '../schemas/common.ts'
import { Conversation } from '../schemas/conversations.ts'
import { Content, Message } from '../schemas/messages.ts'
import { User } from '../schemas/users.ts'
import { AVATAR_TYPES, fileUrl } from '../services/files.ts'
import { type App, secured } from './types.ts'

const FileBody = Type.Object({ file: Type.String({ format: 'binary', description: 'The file; its type is sniffed from its bytes' }) })
const multipartSchema = { consumes: ['multipart/form-data'], body: FileBody }

// Shown inline only where a browser cannot be made to run it; everything else downloads.
const INLINE = /^(image\/(png|jpeg|gif|webp|avif|bmp)|video\/|audio\/)/

/** Uploads (multipart, in this scope only) and the files they store. */
export default async function fileRoutes(app: App, opts: { config: Config }) {
  const { files, messages, users, conversations } = app.services
  const { MAX_UPLOAD_BYTES, MAX_AVATAR_BYTES, UPLOAD_DIR } = opts.config
  await app.register(multipart, { limits: { fileSize: MAX_UPLOAD_BYTES, files: 1, fields: 0, parts: 1, fieldNameSize: 100, headerPairs: 50 } })
  app.addHook('onRequest', async (request) => {
    // GET /files/{id} may carry the token in the query, for <img src> and <video src>.
    const token = (request.query as { token?: string }).token
    if (token && request.method === 'GET' && !request.headers.authorization) request.headers.authorization = `Bearer ${token}`
    await app.authenticate(request)
  })

  app.post('/messages/upload', {
    validatorCompiler: streamedBodyCompiler,
    schema: {
      tags: ['messages'],
      summary: 'Send a file: an image, video or file message, by its sniffed content',
      security: secured,
      querystring: Type.Object({ conversation_id: Uuid, caption: Type.Optional(Content) }),
      ...multipartSchema,
      response: { 201: Message, ...errors(400, 401, 404, 413, 415) },
    },
  }, async (request, reply) => {
    const { conversation_id, caption } = request.query
    // Membership first: a stranger's upload is refused before a byte is stored.
    await conversations.membership(conversation_id, request.userId)
    const stored = await files.store(await request.file({ limits: { fileSize: MAX_UPLOAD_BYTES } }), request.userId, 'message', MAX_UPLOAD_BYTES)
    try {
      const { message } = await messages.send(request.userId, { conversation_id, content: caption }, {
        file_id: stored.id, message_type: stored.kind, file_url: fileUrl(stored.id), file_name: stored.originalName, file_size: stored.size, mime_type: stored.mime,
      })
      return reply.code(201).send(message)
    } catch (err) {
      await files.remove(stored.id)
      throw err
    }
  })

  app.post('/users/me/avatar', {
    validatorCompiler: streamedBodyCompiler,
    schema: { tags: ['users'], summary: 'Set your avatar (PNG, JPEG, GIF or WebP)', security: secured, ...multipartSchema, response: { 200: User, ...errors(400, 401, 413, 415) } },
  }, async (request) => {
    const stored = await files.store(await request.file({ limits: { fileSize: MAX_AVATAR_BYTES } }), request.userId, 'avatar', MAX_AVATAR_BYTES, AVATAR_TYPES)
    const { user, previous } = await users.setAvatar(request.userId, stored.id)
    await files.remove(previous)
    return user
  })

  app.post('/conversations/:id/avatar', {
    validatorCompiler: streamedBodyCompiler,
    schema: {
      tags: ['conversations'], summary: "Set a group's avatar (admins)", security: secured, params: IdParams, ...multipartSchema,
      response: { 200: Conversation, ...errors(400, 401, 403, 404, 413, 415) },
    },
  }, async (request) => {
    // The rules first: nothing is stored for someone who may not set it.
    await conversations.assertAdmin(request.params.id, request.userId)
    const stored = await files.store(await request.file({ limits: { fileSize: MAX_AVATAR_BYTES } }), request.userId, 'avatar', MAX_AVATAR_BYTES, AVATAR_TYPES)
    const previous = await conversations.setAvatar(request.params.id, request.userId, stored.id).catch(async (err) => {
      await files.remove(stored.id)
      throw err
    })
    await files.remove(previous)
    return conversations.get(request.params.id, request.userId)
  })

  app.get('/files/:id', {
    schema: {
      tags: ['files'],
      summary: "A message's file (members only) or an avatar; supports Range requests",
      description: 'Authenticate with the bearer header, or with `?token=<access_token>` where a header cannot be sent (img, video).',
      security: secured,
      params: IdParams,
      querystring: Type.Object({ token: Type.Optional(Type.String()) }),
      produces: ['application/octet-stream'],
      response: errors(400, 401, 404, 416),
    },
  }, async (request, reply) => {
    const file = await files.readable(request.params.id, request.userId)
    const result = await send(request.raw, file.storage_name, { root: UPLOAD_DIR, dotfiles: 'deny', index: false, acceptRanges: true, cacheControl: false, etag: true })
    if (result.type === 'error') {
      if ((result.metadata.error as { status?: number }).status !== 416) throw notFound('file')
      reply.header('content-range', `bytes */${file.size}`)
      throw new AppError(416, 'RANGE_NOT_SATISFIABLE', 'The requested range is outside the file')
    }
    const inline = INLINE.test(file.mime_type)
    const name = encodeURIComponent(file.original_name)
    return (reply as FastifyReply)
      .code(result.statusCode)
      .headers(result.headers as Record<string, string>)
      .header('content-type', file.mime_type)
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "default-src 'none'; sandbox")
      .header('cache-control', 'private, max-age=3600')
      .header('content-disposition', `${inline ? 'inline' : 'attachment'}; filename="${name}"; filename*=UTF-8''${name}`)
      .send(result.stream)
  })
}
