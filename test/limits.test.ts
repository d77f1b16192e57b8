import t from 'tap'
import { assertError, buildTestApp, client, register } from './helper.ts'

const login = (app: Awaited<ReturnType<typeof buildTestApp>>['app'], username: string, ip = '10.0.0.1') =>
  app.inject({ method: 'POST', url: '/auth/login', remoteAddress: ip, payload: { username, password: 'Wrong-pass1' } })

t.test('login is limited per IP, with Retry-After, in the error shape', async (t) => {
  const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' })
  for (let i = 0; i < 3; i++) t.equal((await login(app, `someone${i}`)).statusCode, 401)
  const limited = await login(app, 'someone_else')
  assertError(t, limited, 429, 'RATE_LIMITED')
  t.match(limited.headers['retry-after'], /^[1-9][0-9]*$/, 'Retry-After in whole seconds')
  t.equal((await login(app, 'someone_else', '10.0.0.2')).statusCode, 401, 'another IP is not affected')
})

t.test('login is limited per username too, whatever the IP', async (t) => {
  const { app } = await buildTestApp(t, { LOGIN_RATE_LIMIT_PER_USERNAME: '3' })
  for (let i = 0; i < 3; i++) t.equal((await login(app, 'Victim', `10.1.0.${i}`)).statusCode, 401)
  assertError(t, await login(app, 'victim', '10.1.0.99'), 429, 'RATE_LIMITED')
  t.equal((await login(app, 'bystander', '10.1.0.99')).statusCode, 401, 'other usernames from that IP go on')
})

t.test('register is limited per IP', async (t) => {
  const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '2' })
  const reg = (n: number) => app.inject({ method: 'POST', url: '/auth/register', remoteAddress: '10.2.0.1', payload: { username: `reg_${process.pid}_${n}`, password: 'Passw0rd' } })
  t.equal((await reg(1)).statusCode, 201)
  t.equal((await reg(2)).statusCode, 201)
  assertError(t, await reg(3), 429, 'RATE_LIMITED')
})

t.test('other routes have a global limit per user, health never, and a window ends', async (t) => {
  const { app } = await buildTestApp(t, { RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '1000' })
  const alice = await register(app)
  const bob = await register(app)
  const as = client(app, alice)
  for (let i = 0; i < 5; i++) t.equal((await as.get('/users/me')).statusCode, 200)
  assertError(t, await as.get('/users/me'), 429, 'RATE_LIMITED')
  t.equal((await client(app, bob).get('/users/me')).statusCode, 200, 'counted per user, not per shared IP')
  for (let i = 0; i < 10; i++) t.equal((await app.inject('/health/live')).statusCode, 200)
  await new Promise((r) => setTimeout(r, 1100))
  t.equal((await as.get('/users/me')).statusCode, 200, 'allowed again after the window')
})

t.test('security headers and CORS', async (t) => {
  const { app } = await buildTestApp(t, { CORS_ORIGINS: 'https://chat.example' })
  const alice = await register(app)
  const res = await client(app, alice).get('/users/me')
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.match(res.headers['content-security-policy'], /default-src 'none'/)
  t.notOk(res.headers['x-powered-by'])
  t.ok(res.headers['strict-transport-security'])

  const allowed = await app.inject({ method: 'GET', url: '/health/live', headers: { origin: 'https://chat.example' } })
  t.equal(allowed.headers['access-control-allow-origin'], 'https://chat.example')
  const denied = await app.inject({ method: 'GET', url: '/health/live', headers: { origin: 'https://evil.example' } })
  t.notOk(denied.headers['access-control-allow-origin'], 'an unlisted origin gets no CORS grant')
  const preflight = await app.inject({ method: 'OPTIONS', url: '/messages', headers: { origin: 'https://chat.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } })
  t.equal(preflight.statusCode, 204)
  t.match(preflight.headers['access-control-allow-headers'], /authorization/)

  const docs = await app.inject('/docs/')
  t.equal(docs.statusCode, 200)
  const scripts = [...docs.body.matchAll(/src="\.?\/?([^"]+\.js)"/g)].map((m) => m[1])
  t.ok(scripts.length > 0, 'the docs page loads scripts')
  for (const s of scripts) t.equal((await app.inject(`/docs/${s.replace(/^docs\//, '')}`)).statusCode, 200, `${s} is served`)
  t.match(docs.headers['content-security-policy'] ?? '', /script-src/, 'the docs page has a CSP of its own that allows its scripts')
})
