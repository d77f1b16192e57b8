import { envSchema } from 'env-schema'
import { Type, type Static } from 'typebox'
import type { StorageConfig } from './services/file-storage/index.ts'

const ConfigSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  HOST: Type.String({ default: '127.0.0.1' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATA_DIR: Type.String({ default: '.data' }),
  DB_POOL_MAX: Type.Integer({ minimum: 1, default: 10 }),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  ACCESS_TOKEN_TTL: Type.Integer({ minimum: 10, default: 900 }),
  REFRESH_TOKEN_TTL: Type.Integer({ minimum: 60, default: 30 * 24 * 3600 }),
  BODY_LIMIT: Type.Integer({ minimum: 1024, default: 1024 * 1024 }),
  MAX_GROUP_SIZE: Type.Integer({ minimum: 2, default: 256 }),
  // Messages that queue behind busy inserts are written together, up to this many per transaction (1: one each).
  MESSAGE_BATCH_MAX: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 600 }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 100, default: 60_000 }),
  // How the global limit holds across instances: each allows RATE_LIMIT_MAX ÷ the live instances, or one count in PostgreSQL.
  RATE_LIMIT_STORE: Type.Union([Type.Literal('divided'), Type.Literal('postgres')], { default: 'divided' }),
  AUTH_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 20 }),
  AUTH_RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 100, default: 60_000 }),
  LOGIN_RATE_LIMIT_PER_USERNAME: Type.Integer({ minimum: 1, default: 10 }),
  LOGIN_RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 100, default: 15 * 60_000 }),
  // GET /users/me/export: per user per window, on top of the global limit; and at most so many at once per
  // instance, each cut off after EXPORT_TIMEOUT_MS (each holds a pool connection while its client reads).
  EXPORT_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 2 }),
  EXPORT_RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 100, default: 3_600_000 }),
  EXPORT_MAX_CONCURRENT: Type.Integer({ minimum: 1, default: 2 }),
  EXPORT_TIMEOUT_MS: Type.Integer({ minimum: 1000, default: 10 * 60_000 }),
  // Origins as browsers send them: scheme://host[:port], no path or trailing slash; or `*`.
  CORS_ORIGINS: Type.String({ default: '', pattern: '^\\s*((\\*|https?://[^/,\\s]+)\\s*(,\\s*(\\*|https?://[^/,\\s]+)\\s*)*)?$' }),
  // Whose X-Forwarded-For to believe for the client IP: empty (nobody), `true` (any peer), or the proxies' addresses/CIDRs.
  TRUST_PROXY: Type.String({ default: '', pattern: '^(|true|false|[0-9a-fA-F.:/]+(\\s*,\\s*[0-9a-fA-F.:/]+)*)$' }),
  MAX_UPLOAD_BYTES: Type.Integer({ minimum: 1024, default: 25 * 1024 * 1024 }),
  MAX_AVATAR_BYTES: Type.Integer({ minimum: 1024, default: 5 * 1024 * 1024 }),
  // The most pixels an uploaded image may have (width × height, first frame): beyond, 413 before it is decoded.
  // 100 million is more than a camera's photo (a phone saves 12–50 MP) and far less than a decompression bomb's.
  IMAGE_MAX_PIXELS: Type.Integer({ minimum: 1, default: 100_000_000 }),
  // Per user: the bytes of all their stored files, and uploads started per window (each counted before a byte
  // is read; with MAX_UPLOAD_BYTES, a bound on what one account can write).
  UPLOAD_QUOTA_BYTES: Type.Integer({ minimum: 0, default: 1024 ** 3 }),
  UPLOAD_RATE_MAX: Type.Integer({ minimum: 1, default: 30 }),
  UPLOAD_RATE_WINDOW_MS: Type.Integer({ minimum: 100, default: 60_000 }),
  // Uploads streaming at once per instance (503 beyond): on PostgreSQL each holds a pool connection while its
  // client sends; and how long one may take (408), so that a stalled client gives its slot back.
  UPLOAD_MAX_CONCURRENT: Type.Integer({ minimum: 1, default: 4 }),
  UPLOAD_TIMEOUT_MS: Type.Integer({ minimum: 1000, default: 5 * 60_000 }),
  // Where files' bytes live: in the database (every instance shares it already), or an S3-compatible bucket.
  FILE_STORAGE: Type.Union([Type.Literal('postgres'), Type.Literal('s3')], { default: 'postgres' }),
  // All stored files together, bytes: uploads past it stop with 507. Unset: no cap (the storage's own disk is
  // not visible from an instance; set this below what the database's disk can spare).
  FILE_STORAGE_MAX_BYTES: Type.Optional(Type.Integer({ minimum: 0 })),
  S3_BUCKET: Type.Optional(Type.String({ minLength: 3 })),
  S3_REGION: Type.String({ default: 'us-east-1' }),
  S3_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://' })),
  S3_FORCE_PATH_STYLE: Type.Boolean({ default: false }),
  S3_ACCESS_KEY_ID: Type.Optional(Type.String({ minLength: 1 })),
  S3_SECRET_ACCESS_KEY: Type.Optional(Type.String({ minLength: 1 })),
  // Seconds a signed file URL (GET /files/{id}/url) is asked to live; each lives between one and two of these.
  FILE_URL_TTL: Type.Integer({ minimum: 10, default: 300 }),
  WS_MAX_PAYLOAD: Type.Integer({ minimum: 1024, default: 64 * 1024 }),
  WS_MAX_BUFFERED: Type.Integer({ minimum: 1024, default: 1024 * 1024 }),
  WS_PING_INTERVAL: Type.Integer({ minimum: 100, default: 30_000 }),
  WS_MAX_SOCKETS_PER_USER: Type.Integer({ minimum: 1, default: 20 }),
  TYPING_TTL: Type.Integer({ minimum: 100, default: 6000 }),
  LISTENER_PROBE_INTERVAL: Type.Integer({ minimum: 100, default: 5000 }),
  PRESENCE_HEARTBEAT: Type.Integer({ minimum: 100, default: 10_000 }),
  PRESENCE_TTL: Type.Integer({ minimum: 300, default: 30_000 }),
  // Outgoing deliveries (webhooks, Web Push), run by graphile-worker jobs in every instance.
  JOBS_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 100, default: 4 }),
  // How often a worker looks for jobs due later (a retry); new jobs wake it at once (LISTEN).
  JOBS_POLL_INTERVAL: Type.Integer({ minimum: 50, default: 2000 }),
  // A delivery is tried this many times (backoff e^n seconds: 3 s, 7 s, 20 s, … 6 h), then its webhook is disabled.
  WEBHOOK_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 25, default: 10 }),
  WEBHOOK_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 10_000 }),
  // Receivers on private, loopback or link-local addresses (a local bot, or the tests) are refused unless this is set.
  WEBHOOK_ALLOW_PRIVATE: Type.Boolean({ default: false }),
  WEBHOOKS_PER_USER: Type.Integer({ minimum: 1, default: 20 }),
  // Web Push (VAPID, RFC 8292): `npx web-push generate-vapid-keys`. Unset: push is off (404 PUSH_NOT_CONFIGURED).
  VAPID_PUBLIC_KEY: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{80,100}$' })),
  VAPID_PRIVATE_KEY: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{40,50}$' })),
  // Who runs this server, for push services to reach: mailto: or https:.
  VAPID_SUBJECT: Type.String({ default: 'mailto:admin@localhost', pattern: '^(mailto:|https://)' }),
  // At most one notification per conversation per user in this many seconds.
  PUSH_INTERVAL: Type.Integer({ minimum: 0, default: 60 }),
})

export type Config = Static<typeof ConfigSchema>

/** Reads and validates the environment; throws one readable line on a bad or missing value. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  let config: Config
  try {
    config = envSchema<Config>({ schema: ConfigSchema, data: env, dotenv: false, env: false })
  } catch (err) {
    throw new ConfigError(`Invalid configuration: ${(err as Error).message}`)
  }
  if (config.NODE_ENV === 'production' && !config.JWT_SECRET) {
    throw new ConfigError('Invalid configuration: JWT_SECRET (32+ characters) must be set when NODE_ENV=production')
  }
  if (config.FILE_STORAGE === 's3' && !config.S3_BUCKET) throw new ConfigError('Invalid configuration: FILE_STORAGE=s3 needs S3_BUCKET')
  if (!config.S3_ACCESS_KEY_ID !== !config.S3_SECRET_ACCESS_KEY) {
    throw new ConfigError('Invalid configuration: set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither (the SDK then finds credentials itself)')
  }
  if (config.FILE_STORAGE === 'postgres' && config.UPLOAD_MAX_CONCURRENT >= config.DB_POOL_MAX) {
    throw new ConfigError('Invalid configuration: UPLOAD_MAX_CONCURRENT must be below DB_POOL_MAX with FILE_STORAGE=postgres (each upload holds a connection)')
  }
  if (!config.VAPID_PUBLIC_KEY !== !config.VAPID_PRIVATE_KEY) {
    throw new ConfigError('Invalid configuration: set both VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY, or neither (Web Push is then off)')
  }
  return config
}

/** The file storage the configuration names. */
export function storageConfig(config: Config): StorageConfig {
  if (config.FILE_STORAGE === 'postgres') return { kind: 'postgres' }
  return {
    kind: 's3',
    bucket: config.S3_BUCKET!,
    region: config.S3_REGION,
    endpoint: config.S3_ENDPOINT,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    credentials: config.S3_ACCESS_KEY_ID ? { accessKeyId: config.S3_ACCESS_KEY_ID, secretAccessKey: config.S3_SECRET_ACCESS_KEY! } : undefined,
    uploadTimeoutMs: config.UPLOAD_TIMEOUT_MS,
    sweepIntervalMs: 10 * 60_000,
  }
}

export class ConfigError extends Error {}

/** TRUST_PROXY as Fastify's `trustProxy` option. */
export function trustProxy(value: string): boolean | string {
  return value === 'true' ? true : value === '' || value === 'false' ? false : value
}
