import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { loadConfig } from '../src/config.ts'
import { assertError, buildTestApp, client, register, type TestApp } from './helper.ts'

type Res = Awaited<ReturnType<TestApp['inject']>>

const login = (app: TestApp, username: string, ip = '10.0.0.1', password = 'Wrong-pass1', headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/auth/login', remoteAddress: ip, headers, payload: { username, password } })
const refresh = (app: TestApp, ip: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: ip, headers, payload: { refresh_token: 'not-a-real-one' } })
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A 429 in the one error shape, with Retry-After in whole seconds, no later than the window (60 s unless said) ends. */
function assertLimited(t: Test, res: Res, { windowMs = 60_000, what = 'limited' }: { windowMs?: number; what?: string } = {}) {
  t.equal(res.statusCode, 429, `${what}: 429`)
  const body = assertError(t, res, 429, 'RATE_LIMITED')
  t.same(Object.keys(body).sort(), ['code', 'error'], 'exactly error and code')
  t.match(res.headers['retry-after'], /^[1-9][0-9]*$/, 'Retry-After is a positive whole number of seconds')
  t.ok(Number(res.headers['retry-after']) <= Math.ceil(windowMs / 1000), 'and no later than the window ends')
}

/** A token with the right form and a made-up subject, signed with nothing the server knows. */
const forged = () => `eyJhbGciOiJIUzI1NiJ9.${Buffer.from(JSON.stringify({ sub: randomUUID() })).toString('base64url')}.c2lnbmF0dXJl`

t.test('login is limited per IP, with Retry-After, in the error shape', async (t) => {
  const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '3' })
  for (let i = 0; i < 3; i++) t.equal((await login(app, `someone${i}`)).statusCode, 401, `attempt ${i + 1} is answered`)
  const limited = await login(app, 'someone_else')
  assertLimited(t, limited)
  t.match(limited.json().error, /retry in \d+ s/, 'the sentence says when to retry')
  t.equal((await login(app, 'someone_else', '10.0.0.2')).statusCode, 401, 'another IP is not affected')
})

t.test('a token sent to /auth/* does not choose its own budget', async (t) => {
  const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '2' })
  const alice = await register(app)
  const as = { authorization: `Bearer ${alice.token}` }
  t.equal((await login(app, 'x1', '10.0.1.1', 'Wrong-pass1', as)).statusCode, 401)
  t.equal((await login(app, 'x2', '10.0.1.1', 'Wrong-pass1', { authorization: `Bearer ${forged()}` })).statusCode, 401)
  assertLimited(t, await login(app, 'x3', '10.0.1.1', 'Wrong-pass1', { authorization: `Bearer ${forged()}` }))
  assertLimited(t, await login(app, 'x4', '10.0.1.1', 'Wrong-pass1', as), { what: 'nor does a valid one' })
})

t.test('login is limited per username too, whatever the IP', async (t) => {
  const { app } = await buildTestApp(t, { LOGIN_RATE_LIMIT_PER_USERNAME: '3' })
  const victim = await register(app, `Victim_${process.pid}`)
  const name = victim.user.username
  for (let i = 0; i < 3; i++) t.equal((await login(app, i % 2 ? name.toUpperCase() : name, `10.1.0.${i}`)).statusCode, 401, `guess ${i + 1} from a new IP`)
  assertLimited(t, await login(app, name.toLowerCase(), '10.1.0.99'), { windowMs: 15 * 60_000 })
  const form = await app.inject({
    method: 'POST',
    url: '/auth/login',
    remoteAddress: '10.1.0.100',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username: name, password: 'Wrong-pass1' }).toString(),
  })
  assertLimited(t, form, { windowMs: 15 * 60_000 })
  assertLimited(t, await login(app, name, '10.1.0.101', 'Passw0rd'), { windowMs: 15 * 60_000 })
  t.pass('even the right password waits for the window: every attempt counts')
  t.equal((await login(app, 'bystander', '10.1.0.99')).statusCode, 401, 'other usernames from those IPs go on')
  t.equal((await client(app, victim).get('/users/me')).statusCode, 200, 'the account\'s open session is not affected')
})

t.test('register is limited per IP', async (t) => {
  const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '2' })
  const reg = (n: number, ip = '10.2.0.1') =>
    app.inject({ method: 'POST', url: '/auth/register', remoteAddress: ip, payload: { username: `reg_${process.pid}_${n}`, password: 'Passw0rd' } })
  t.equal((await reg(1)).statusCode, 201)
  t.equal((await reg(2)).statusCode, 201)
  const limited = await reg(3)
  assertLimited(t, limited)
  t.equal((await reg(3, '10.2.0.2')).statusCode, 201, 'another IP may register')
  t.equal((await login(app, `reg_${process.pid}_1`, '10.2.0.1', 'Passw0rd')).statusCode, 200, 'login from that IP has a count of its own')
})

t.test('refresh is limited per IP', async (t) => {
  const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '2' })
  t.equal((await refresh(app, '10.3.0.1')).statusCode, 401)
  t.equal((await refresh(app, '10.3.0.1')).statusCode, 401)
  assertLimited(t, await refresh(app, '10.3.0.1'))
})

t.test('X-Forwarded-For is believed only from TRUST_PROXY', async (t) => {
  t.test('by default a client cannot dodge the limit with it', async (t) => {
    const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '2' })
    for (const ip of ['1.1.1.1', '2.2.2.2']) t.equal((await refresh(app, '10.4.0.1', { 'x-forwarded-for': ip })).statusCode, 401)
    assertLimited(t, await refresh(app, '10.4.0.1', { 'x-forwarded-for': '3.3.3.3' }))
  })
  t.test('behind a trusted proxy each client has its own count', async (t) => {
    const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '2', TRUST_PROXY: '10.4.0.0/24' })
    for (let i = 0; i < 2; i++) t.equal((await refresh(app, '10.4.0.1', { 'x-forwarded-for': '1.1.1.1' })).statusCode, 401)
    assertLimited(t, await refresh(app, '10.4.0.1', { 'x-forwarded-for': '1.1.1.1' }))
    t.equal((await refresh(app, '10.4.0.1', { 'x-forwarded-for': '2.2.2.2' })).statusCode, 401, 'another client behind the same proxy')
  })
  t.test('IPv6 clients count per /64', async (t) => {
    const { app } = await buildTestApp(t, { AUTH_RATE_LIMIT_MAX: '2' })
    t.equal((await refresh(app, '2001:db8:1:1::1')).statusCode, 401)
    t.equal((await refresh(app, '2001:db8:1:1::2')).statusCode, 401)
    assertLimited(t, await refresh(app, '2001:db8:1:1:ffff::3'))
    t.equal((await refresh(app, '2001:db8:1:2::1')).statusCode, 401, 'another /64 is another client')
  })
})

t.test('other routes: a global limit per user, per IP without a valid token; health never', async (t) => {
  const { app } = await buildTestApp(t, { RATE_LIMIT_MAX: '5' })
  const alice = await register(app)
  const bob = await register(app)
  const as = client(app, alice)
  for (let i = 0; i < 5; i++) t.equal((await as.get('/users/me')).statusCode, 200)
  const limited = await as.get('/users/me')
  assertLimited(t, limited)
  t.equal(limited.headers['x-ratelimit-limit'], '5')
  t.equal((await client(app, bob).get('/users/me')).statusCode, 200, 'counted per user, not per shared IP')
  assertLimited(t, await client(app, alice).get(`/conversations?limit=1`), { what: 'one budget across routes' })

  // Made-up subjects do not each get a budget: an unverified token counts as its IP.
  const stranger = (token: string) => app.inject({ url: '/users/me', remoteAddress: '10.5.0.1', headers: { authorization: `Bearer ${token}` } })
  for (let i = 0; i < 5; i++) t.equal((await stranger(forged())).statusCode, 401, 'a forged token is refused')
  assertLimited(t, await stranger(forged()))
  assertLimited(t, await app.inject({ url: '/openapi.json', remoteAddress: '10.5.0.1' }), { what: 'and that IP is limited everywhere' })
  assertLimited(t, await app.inject({ url: '/no/such/route', remoteAddress: '10.5.0.1' }), { what: 'unknown routes too' })

  for (let i = 0; i < 20; i++) {
    for (const url of ['/health/live', '/health/ready']) {
      const res = await app.inject({ url, remoteAddress: '10.5.0.1', headers: { authorization: `Bearer ${alice.token}` } })
      if (res.statusCode !== 200) t.fail(`${url} answered ${res.statusCode}`)
    }
  }
  t.pass('health checks are never limited, even for a limited IP or user')
})

t.test('limits reset after their window', async (t) => {
  const windows = { RATE_LIMIT_WINDOW_MS: '1000', AUTH_RATE_LIMIT_WINDOW_MS: '1000', LOGIN_RATE_LIMIT_WINDOW_MS: '1000' }
  const { app } = await buildTestApp(t, { RATE_LIMIT_MAX: '3', AUTH_RATE_LIMIT_MAX: '2', LOGIN_RATE_LIMIT_PER_USERNAME: '1', ...windows })
  const alice = await register(app)
  const as = client(app, alice)

  for (let i = 0; i < 3; i++) await as.get('/users/me')
  assertLimited(t, await as.get('/users/me'), { windowMs: 1000 })
  for (let i = 0; i < 2; i++) await refresh(app, '10.6.0.1')
  assertLimited(t, await refresh(app, '10.6.0.1'), { windowMs: 1000 })
  t.equal((await login(app, alice.user.username, '10.6.0.2')).statusCode, 401)
  assertLimited(t, await login(app, alice.user.username, '10.6.0.3', 'Passw0rd'), { windowMs: 1000 })

  await wait(1200)
  t.equal((await as.get('/users/me')).statusCode, 200, 'the global limit')
  t.equal((await refresh(app, '10.6.0.1')).statusCode, 401, 'the per-IP auth limit')
  t.equal((await login(app, alice.user.username, '10.6.0.3', 'Passw0rd')).statusCode, 200, 'the per-username login limit')
})

t.test('security headers on every answer', async (t) => {
  const { app } = await buildTestApp(t, { RATE_LIMIT_MAX: '3' })
  const alice = await register(app)
  const ok = await client(app, alice).get('/users/me')
  const notFound = await client(app, alice).get('/no/such/route')
  await client(app, alice).get('/users/me')
  const limited = await client(app, alice).get('/users/me')
  t.equal(limited.statusCode, 429)
  for (const [what, res] of [['a 200', ok], ['a 404', notFound], ['a 429', limited]] as const) {
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`)
    t.equal(res.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'", `${what}: a CSP that allows nothing`)
    t.notOk(res.headers['x-powered-by'], `${what}: no X-Powered-By`)
    t.ok(res.headers['strict-transport-security'], `${what}: HSTS`)
    t.equal(res.headers['x-frame-options'], 'SAMEORIGIN', `${what}: not framed`)
  }
  t.equal(ok.headers['cross-origin-resource-policy'], 'same-origin', 'without CORS origins, nothing else may embed answers')
  t.notOk(ok.headers['access-control-allow-origin'], 'and no CORS')
  const preflight = await app.inject({ method: 'OPTIONS', url: '/messages', headers: { origin: 'https://chat.example', 'access-control-request-method': 'POST' } })
  t.notOk(preflight.headers['access-control-allow-origin'], 'not even on a preflight')
})

t.test('CORS for the listed origins only', async (t) => {
  const { app } = await buildTestApp(t, { CORS_ORIGINS: 'https://chat.example, http://localhost:5173', RATE_LIMIT_MAX: '2' })
  const alice = await register(app)
  const get = (origin: string) => app.inject({ url: '/users/me', headers: { origin, authorization: `Bearer ${alice.token}` } })

  const allowed = await get('https://chat.example')
  t.equal(allowed.statusCode, 200)
  await get('https://chat.example')
  t.equal(allowed.headers['access-control-allow-origin'], 'https://chat.example')
  t.match(allowed.headers.vary, /origin/i, 'answers vary by origin')
  t.equal(allowed.headers['cross-origin-resource-policy'], 'cross-origin', 'a listed origin may show files in <img>')
  t.equal((await app.inject({ url: '/health/live', headers: { origin: 'http://localhost:5173' } })).headers['access-control-allow-origin'], 'http://localhost:5173')

  for (const origin of ['https://evil.example', 'https://chat.example.evil.example', 'http://chat.example']) {
    const denied = await app.inject({ url: '/health/live', headers: { origin } })
    t.notOk(denied.headers['access-control-allow-origin'], `${origin} gets no CORS grant`)
  }

  const preflight = await app.inject({
    method: 'OPTIONS',
    url: `/messages/${randomUUID()}`,
    headers: { origin: 'https://chat.example', 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'authorization,content-type' },
  })
  t.equal(preflight.statusCode, 204, 'preflight answered')
  t.equal(preflight.headers['access-control-allow-origin'], 'https://chat.example')
  t.match(preflight.headers['access-control-allow-methods'], /PATCH/)
  t.match(preflight.headers['access-control-allow-methods'], /DELETE/)
  t.match(preflight.headers['access-control-allow-headers'], /authorization/)
  t.match(preflight.headers['access-control-allow-headers'], /content-type/)
  t.ok(Number(preflight.headers['access-control-max-age']) > 0, 'and cached by the browser')
  const badPreflight = await app.inject({ method: 'OPTIONS', url: '/messages', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
  t.notOk(badPreflight.headers['access-control-allow-origin'], 'an unlisted origin\'s preflight is not granted')

  const limited = await get('https://chat.example')
  t.equal(limited.statusCode, 429)
  t.equal(limited.headers['access-control-allow-origin'], 'https://chat.example', 'a 429 carries CORS too')
  t.match(limited.headers['access-control-expose-headers'], /retry-after/, 'so the page can read Retry-After')
  for (let i = 0; i < 5; i++) {
    const again = await app.inject({ method: 'OPTIONS', url: '/messages', headers: { origin: 'https://chat.example', 'access-control-request-method': 'POST' } })
    if (again.statusCode !== 204) t.fail(`preflight ${i} answered ${again.statusCode}`)
  }
  t.pass('preflights are not counted')
})

t.test('CORS_ORIGINS=* allows any origin', async (t) => {
  const { app } = await buildTestApp(t, { CORS_ORIGINS: '*' })
  const res = await app.inject({ url: '/health/live', headers: { origin: 'https://anywhere.example' } })
  t.equal(res.headers['access-control-allow-origin'], '*')
})

t.test('Swagger UI still loads under its own CSP', async (t) => {
  const { app } = await buildTestApp(t)
  t.equal((await app.inject('/docs')).statusCode, 200, '/docs')
  const page = await app.inject('/docs/')
  t.equal(page.statusCode, 200, '/docs/')
  t.match(page.headers['content-type'], /text\/html/)
  const csp = page.headers['content-security-policy'] as string
  t.match(csp, /script-src 'self'/, 'its scripts may load')
  t.match(csp, /style-src 'self'/, 'and its styles')
  t.notMatch(csp, /upgrade-insecure-requests/, 'and are not sent to https:// when served over http')
  t.notMatch(csp, /'unsafe-(inline|eval)'/, 'nothing inline or eval\'d is allowed')
  t.notMatch(page.body, /<script>|<style>|\son[a-z]+=/i, 'and the page needs nothing inline')

  const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1])
  t.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), `scripts and styles: ${assets.join(', ')}`)
  for (const asset of assets) {
    t.notMatch(asset, /^(https?:)?\/\//, `${asset} is from this origin`)
    const res = await app.inject(new URL(asset, 'http://localhost/docs/').pathname)
    t.equal(res.statusCode, 200, `${asset} is served`)
    if (asset.endsWith('.js')) t.match(res.headers['content-type'], /javascript/, `${asset} is JavaScript`)
    if (asset.endsWith('.css')) t.match(res.headers['content-type'], /text\/css/, `${asset} is CSS`)
  }
  const spec = await app.inject('/docs/json')
  t.equal(spec.statusCode, 200, 'the spec Swagger UI reads')
  t.ok(spec.json().paths['/auth/login'], 'with the routes')
})

t.test('configuration', async (t) => {
  const c = loadConfig({})
  t.match(c, {
    RATE_LIMIT_MAX: 600,
    RATE_LIMIT_WINDOW_MS: 60_000,
    AUTH_RATE_LIMIT_MAX: 20,
    AUTH_RATE_LIMIT_WINDOW_MS: 60_000,
    LOGIN_RATE_LIMIT_PER_USERNAME: 10,
    LOGIN_RATE_LIMIT_WINDOW_MS: 15 * 60_000,
    CORS_ORIGINS: '',
    TRUST_PROXY: '',
  })
  for (const ok of ['*', 'https://chat.example', 'https://a.example, http://localhost:5173']) t.doesNotThrow(() => loadConfig({ CORS_ORIGINS: ok }), ok)
  // Origins never end with a slash or carry a path: such an entry would silently match nothing.
  for (const bad of ['https://chat.example/', 'chat.example', 'https://a.example/app', 'https://a.example;https://b.example']) {
    t.throws(() => loadConfig({ CORS_ORIGINS: bad }), /CORS_ORIGINS/, `${bad} is refused`)
  }
  for (const ok of ['true', '10.0.0.0/8', '10.0.0.1, 192.168.0.0/16', '::1']) t.doesNotThrow(() => loadConfig({ TRUST_PROXY: ok }), ok)
  for (const bad of ['yes', 'loadbalancer.internal']) t.throws(() => loadConfig({ TRUST_PROXY: bad }), /TRUST_PROXY/, `${bad} is refused`)
  t.throws(() => loadConfig({ RATE_LIMIT_MAX: '0' }), /RATE_LIMIT_MAX/, 'a limit is at least 1')
})
