import { createHmac, randomUUID } from 'node:crypto'
import t from 'tap'
import { assertError, buildTestApp, client, JWT_SECRET, register, sessionIdOf, uniqueName, type TestApp } from './helper.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/

const post = (app: TestApp, url: string, payload: Record<string, unknown>) => app.inject({ method: 'POST', url, payload })
const login = (app: TestApp, username: string, password = 'Passw0rd') => post(app, '/auth/login', { username, password })
const refresh = (app: TestApp, refresh_token: string) => post(app, '/auth/refresh', { refresh_token })
const me = (app: TestApp, token: string) => client(app, { token }).get('/users/me')

// These groups register and refresh dozens of times a minute from one address, which the per-IP auth limit
// exists to stop; test/limits.test.ts tests that limit itself.
const MANY_AUTH_CALLS = { AUTH_RATE_LIMIT_MAX: '1000' }

/** An HS256 JWT signed by hand, so the secret and the claims are entirely the test's. */
function handSigned(secret: string, claims: Record<string, unknown>) {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const head = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`
}

t.test('register', async (t) => {
  const { app, db, config } = await buildTestApp(t, MANY_AUTH_CALLS)

  t.test('answers 201 with a token pair and the new user', async (t) => {
    const username = uniqueName('Reg')
    const res = await post(app, '/auth/register', { username, password: 'Passw0rd', email: `${username}@example.com`, display_name: 'Régine' })
    t.equal(res.statusCode, 201)
    const body = res.json()
    t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type', 'user'])
    t.equal(body.token_type, 'bearer')
    t.equal(body.expires_in, config.ACCESS_TOKEN_TTL)
    t.type(body.access_token, 'string')
    t.type(body.refresh_token, 'string')
    t.not(body.access_token, body.refresh_token)
    t.match(body.user, { username, email: `${username}@example.com`, display_name: 'Régine', avatar_url: null, is_online: false })
    t.match(body.user.id, UUID)
    t.match(body.user.created_at, ISO)
    t.notOk('password_hash' in body.user || 'password' in body.user, 'no secret in the user')

    // The access token says what expires_in says, and it works right away.
    const decoded = app.jwt.decode<{ sub: string; iat: number; exp: number }>(body.access_token)!
    t.equal(decoded.sub, body.user.id)
    t.equal(decoded.exp - decoded.iat, body.expires_in)
    const profile = await me(app, body.access_token)
    t.equal(profile.statusCode, 200)
    t.equal(profile.json().id, body.user.id)
  })

  t.test('display name defaults to the username, email to null', async (t) => {
    const username = uniqueName('Plain')
    const res = await post(app, '/auth/register', { username, password: 'Passw0rd' })
    t.equal(res.statusCode, 201)
    t.match(res.json().user, { username, display_name: username, email: null })
  })

  t.test('the password is stored as an argon2id hash, never in clear', async (t) => {
    const s = await register(app, uniqueName(), { password: 'S3cretPassword' })
    const row = await db.selectFrom('users').select('password_hash').where('id', '=', s.user.id).executeTakeFirstOrThrow()
    t.match(row.password_hash, /^\$argon2id\$/)
    t.notOk(row.password_hash.includes('S3cretPassword'))
  })

  t.test('username rules', async (t) => {
    const bad = ['ab', 'a'.repeat(33), 'abc\n', 'has-dash', 'has space', 'dot.ted', 'ünïcode', 'semi;colon', '']
    for (const username of bad) {
      const res = await post(app, '/auth/register', { username, password: 'Passw0rd' })
      const body = assertError(t, res, 400, 'VALIDATION_ERROR')
      t.ok(Array.isArray(body.details) && body.details.length > 0, `details for ${JSON.stringify(username)}`)
      t.match(body.details.join(' '), /username/)
    }
    for (const username of ['abc', `Z_${'9'.repeat(30)}`, 'Under_Score_1']) {
      const res = await post(app, '/auth/register', { username, password: 'Passw0rd' })
      t.equal(res.statusCode, 201, `${username} (${username.length} chars) is accepted`)
      t.equal(res.json().user.username, username, 'case is kept as given')
    }
  })

  t.test('usernames are unique case-insensitively', async (t) => {
    const username = uniqueName('Taken')
    await register(app, username)
    for (const again of [username, username.toLowerCase(), username.toUpperCase()]) {
      const res = await post(app, '/auth/register', { username: again, password: 'Passw0rd' })
      assertError(t, res, 409, 'USERNAME_TAKEN')
    }
  })

  t.test('emails are unique', async (t) => {
    const email = `${uniqueName('mail')}@Example.com`
    await register(app, uniqueName(), { email })
    for (const again of [email, email.toLowerCase(), email.toUpperCase()]) {
      const res = await post(app, '/auth/register', { username: uniqueName(), password: 'Passw0rd', email: again })
      assertError(t, res, 409, 'EMAIL_TAKEN')
    }
    const bad = await post(app, '/auth/register', { username: uniqueName(), password: 'Passw0rd', email: 'not-an-email' })
    assertError(t, bad, 400, 'VALIDATION_ERROR')
  })

  t.test('password rules', async (t) => {
    const bad = { 'too short': 'Sh0rtPw', 'no upper': 'passw0rd', 'no lower': 'PASSW0RD', 'no digit': 'Password', empty: '' }
    for (const [why, password] of Object.entries(bad)) {
      const username = uniqueName()
      const res = await post(app, '/auth/register', { username, password })
      const body = assertError(t, res, 400, 'VALIDATION_ERROR')
      t.ok(Array.isArray(body.details) && body.details.length > 0, `${why}: details`)
      t.match(body.details.join(' '), /password/, `${why}: details name the password`)
      t.equal(await db.selectFrom('users').select('id').where('username', '=', username).executeTakeFirst(), undefined, `${why}: no user created`)
    }
    const ok = await post(app, '/auth/register', { username: uniqueName(), password: 'aB3aaaaa' })
    t.equal(ok.statusCode, 201, 'exactly 8 characters with upper, lower and digit is enough')
  })

  t.test('missing fields, wrong types and unknown fields are refused', async (t) => {
    const username = uniqueName()
    const cases: Record<string, unknown>[] = [
      { username },
      { password: 'Passw0rd' },
      { username, password: 12345678 },
      { username, password: 'Passw0rd', is_admin: true },
      { username, password: 'Passw0rd', password_hash: 'x' },
    ]
    for (const payload of cases) {
      const res = await post(app, '/auth/register', payload)
      assertError(t, res, 400, 'VALIDATION_ERROR')
    }
    t.equal(await db.selectFrom('users').select('id').where('username', '=', username).executeTakeFirst(), undefined, 'nothing was created')
  })
})

t.test('login', async (t) => {
  const { app } = await buildTestApp(t)
  const username = uniqueName('Login')
  const registered = await register(app, username, { email: `${username}@example.com` })

  t.test('with JSON', async (t) => {
    const res = await login(app, username)
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.equal(body.token_type, 'bearer')
    t.type(body.expires_in, 'number')
    t.match(body.user, { id: registered.user.id, username, email: `${username}@example.com` })
    t.not(body.refresh_token, registered.refresh, 'a new session')
    t.equal((await me(app, body.access_token)).json().id, registered.user.id)
    t.equal((await refresh(app, body.refresh_token)).statusCode, 200, 'its refresh token works')
  })

  t.test('form-encoded, as Swagger UI\'s OAuth2 password flow sends it', async (t) => {
    const form = new URLSearchParams({ grant_type: 'password', username, password: 'Passw0rd', scope: '' })
    const res = await app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form.toString(),
    })
    t.equal(res.statusCode, 200)
    t.equal(res.json().token_type, 'bearer')
    t.equal(res.json().user.id, registered.user.id)
    t.equal((await me(app, res.json().access_token)).statusCode, 200)

    const wrong = await app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ grant_type: 'password', username, password: 'Wr0ngPassword' }).toString(),
    })
    assertError(t, wrong, 401, 'INVALID_CREDENTIALS')
  })

  t.test('the username is case-insensitive', async (t) => {
    for (const variant of [username.toLowerCase(), username.toUpperCase()]) {
      const res = await login(app, variant)
      t.equal(res.statusCode, 200, variant)
      t.equal(res.json().user.id, registered.user.id)
      t.equal(res.json().user.username, username, 'the stored spelling is returned')
    }
  })

  t.test('the password is case-sensitive', async (t) => {
    assertError(t, await login(app, username, 'pASSW0RD'), 401, 'INVALID_CREDENTIALS')
  })

  t.test('wrong password and unknown user look the same', async (t) => {
    const wrong = await login(app, username, 'Wr0ngPassword')
    const unknown = await login(app, uniqueName('nobody'), 'Passw0rd')
    assertError(t, wrong, 401, 'INVALID_CREDENTIALS')
    assertError(t, unknown, 401, 'INVALID_CREDENTIALS')
    t.same(wrong.json(), unknown.json(), 'same body')
    t.notOk('access_token' in wrong.json())
  })

  t.test('a malformed body is a 400', async (t) => {
    assertError(t, await post(app, '/auth/login', { username }), 400, 'VALIDATION_ERROR')
    assertError(t, await post(app, '/auth/login', { username, password: '' }), 400, 'VALIDATION_ERROR')
    const notJson = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"username":' })
    assertError(t, notJson, 400)
  })
})

t.test('refresh', async (t) => {
  const { app, db } = await buildTestApp(t, MANY_AUTH_CALLS)

  t.test('returns a new working pair; the old refresh token then fails', async (t) => {
    const s = await register(app)
    const res = await refresh(app, s.refresh)
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.equal(body.token_type, 'bearer')
    t.equal(body.user.id, s.user.id)
    t.not(body.refresh_token, s.refresh, 'a new refresh token')
    t.equal((await me(app, body.access_token)).json().id, s.user.id, 'the new access token works')

    assertError(t, await refresh(app, s.refresh), 401)
  })

  t.test('a chain of refreshes keeps working', async (t) => {
    const s = await register(app)
    let token = s.refresh
    for (let i = 0; i < 3; i++) {
      const res = await refresh(app, token)
      t.equal(res.statusCode, 200, `refresh ${i + 1}`)
      t.not(res.json().refresh_token, token)
      token = res.json().refresh_token
    }
  })

  t.test('reusing a spent token revokes its whole family, and only that family', async (t) => {
    const s = await register(app)
    const other = (await login(app, s.user.username)).json() // a second, independent session

    const first = await refresh(app, s.refresh)
    t.equal(first.statusCode, 200)
    const newest = first.json().refresh_token

    assertError(t, await refresh(app, s.refresh), 401, 'REFRESH_TOKEN_REUSED')
    assertError(t, await refresh(app, newest), 401, 'INVALID_REFRESH_TOKEN')
    assertError(t, await refresh(app, s.refresh), 401)

    const unaffected = await refresh(app, other.refresh_token)
    t.equal(unaffected.statusCode, 200, 'the other login\'s family still works')
    t.equal((await refresh(app, unaffected.json().refresh_token)).statusCode, 200)
  })

  t.test('a token presented twice at once: one refresh wins, and the reuse still revokes what it got', async (t) => {
    // Two clients racing with the same token (a stolen copy): the loser's reuse must also end the winner's new session.
    for (let i = 0; i < 10; i++) {
      const s = await register(app)
      const both = await Promise.all([refresh(app, s.refresh), refresh(app, s.refresh)])
      const won = both.filter((r) => r.statusCode === 200)
      const lost = both.filter((r) => r.statusCode !== 200)
      t.equal(won.length, 1, `round ${i}: exactly one refresh succeeds`)
      t.equal(lost.length, 1)
      t.equal(lost[0]?.json().code, 'REFRESH_TOKEN_REUSED')
      if (won.length !== 1) continue
      assertError(t, await refresh(app, won[0].json().refresh_token), 401, 'INVALID_REFRESH_TOKEN')
    }
  })

  t.test('unknown, expired or malformed tokens are refused', async (t) => {
    assertError(t, await refresh(app, 'not-a-real-refresh-token'), 401, 'INVALID_REFRESH_TOKEN')

    const s = await register(app)
    await db.updateTable('refresh_tokens').set({ expires_at: new Date(Date.now() - 1000) }).where('user_id', '=', s.user.id).execute()
    assertError(t, await refresh(app, s.refresh), 401, 'INVALID_REFRESH_TOKEN')

    assertError(t, await post(app, '/auth/refresh', {}), 400, 'VALIDATION_ERROR')
    assertError(t, await post(app, '/auth/refresh', { refresh_token: '' }), 400, 'VALIDATION_ERROR')
  })

  t.test('an access token is not a refresh token', async (t) => {
    const s = await register(app)
    assertError(t, await refresh(app, s.token), 401, 'INVALID_REFRESH_TOKEN')
  })
})

t.test('logout', async (t) => {
  const { app } = await buildTestApp(t)

  t.test('ends the session of that refresh token', async (t) => {
    const s = await register(app)
    const other = (await login(app, s.user.username)).json()
    const res = await client(app, s).post('/auth/logout', { refresh_token: s.refresh })
    t.equal(res.statusCode, 204)
    t.equal(res.body, '')
    assertError(t, await refresh(app, s.refresh), 401)
    t.equal((await refresh(app, other.refresh_token)).statusCode, 200, 'another session of the same user is untouched')
  })

  t.test('ends the newest token of the session too', async (t) => {
    const s = await register(app)
    const next = (await refresh(app, s.refresh)).json()
    t.equal((await client(app, s).post('/auth/logout', { refresh_token: s.refresh })).statusCode, 204)
    assertError(t, await refresh(app, next.refresh_token), 401)
  })

  t.test('needs a bearer token', async (t) => {
    const s = await register(app)
    assertError(t, await client(app).post('/auth/logout', { refresh_token: s.refresh }), 401)
    t.equal((await refresh(app, s.refresh)).statusCode, 200, 'the session was not ended')
  })

  t.test('cannot end someone else\'s session', async (t) => {
    const victim = await register(app)
    const mallory = await register(app)
    t.equal((await client(app, mallory).post('/auth/logout', { refresh_token: victim.refresh })).statusCode, 204)
    t.equal((await refresh(app, victim.refresh)).statusCode, 200, 'the victim\'s refresh token still works')
  })

  t.test('an unknown refresh token is quietly ignored', async (t) => {
    const s = await register(app)
    t.equal((await client(app, s).post('/auth/logout', { refresh_token: 'whatever' })).statusCode, 204)
    assertError(t, await client(app, s).post('/auth/logout', {}), 400, 'VALIDATION_ERROR')
  })
})

t.test('access tokens', async (t) => {
  const { app } = await buildTestApp(t)
  const s = await register(app)

  t.test('missing or garbage', async (t) => {
    assertError(t, await client(app).get('/users/me'), 401)
    assertError(t, await me(app, 'garbage'), 401)
    assertError(t, await me(app, ''), 401)
    const basic = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: 'Basic dXNlcjpwYXNz' } })
    assertError(t, basic, 401)
    const tampered = s.token.slice(0, -4) + (s.token.endsWith('AAAA') ? 'BBBB' : 'AAAA')
    assertError(t, await me(app, tampered), 401)
  })

  t.test('a refresh token is not an access token', async (t) => {
    assertError(t, await me(app, s.refresh), 401)
  })

  t.test('an expired token is TOKEN_EXPIRED', async (t) => {
    const sid = sessionIdOf(s.token)
    const expired = app.jwt.sign({ sub: s.user.id, sid }, { expiresIn: 10, clockTimestamp: Date.now() - 60_000 })
    const body = assertError(t, await me(app, expired), 401, 'TOKEN_EXPIRED')
    t.match(body.error, /expired/i)
    // The same claims, not yet expired, are fine: it is the expiry that is refused.
    const fresh = app.jwt.sign({ sub: s.user.id, sid }, { expiresIn: 10 })
    t.equal((await me(app, fresh)).statusCode, 200)
  })

  t.test('a token signed with another secret is refused', async (t) => {
    const now = Math.floor(Date.now() / 1000)
    const claims = { sub: s.user.id, sid: sessionIdOf(s.token), iat: now, exp: now + 600 }
    t.equal((await me(app, handSigned(JWT_SECRET, claims))).statusCode, 200, 'control: the real secret works')
    const forged = assertError(t, await me(app, handSigned('another-secret-that-is-at-least-32-chars', claims)), 401)
    t.not(forged.code, 'TOKEN_EXPIRED')
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`
    assertError(t, await me(app, none), 401)
  })

  t.test('a token of a user that does not exist is refused', async (t) => {
    assertError(t, await me(app, app.jwt.sign({ sub: randomUUID(), sid: randomUUID() })), 401)
  })

  t.test('a token that names no session is refused, with the right secret and a live user', async (t) => {
    const now = Math.floor(Date.now() / 1000)
    assertError(t, await me(app, handSigned(JWT_SECRET, { sub: s.user.id, iat: now, exp: now + 600 })), 401, 'UNAUTHORIZED')
    // Nor one naming a session of someone else.
    const other = await register(app)
    assertError(t, await me(app, app.jwt.sign({ sub: s.user.id, sid: sessionIdOf(other.token) })), 401, 'SESSION_ENDED')
  })
})
