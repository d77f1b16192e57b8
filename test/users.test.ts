import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { assertError, buildTestApp, client, register, uniqueName, type Session, type TestApp } from './helper.ts'

const login = (app: TestApp, username: string, password = 'Passw0rd') =>
  app.inject({ method: 'POST', url: '/auth/login', payload: { username, password } })
const refresh = (app: TestApp, refresh_token: string) => app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token } })

const USER_KEYS = ['avatar_url', 'created_at', 'display_name', 'id', 'is_online', 'last_seen', 'username']
// Another user's view says too whether you block them, and whether their account was deleted (issue 15).
const PUBLIC_KEYS = [...USER_KEYS, 'is_blocked', 'is_deleted'].sort()

t.test('GET /users/me', async (t) => {
  const { app } = await buildTestApp(t)
  const username = uniqueName('Me')
  const s = await register(app, username, { email: `${username}@example.com`, display_name: 'Me Myself' })

  const res = await client(app, s).get('/users/me')
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.same(Object.keys(body).sort(), [...USER_KEYS, 'email'].sort(), 'every User field, email included')
  t.match(body, { id: s.user.id, username, email: `${username}@example.com`, display_name: 'Me Myself', avatar_url: null, is_online: false })

  assertError(t, await client(app).get('/users/me'), 401)
})

t.test('PATCH /users/me', async (t) => {
  const { app } = await buildTestApp(t)

  t.test('changes the display name', async (t) => {
    const s = await register(app)
    const res = await client(app, s).patch('/users/me', { display_name: 'New Name' })
    t.equal(res.statusCode, 200)
    t.equal(res.json().display_name, 'New Name')
    t.equal(res.json().username, s.user.username, 'username unchanged')
    t.equal((await client(app, s).get('/users/me')).json().display_name, 'New Name', 'it is stored')
    assertError(t, await client(app, s).patch('/users/me', { display_name: '' }), 400, 'VALIDATION_ERROR')
    assertError(t, await client(app, s).patch('/users/me', { display_name: 'x'.repeat(101) }), 400, 'VALIDATION_ERROR')
    t.equal((await client(app, s).get('/users/me')).json().display_name, 'New Name', 'refused changes change nothing')
  })

  t.test('sets, changes and clears the email', async (t) => {
    const s = await register(app)
    const a = `${uniqueName('a')}@example.com`
    const set = await client(app, s).patch('/users/me', { email: a, current_password: 'Passw0rd' })
    t.equal(set.statusCode, 200)
    t.equal(set.json().email, a)
    t.equal((await client(app, s).get('/users/me')).json().email, a)

    const cleared = await client(app, s).patch('/users/me', { email: null, current_password: 'Passw0rd' })
    t.equal(cleared.statusCode, 200)
    t.equal(cleared.json().email, null)
    t.equal((await client(app, s).get('/users/me')).json().email, null, 'null clears it')

    assertError(t, await client(app, s).patch('/users/me', { email: 'nope', current_password: 'Passw0rd' }), 400, 'VALIDATION_ERROR')

    // A cleared email is free for someone else.
    const other = await register(app, uniqueName(), { email: a })
    t.equal(other.user.email, a)
  })

  t.test('an email already in use is a 409', async (t) => {
    const email = `${uniqueName('owner')}@example.com`
    await register(app, uniqueName(), { email })
    const s = await register(app, uniqueName(), { email: `${uniqueName('mine')}@example.com` })
    for (const taken of [email, email.toUpperCase()]) {
      assertError(t, await client(app, s).patch('/users/me', { email: taken, current_password: 'Passw0rd' }), 409, 'EMAIL_TAKEN')
    }
    t.equal((await client(app, s).get('/users/me')).json().email, s.user.email, 'own email unchanged')
    // Setting one's own email again is no conflict.
    t.equal((await client(app, s).patch('/users/me', { email: s.user.email, current_password: 'Passw0rd' })).statusCode, 200)
  })

  t.test('changing the email needs the password, checked first: whether an email is taken is no free question', async (t) => {
    const taken = `${uniqueName('taken')}@example.com`
    await register(app, uniqueName(), { email: taken })
    const s = await register(app)
    const free = `${uniqueName('free')}@example.com`
    for (const email of [taken, free, null]) {
      assertError(t, await client(app, s).patch('/users/me', { email }), 400, 'CURRENT_PASSWORD_REQUIRED')
      const wrong = await client(app, s).patch('/users/me', { email, current_password: 'Wr0ngPassword' })
      assertError(t, wrong, 403, 'WRONG_PASSWORD')
      t.same(wrong.json(), { error: 'current_password is incorrect', code: 'WRONG_PASSWORD' }, `${email}: the same answer, taken or not`)
    }
    t.equal((await client(app, s).get('/users/me')).json().email, null, 'nothing changed')
  })

  t.test('unknown fields are refused; an empty patch changes nothing', async (t) => {
    const s = await register(app)
    assertError(t, await client(app, s).patch('/users/me', { username: 'renamed' }), 400, 'VALIDATION_ERROR')
    assertError(t, await client(app, s).patch('/users/me', { avatar_url: 'http://x' }), 400, 'VALIDATION_ERROR')
    t.equal((await client(app, s).get('/users/me')).json().username, s.user.username)
    const empty = await client(app, s).patch('/users/me', {})
    t.equal(empty.statusCode, 200)
    t.equal(empty.json().id, s.user.id)
  })

  t.test('changing the password needs the current one', async (t) => {
    const s = await register(app)
    const client_ = client(app, s)

    const missing = await client_.patch('/users/me', { password: 'N3wPassword' })
    assertError(t, missing, 400, 'CURRENT_PASSWORD_REQUIRED')

    const wrong = await client_.patch('/users/me', { password: 'N3wPassword', current_password: 'Wr0ngPassword', display_name: 'Sneaky' })
    assertError(t, wrong, 403, 'WRONG_PASSWORD')
    t.equal((await client_.get('/users/me')).json().display_name, s.user.display_name, 'a refused change changes nothing')

    const weak = await client_.patch('/users/me', { password: 'weak', current_password: 'Passw0rd' })
    assertError(t, weak, 400, 'VALIDATION_ERROR')

    // Nothing above changed the password.
    t.equal((await login(app, s.user.username)).statusCode, 200)
    assertError(t, await login(app, s.user.username, 'N3wPassword'), 401, 'INVALID_CREDENTIALS')
    t.equal((await refresh(app, s.refresh)).statusCode, 200, 'and no session was ended')
  })

  t.test('after a password change the old one fails, the new one works, and the other sessions end', async (t) => {
    const s = await register(app)
    const second = (await login(app, s.user.username)).json()

    const res = await client(app, s).patch('/users/me', { password: 'N3wPassword', current_password: 'Passw0rd' })
    t.equal(res.statusCode, 200)
    t.equal(res.json().id, s.user.id)
    t.notOk('password' in res.json() || 'password_hash' in res.json())

    assertError(t, await login(app, s.user.username, 'Passw0rd'), 401, 'INVALID_CREDENTIALS')
    const fresh = await login(app, s.user.username, 'N3wPassword')
    t.equal(fresh.statusCode, 200)

    t.equal((await refresh(app, s.refresh)).statusCode, 200, 'the session that changed it goes on')
    assertError(t, await refresh(app, second.refresh_token), 401)
    t.equal((await refresh(app, fresh.json().refresh_token)).statusCode, 200, 'the session opened after the change works')
  })
})

t.test('display names: cleaned of what changes how the text around them looks; no word mixing scripts', async (t) => {
  const { app } = await buildTestApp(t)
  const registerAs = (display_name: string) =>
    app.inject({ method: 'POST', url: '/auth/register', payload: { username: uniqueName(), password: 'Passw0rd', display_name } })

  // Bidi overrides, zero-width and control characters go; the name is NFC, its white space one space, trimmed.
  const cleaned: Array<[string, string]> = [
    ['\u202Egnp.exe\u202C', 'gnp.exe'],
    ['Ad\u200Bmin\u2066\u2069', 'Admin'],
    ['Zoe\u0308', 'Zo\u00eb'],
    ['  Ann \t\u00a0 Lee\u0007 ', 'Ann Lee'],
  ]
  for (const [given, stored] of cleaned) {
    const res = await registerAs(given)
    t.equal(res.statusCode, 201, `register ${JSON.stringify(given)}`)
    t.equal(res.json().user.display_name, stored, `stored as ${JSON.stringify(stored)}`)
  }
  const s = await register(app, uniqueName(), { display_name: 'Plain' })
  const found = (await client(app, s).get(`/users?query=${encodeURIComponent('zoe\u0308')}`)).json()
  t.same(found.map((u: { display_name: string }) => u.display_name), ['Zo\u00eb'], 'a decomposed query finds the composed name')
  for (const [given, stored] of cleaned) {
    const res = await client(app, s).patch('/users/me', { display_name: given })
    t.equal(res.statusCode, 200)
    t.equal(res.json().display_name, stored, `PATCH ${JSON.stringify(given)} is stored as ${JSON.stringify(stored)}`)
  }

  // One script per word, as people write: these are names, not disguises.
  for (const name of ['Алиса Иванова', 'Tシャツ 田中', 'Yıldız', 'Zoë Straße', '👩\u200d💻 Dev', 'Bob (Боб)', 'R2-D2']) {
    t.equal((await client(app, s).patch('/users/me', { display_name: name })).json().display_name, name, `${name} is accepted as given`)
  }
  t.equal((await registerAs('Алиса')).statusCode, 201)

  // Nothing visible left, or a Cyrillic а inside a Latin word ("аlice"): refused, on register and on PATCH.
  await client(app, s).patch('/users/me', { display_name: 'Before' })
  for (const name of ['\u200B\u2066\u2069 \u202E', '\u0430lice', 'Real p\u0430ypal']) {
    assertError(t, await registerAs(name), 400, 'VALIDATION_ERROR')
    const res = await client(app, s).patch('/users/me', { display_name: name })
    assertError(t, res, 400, 'VALIDATION_ERROR')
    t.match(res.json().details, [/^\/display_name /], 'the details name the field')
  }
  t.equal((await client(app, s).get('/users/me')).json().display_name, 'Before', 'a refused name changes nothing')
})

t.test('current_password guesses are limited per user, counted before the check', async (t) => {
  const { app } = await buildTestApp(t, { LOGIN_RATE_LIMIT_PER_USERNAME: '3' })
  const [s, other] = [await register(app), await register(app)]
  const guess = (who: Session, current_password: string) => client(app, who).patch('/users/me', { password: 'N3wPassword', current_password })

  // All at once: none waits for another's argon2 check, so only a count taken before checking holds.
  const burst = await Promise.all(Array.from({ length: 6 }, (_, i) => guess(s, `Wr0ngGuess${i}`)))
  t.same(burst.map((r) => r.statusCode).sort(), [403, 403, 403, 429, 429, 429], 'three guesses are checked, three are not')
  for (const res of burst.filter((r) => r.statusCode === 429)) {
    assertError(t, res, 429, 'RATE_LIMITED')
    t.ok(Number(res.headers['retry-after']) >= 1, 'with Retry-After')
  }
  assertError(t, await guess(s, 'Passw0rd'), 429, 'RATE_LIMITED')
  assertError(t, await client(app, s).patch('/users/me', { email: 'new@example.com', current_password: 'Passw0rd' }), 429, 'RATE_LIMITED')
  t.equal((await client(app, s).patch('/users/me', { display_name: 'Still me' })).statusCode, 200, 'what needs no password goes on')
  t.equal((await login(app, s.user.username)).statusCode, 200, 'the password is unchanged and signs in')
  t.equal((await guess(other, 'Passw0rd')).statusCode, 200, 'another user has a count of their own')
})

t.test('DELETE /users/me', async (t) => {
  const { app } = await buildTestApp(t)
  const name = uniqueName('Gone')
  const gone = await register(app, name, { email: `${name}@example.com`, display_name: `${name} display` })
  const friend = await register(app)

  // A message in a direct conversation, sent before the account goes.
  const sent = await client(app, gone).post('/messages', { recipient_id: friend.user.id, content: 'remember me' })
  t.equal(sent.statusCode, 201)
  const message = sent.json()

  const res = await client(app, gone).delete('/users/me')
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')

  assertError(t, await client(app, gone).get('/users/me'), 401)
  assertError(t, await client(app, gone).post('/messages', { recipient_id: friend.user.id, content: 'ghost' }), 401)
  assertError(t, await login(app, name), 401, 'INVALID_CREDENTIALS')
  assertError(t, await login(app, name.toLowerCase()), 401, 'INVALID_CREDENTIALS')
  assertError(t, await refresh(app, gone.refresh), 401)

  const search = await client(app, friend).get(`/users?query=${name}`)
  t.equal(search.statusCode, 200)
  t.same(search.json(), [], 'hidden from search by username')
  t.same((await client(app, friend).get(`/users?query=${encodeURIComponent(`${name} display`)}`)).json(), [], 'and by display name')

  const profile = await client(app, friend).get(`/users/${gone.user.id}`)
  t.equal(profile.statusCode, 200, 'the public view stays, for old messages')
  t.match(profile.json(), { id: gone.user.id, username: name })
  t.notOk('email' in profile.json())

  const history = await client(app, friend).get(`/conversations/${message.conversation_id}/messages`)
  t.equal(history.statusCode, 200)
  const kept = history.json().find((m: { id: string }) => m.id === message.id)
  t.match(kept, { sender_id: gone.user.id, content: 'remember me', is_deleted: false }, 'their message stays')

  // The username stays taken: old messages still name their sender.
  assertError(t, await app.inject({ method: 'POST', url: '/auth/register', payload: { username: name, password: 'Passw0rd' } }), 409, 'USERNAME_TAKEN')
})

t.test('GET /users/{id}', async (t) => {
  const { app } = await buildTestApp(t)
  const name = uniqueName('Pub')
  const other = await register(app, name, { email: `${name}@example.com`, display_name: 'Public Person' })
  const s = await register(app)

  const res = await client(app, s).get(`/users/${other.user.id}`)
  t.equal(res.statusCode, 200)
  t.same(Object.keys(res.json()).sort(), PUBLIC_KEYS, 'the public view')
  t.notOk('email' in res.json(), 'no email')
  t.match(res.json(), { id: other.user.id, username: name, display_name: 'Public Person' })

  assertError(t, await client(app, s).get(`/users/${randomUUID()}`), 404)
  assertError(t, await client(app, s).get('/users/not-a-uuid'), 400, 'VALIDATION_ERROR')
  assertError(t, await client(app).get(`/users/${other.user.id}`), 401)
})

t.test('search', async (t) => {
  const { app } = await buildTestApp(t)
  const make = (username: string, display_name?: string) => register(app, username, display_name ? { display_name } : {})
  const me = await make('searcher', 'The Searcher')
  const users: Record<string, Session> = {}
  for (const [u, d] of [
    ['abob', undefined],
    ['bobby', undefined],
    ['bob', 'Robert'],
    ['AZOE', undefined],
    ['Zoe', undefined],
    ['zed', 'Uncle BOB'],
    ['carol', 'Carol'],
    ['pct_user', '100% real'],
    ['plainuser', 'back\\slash'],
    ['abc', 'nothing here'],
  ] as const) {
    users[u] = await make(u, d)
  }
  // Someone with an email: it must never appear in results.
  await register(app, 'bob_mail', { email: 'bob@example.com' })

  const search = async (t: Test, query: string, limit?: number) => {
    const qs = new URLSearchParams({ query, ...(limit !== undefined && { limit: String(limit) }) })
    const res = await client(app, me).get(`/users?${qs}`)
    t.equal(res.statusCode, 200, `search ${JSON.stringify(query)}`)
    return res.json() as Array<Record<string, unknown>>
  }
  const names = (rows: Array<Record<string, unknown>>) => rows.map((r) => r.username as string).sort()

  t.test('by username and display name substring, case-insensitive', async (t) => {
    const rows = await search(t, 'bob')
    t.same(names(rows), ['abob', 'bob', 'bob_mail', 'bobby', 'zed'].sort(), 'username substrings and display "Uncle BOB"')
    t.same(names(await search(t, 'BoB')), names(rows), 'the query case does not matter')
    t.same(names(await search(t, 'robe')), ['bob'], 'display name "Robert"')
    t.same(names(await search(t, 'CAROL')), ['carol'])
    t.same(await search(t, 'nobody_matches_this'), [])
  })

  t.test('the exact match comes first', async (t) => {
    t.equal((await search(t, 'BOB'))[0].username, 'bob', 'exact username first, though "abob" sorts before it')
    t.same((await search(t, 'zoe')).map((r) => r.username), ['Zoe', 'AZOE'], 'exact in any case first, though "AZOE" sorts before it')
  })

  t.test('% and _ are literal', async (t) => {
    t.same(names(await search(t, '%')), ['pct_user'], '% matches only a real percent sign')
    t.same(names(await search(t, '0% r')), ['pct_user'])
    t.same(names(await search(t, '_')), ['bob_mail', 'pct_user'], '_ matches only a real underscore')
    t.same(names(await search(t, 'b_b')), [], '_ is not a wildcard')
    t.same(names(await search(t, '\\')), ['plainuser'], 'a backslash is literal too')
  })

  t.test('limit is respected', async (t) => {
    t.equal((await search(t, 'bob', 2)).length, 2)
    t.equal((await search(t, 'bob', 1))[0].username, 'bob', 'the exact match survives a limit of 1')
    t.equal((await search(t, 'b', 50)).length, 7)
    assertError(t, await client(app, me).get('/users?query=bob&limit=0'), 400, 'VALIDATION_ERROR')
    assertError(t, await client(app, me).get('/users?query=bob&limit=51'), 400, 'VALIDATION_ERROR')
  })

  t.test('results are public views: no email', async (t) => {
    const rows = await search(t, 'bob')
    t.ok(rows.length > 0)
    for (const row of rows) {
      t.same(Object.keys(row).sort(), PUBLIC_KEYS, `${row.username}: public fields only`)
      t.notOk('email' in row)
    }
  })

  t.test('needs a query and a token', async (t) => {
    assertError(t, await client(app, me).get('/users'), 400, 'VALIDATION_ERROR')
    assertError(t, await client(app, me).get('/users?query='), 400, 'VALIDATION_ERROR')
    assertError(t, await client(app).get('/users?query=bob'), 401)
  })
})
