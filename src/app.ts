import { randomUUID } from 'node:crypto'
import formbody from '@fastify/formbody'
import Fastify, { type FastifyReply, type FastifyRequest, type FastifyServerOptions, LogController } from 'fastify'
import { type Config, storageConfig, trustProxy } from './config.ts'
import { type DB, poolOf } from './database.ts'
import { installErrorHandlers } from './errors.ts'
import auth from './plugins/auth.ts'
import docs from './plugins/docs.ts'
import jobs from './plugins/jobs.ts'
import metrics from './plugins/metrics.ts'
import limits from './plugins/rate-limit.ts'
import realtime from './plugins/realtime.ts'
import security from './plugins/security.ts'
import web from './plugins/web.ts'
import { installValidation } from './plugins/validation.ts'
import authRoutes from './routes/auth.ts'
import conversationRoutes from './routes/conversations.ts'
import fileRoutes from './routes/files.ts'
import healthRoutes from './routes/health.ts'
import messageRoutes from './routes/messages.ts'
import pushRoutes from './routes/push.ts'
import searchRoutes from './routes/search.ts'
import userRoutes from './routes/users.ts'
import webhookRoutes from './routes/webhooks.ts'
import { AuthService } from './services/auth.ts'
import { ConversationsService } from './services/conversations.ts'
import { ExportService } from './services/export.ts'
import { FileUrls } from './services/file-urls.ts'
import { createFileStorage } from './services/file-storage/index.ts'
import { FilesService } from './services/files.ts'
import { Images } from './services/images.ts'
import { MessageWriter } from './services/message-writer.ts'
import { MessagesService } from './services/messages.ts'
import { ReactionsService } from './services/reactions.ts'
import { SearchService } from './services/search.ts'
import { PinsService } from './services/pins.ts'
import { ForwardingService } from './services/forwarding.ts'
import { UsersService } from './services/users.ts'
import { BlocksService } from './services/blocks.ts'
import { MemberStateService } from './services/member-state.ts'
import { PushSubscriptionsService } from './services/push-subscriptions.ts'
import { WebhooksService } from './services/webhooks.ts'

export interface Services {
  auth: AuthService
  users: UsersService
  blocks: BlocksService
  conversations: ConversationsService
  messages: MessagesService
  reactions: ReactionsService
  pins: PinsService
  forwarding: ForwardingService
  search: SearchService
  files: FilesService
  exports: ExportService
  memberState: MemberStateService
  webhooks: WebhooksService
  push: PushSubscriptionsService
}

declare module 'fastify' {
  interface FastifyInstance {
    db: DB
    services: Services
  }
}

export interface AppOptions {
  config: Config
  db: DB
  jwtSecret: string
  /** The database's URL for the listener's own connection; without it the app serves REST only (the OpenAPI script). */
  databaseUrl?: string
  logger?: FastifyServerOptions['logger']
}

/**
 * One log line per request, when it completes, saying what was asked, by whom, the answer and its time; not
 * Fastify's two (incoming and completed): at the default level, log lines cost as much as a small route.
 */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = { req: request, res: reply, responseTime: reply.elapsedTime }
    if (error) reply.log.error({ ...line, err: error }, 'request errored')
    else reply.log.info(line, 'request completed')
  }
}

// A request id from outside is written into every log line of its request: only a short, plain one is taken.
const REQUEST_ID = /^[\w.:@-]{1,128}$/

/** Builds the whole service on a database; start-up (listening, migrations, shutdown) is server.ts's. */
export async function buildApp({ config, db, jwtSecret, databaseUrl, logger = false }: AppOptions) {
  const app = Fastify({
    logger,
    bodyLimit: config.BODY_LIMIT,
    // A request id from the load balancer (X-Request-Id) is kept in the logs (reqId); otherwise a UUID, unique
    // across instances (Fastify's own would be req-1, req-2... on every instance).
    requestIdHeader: false,
    genReqId: (req) => {
      const id = req.headers['x-request-id']
      return typeof id === 'string' && REQUEST_ID.test(id) ? id : randomUUID()
    },
    // Behind a load balancer, the client's IP (for the per-IP rate limits) comes from X-Forwarded-For.
    trustProxy: trustProxy(config.TRUST_PROXY),
    logController: new OneLinePerRequest(),
    // A malformed URL never reaches the error handler: answer it in the one error shape too.
    frameworkErrors: (err, _request, reply: FastifyReply) => {
      reply.code(400).send({ error: err.code === 'FST_ERR_BAD_URL' ? 'Malformed URL' : 'Malformed request', code: 'BAD_REQUEST' })
    },
  })
  installValidation(app)
  installErrorHandlers(app)
  // Bodies are JSON (form or multipart only where a route registers them): text/plain is a 415, not a string body.
  app.removeContentTypeParser('text/plain')
  app.decorate('db', db)
  // Echoed, so that a client or the load balancer can match an answer with its log lines.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })
  await app.register(metrics)

  await app.register(security, { corsOrigins: config.CORS_ORIGINS })
  const pool = poolOf(db)
  if (!pool) throw new Error('buildApp: the database must come from createDatabase (the shared rate limits use its pool)')
  await app.register(limits, { config, pool, secret: jwtSecret })
  await app.register(docs)
  await app.register(auth, { secret: jwtSecret, accessTtl: config.ACCESS_TOKEN_TTL, db })

  const users = new UsersService(db, app.openSessions)
  const conversations = new ConversationsService(db, { maxGroupSize: config.MAX_GROUP_SIZE })
  const storage = await createFileStorage(db, storageConfig(config))
  app.addHook('onReady', () => storage.start())
  app.addHook('onClose', () => storage.close())
  const files = new FilesService(db, {
    storage,
    quotaBytes: config.UPLOAD_QUOTA_BYTES,
    storageMaxBytes: config.FILE_STORAGE_MAX_BYTES,
    maxConcurrent: config.UPLOAD_MAX_CONCURRENT,
    timeoutMs: config.UPLOAD_TIMEOUT_MS,
    urls: new FileUrls(jwtSecret, config.FILE_URL_TTL),
    images: new Images({ maxPixels: config.IMAGE_MAX_PIXELS }),
  })
  const messages = new MessagesService(db, conversations, files, new MessageWriter(db, { maxBatch: config.MESSAGE_BATCH_MAX, maxInFlight: 2 }))
  app.decorate('services', {
    users,
    blocks: new BlocksService(db),
    exports: new ExportService(db, { maxConcurrent: config.EXPORT_MAX_CONCURRENT, timeoutMs: config.EXPORT_TIMEOUT_MS }),
    conversations,
    memberState: new MemberStateService(db, conversations),
    files,
    messages,
    reactions: new ReactionsService(db, messages),
    pins: new PinsService(db, messages, conversations),
    forwarding: new ForwardingService(messages),
    search: new SearchService(db, conversations, messages),
    webhooks: new WebhooksService(db, { allowPrivate: config.WEBHOOK_ALLOW_PRIVATE, perUser: config.WEBHOOKS_PER_USER }),
    push: new PushSubscriptionsService(db, { publicKey: config.VAPID_PUBLIC_KEY, allowPrivate: config.WEBHOOK_ALLOW_PRIVATE }),
    auth: new AuthService(db, users, {
      accessTtl: config.ACCESS_TOKEN_TTL,
      refreshTtl: config.REFRESH_TOKEN_TTL,
      signAccessToken: (sub, sid) => app.jwt.sign({ sub, sid }),
    }, app.openSessions),
  })

  await app.register(healthRoutes)
  await app.register(async (scope) => {
    // Form bodies only where Swagger UI's Authorize needs them.
    await scope.register(formbody)
    await scope.register(authRoutes)
  })
  await app.register(userRoutes)
  await app.register(conversationRoutes)
  await app.register(messageRoutes)
  await app.register(searchRoutes)
  await app.register(webhookRoutes)
  await app.register(pushRoutes)
  await app.register(fileRoutes, { config })
  await app.register(web)
  if (databaseUrl) {
    await app.register(realtime, { config, databaseUrl })
    await app.register(jobs, { config, databaseUrl })
  }
  return app
}
