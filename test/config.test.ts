import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.ts'

t.test('defaults', async (t) => {
  const c = loadConfig({})
  t.match(c, { NODE_ENV: 'development', PORT: 3000, HOST: '127.0.0.1', ACCESS_TOKEN_TTL: 900, FILE_STORAGE: 'postgres', BODY_LIMIT: 1048576 })
  t.equal(c.DATABASE_URL, undefined, 'no DATABASE_URL means the embedded database')
})

t.test('values are parsed to their types', async (t) => {
  const c = loadConfig({ PORT: '8080', ACCESS_TOKEN_TTL: '60', DATABASE_URL: 'postgres://u@h/db' })
  t.equal(c.PORT, 8080)
  t.equal(c.ACCESS_TOKEN_TTL, 60)
})

t.test('a malformed value is one clear line', async (t) => {
  for (const [env, name] of [
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ JWT_SECRET: 'short' }, 'JWT_SECRET'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
  ] as const) {
    const err = t.throws(() => loadConfig(env)) as Error
    t.ok(err instanceof ConfigError)
    t.match(err.message, new RegExp(`^Invalid configuration: .*${name}`), `${name} is named`)
    t.notMatch(err.message, /\n/, 'one line')
  }
})

t.test('the file storage: s3 needs its bucket, both keys or neither; a postgres upload needs a spare connection', async (t) => {
  t.throws(() => loadConfig({ FILE_STORAGE: 'disk' }), /FILE_STORAGE/)
  t.throws(() => loadConfig({ FILE_STORAGE: 's3' }), /S3_BUCKET/)
  t.throws(() => loadConfig({ FILE_STORAGE: 's3', S3_BUCKET: 'files', S3_ACCESS_KEY_ID: 'id' }), /S3_SECRET_ACCESS_KEY/)
  t.match(loadConfig({ FILE_STORAGE: 's3', S3_BUCKET: 'files', S3_FORCE_PATH_STYLE: 'true' }), { FILE_STORAGE: 's3', S3_FORCE_PATH_STYLE: true, S3_REGION: 'us-east-1' })
  t.throws(() => loadConfig({ DB_POOL_MAX: '4', UPLOAD_MAX_CONCURRENT: '4' }), /UPLOAD_MAX_CONCURRENT must be below DB_POOL_MAX/)
  t.equal(loadConfig({ FILE_STORAGE: 's3', S3_BUCKET: 'files', DB_POOL_MAX: '4', UPLOAD_MAX_CONCURRENT: '4' }).UPLOAD_MAX_CONCURRENT, 4, 'S3 uploads hold no connection')
})

t.test('production refuses to start without its own JWT_SECRET', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'production' }), /JWT_SECRET/)
  t.equal(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'p'.repeat(40) }).NODE_ENV, 'production')
})
