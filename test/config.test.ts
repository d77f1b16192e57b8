import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.ts'

t.test('defaults', async (t) => {
  const c = loadConfig({})
  t.match(c, { NODE_ENV: 'development', PORT: 3000, HOST: '127.0.0.1', ACCESS_TOKEN_TTL: 900, UPLOAD_DIR: 'uploads', BODY_LIMIT: 1048576 })
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

t.test('production refuses to start without its own JWT_SECRET', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'production' }), /JWT_SECRET/)
  t.equal(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'p'.repeat(40) }).NODE_ENV, 'production')
})
