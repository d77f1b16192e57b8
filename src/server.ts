import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import closeWithGrace from 'close-with-grace'
import pino from 'pino'
import { migrateToLatest } from '../db/migrate.ts'
import { buildApp } from './app.ts'
import { type Config, ConfigError, loadConfig } from './config.ts'
import { createDatabase } from './database.ts'
import { startEmbeddedPostgres } from './embedded-postgres.ts'
import { redactUrl } from './log-redaction.ts'

// Credentials stay out of the logs: headers and bodies are not logged, and in a query string any parameter
// named like a token, password or secret is masked (`?token=` is how WebSocket and file links authenticate).
const LOGGER_SERIALIZERS = {
  req: (req: { method: string; url: string; id: string; ip?: string }) => ({
    id: req.id,
    method: req.method,
    url: redactUrl(req.url),
    remoteAddress: req.ip,
  }),
}

// In case a later log call passes headers or a body along: these never reach the output.
const LOGGER_REDACT = {
  paths: [
    'req.headers.authorization', 'req.headers.cookie', 'req.headers["sec-websocket-protocol"]',
    'headers.authorization', 'headers.cookie', 'headers["sec-websocket-protocol"]',
    'password', 'current_password', 'access_token', 'refresh_token', 'token',
    '*.password', '*.current_password', '*.access_token', '*.refresh_token', '*.token',
  ],
  censor: '[redacted]',
}

// The log leaves in blocks of 4 KB, and at least every LOG_FLUSH_MS: a line written on its own is a job for
// libuv's thread pool and two thread switches, which cost an instance ~8% of its CPU at 150 requests/s
// (docs/SCALING.md). A line waits at most that long; what is still buffered is written out on exit.
const LOG_FLUSH_MS = 250
function logDestination() {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 })
  setInterval(() => destination.flush(), LOG_FLUSH_MS).unref()
  return destination
}

/** Development only: a secret generated once and kept beside the embedded database, so restarts keep sessions. */
async function devJwtSecret(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'jwt-secret')
  try {
    return (await readFile(file, 'utf8')).trim()
  } catch {
    const secret = randomBytes(48).toString('base64url')
    await mkdir(dataDir, { recursive: true })
    await writeFile(file, secret, { mode: 0o600 })
    return secret
  }
}

export async function start(config: Config) {
  const embedded = config.DATABASE_URL ? undefined : await startEmbeddedPostgres(config.DATA_DIR)
  const databaseUrl = config.DATABASE_URL ?? embedded!.url
  const { db } = createDatabase(databaseUrl, config.DB_POOL_MAX)
  await migrateToLatest(db)

  const jwtSecret = config.JWT_SECRET ?? (await devJwtSecret(config.DATA_DIR))
  const stream = logDestination()
  const app = await buildApp({
    config,
    db,
    jwtSecret,
    databaseUrl,
    logger: { level: config.LOG_LEVEL, serializers: LOGGER_SERIALIZERS, redact: LOGGER_REDACT, stream },
  })
  await app.listen({ port: config.PORT, host: config.HOST })
  const { port } = app.server.address() as { port: number }
  const base = `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${port}`
  const database = embedded ? `embedded, data in ${path.resolve(config.DATA_DIR)}` : 'DATABASE_URL'
  app.log.info(`Parley is up: API docs at ${base}/docs (database: ${database})`)
  stream.flush()
  // The same for a person at a terminal, who should not have to dig a URL out of a JSON line. On stderr, so that
  // stdout stays one JSON object a line for whatever collects the logs.
  process.stderr.write(`\nParley is running.\n  Web client: ${base}/\n  API docs:   ${base}/docs\n  Database:   ${database}\n\n`)
  // Not an onClose hook: those run last-registered first, and the app's own (presence) still need the pool.
  const close = async () => {
    await app.close()
    await db.destroy()
    await embedded?.stop()
  }
  return { app, close }
}

let config: Config
try {
  config = loadConfig()
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  console.error(err.message)
  process.exit(1)
}

const { app, close } = await start(config).catch((err) => {
  console.error(`Parley failed to start: ${(err as Error).message}`)
  process.exit(1)
})

// Errors and signals end the same way: a graceful close, with a deadline. Signals are taken here, not by
// close-with-grace, because npm passes on the signal it gets: under `npm start` one Ctrl+C arrives twice (from
// the terminal and from npm). A repeat within a second is that echo; a later one is someone insisting.
const SIGNALS = ['SIGINT', 'SIGTERM'] as const
const grace = closeWithGrace({ delay: 10_000, skip: [...SIGNALS] }, async ({ err }) => {
  if (err) app.log.error({ err }, 'shutting down after an error')
  await close()
})
let stopping: number | undefined
for (const signal of SIGNALS) {
  process.on(signal, () => {
    if (stopping === undefined) {
      stopping = Date.now()
      app.log.info(`${signal} received, shutting down`)
      void grace.close()
    } else if (Date.now() - stopping > 1000) {
      console.error(`second ${signal}, exiting`)
      process.exit(1)
    }
  })
}
