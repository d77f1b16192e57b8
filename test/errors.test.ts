import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { assertError, buildTestApp, client, register, type Session, type TestApp } from './helper.ts'

type Res = Awaited<ReturnType<TestApp['inject']>>

// Internals that must never reach a client: stack traces, SQL, file paths.
const LEAKS = ['stack', 'SELECT', 'INSERT', 'node_modules']
const STACK_FRAME = /(^|\\n|\n)\s*at \S|\(\S+:\d+:\d+\)|\.ts:\d+/

/** The error bodies seen by the running group, checked for leaks at its end. */
let seen: Array<{ label: string; body: string }> = []

/** The one error shape: exactly {error, code, details?}, as JSON. */
function assertShape(t: Test, res: Res, status: number, code?: string) {
  seen.push({ label: `${res.statusCode} ${res.body.slice(0, 80)}`, body: res.body })
  t.match(res.headers['content-type'], /^application\/json/, 'answered as JSON')
  const body = assertError(t, res, status, code)
  t.same(Object.keys(body).filter((k) => !['error', 'code', 'details'].includes(k)), [], 'no key but error, code, details')
  t.ok(body.error.length > 0, 'the sentence is not empty')
  if ('details' in body) {
    t.ok(Array.isArray(body.details), 'details is a list')
    for (const d of body.details) t.type(d, 'string', 'each detail is a string')
  }
  return body
}

function assertNoLeaks(t: Test) {
  t.ok(seen.length > 0, 'some error bodies were collected')
  for (const { label, body } of seen) {
    const leaked = LEAKS.filter((word) => body.includes(word))
    t.same(leaked, [], `no internals in ${label}`)
    t.notMatch(body, STACK_FRAME, `no stack frame ("at ...") in ${label}`)
  }
  seen = []
}

const json = (app: TestApp, who: Session | undefined, method: 'POST' | 'PATCH' | 'GET', url: string, payload: string, contentType = 'application/json') =>
  app.inject({
    method,
    url,
    headers: { ...(who && { authorization: `Bearer ${who.token}` }), 'content-type': contentType },
    payload,
  })

t.test('errors have one shape', async (t) => {
  seen = []
  const { app, db } = await buildTestApp(t)
  const alice = await register(app)
  const bob = await register(app)
  const stranger = await register(app)
  const conv = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id as string
  const messageCount = async () => (await db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n
  const as = client(app, alice)

  t.test('framework validation: 400 VALIDATION_ERROR with details', async (t) => {
    const res = await as.post('/messages', { conversation_id: 'not-a-uuid', content: 'x' })
    const body = assertShape(t, res, 400, 'VALIDATION_ERROR')
    t.ok(Array.isArray(body.details) && body.details.length > 0, 'details say what is wrong')
    t.match(body.details.join(' '), /conversation_id/, 'and name the field')
    const missing = assertShape(t, await as.post('/messages', { conversation_id: conv }), 400, 'VALIDATION_ERROR')
    t.match(missing.details.join(' '), /content/)
  })

  t.test('malformed JSON: 400 INVALID_JSON', async (t) => {
    const before = await messageCount()
    assertShape(t, await json(app, alice, 'POST', '/messages', `{"conversation_id": "${conv}", "content": `), 400, 'INVALID_JSON')
    assertShape(t, await json(app, alice, 'POST', '/messages', "{'content': 'single quotes'}"), 400, 'INVALID_JSON')
    assertShape(t, await json(app, alice, 'POST', '/messages', ''), 400, 'INVALID_JSON')
    t.equal(await messageCount(), before, 'nothing was sent')
  })

  t.test('a JSON body that is not an object: 400', async (t) => {
    assertShape(t, await json(app, alice, 'POST', '/messages', 'null'), 400, 'VALIDATION_ERROR')
    assertShape(t, await json(app, alice, 'POST', '/messages', `[{"conversation_id": "${conv}", "content": "x"}]`), 400, 'VALIDATION_ERROR')
    assertShape(t, await json(app, alice, 'POST', '/messages', '"hello"'), 400, 'VALIDATION_ERROR')
  })

  t.test('wrong content-type: 415', async (t) => {
    const before = await messageCount()
    assertShape(t, await json(app, alice, 'POST', '/messages', 'hello', 'text/plain'), 415, 'UNSUPPORTED_MEDIA_TYPE')
    assertShape(t, await json(app, alice, 'POST', '/messages', JSON.stringify({ conversation_id: conv, content: 'x' }), 'text/plain'), 415, 'UNSUPPORTED_MEDIA_TYPE')
    assertShape(t, await json(app, alice, 'POST', '/messages', '<content>x</content>', 'application/xml'), 415, 'UNSUPPORTED_MEDIA_TYPE')
    assertShape(t, await json(app, alice, 'PATCH', `/messages/${randomUUID()}`, 'content=x', 'application/x-www-form-urlencoded'), 415, 'UNSUPPORTED_MEDIA_TYPE')
    t.equal(await messageCount(), before, 'nothing was sent')
    // The same send as JSON works.
    const ok = await json(app, alice, 'POST', '/messages', JSON.stringify({ conversation_id: conv, content: 'as json' }))
    t.equal(ok.statusCode, 201)
  })

  t.test('unknown route: 404 ROUTE_NOT_FOUND', async (t) => {
    assertShape(t, await as.get('/no/such/route'), 404, 'ROUTE_NOT_FOUND')
    assertShape(t, await app.inject({ method: 'PUT', url: '/messages' }), 404, 'ROUTE_NOT_FOUND')
    assertShape(t, await app.inject({ method: 'GET', url: '/messages/x/y/z?limit=1' }), 404, 'ROUTE_NOT_FOUND')
  })

  t.test('a bad uuid in the path: 400', async (t) => {
    assertShape(t, await as.get('/messages/not-a-uuid'), 400, 'VALIDATION_ERROR')
    assertShape(t, await as.post('/messages/123/read'), 400, 'VALIDATION_ERROR')
    assertShape(t, await as.get(`/conversations/${conv.slice(0, -1)}/messages`), 400, 'VALIDATION_ERROR')
    assertShape(t, await as.get(`/conversations/${conv}/messages?before=nope`), 400, 'VALIDATION_ERROR')
  })

  t.test('a malformed URL: 400 in the same shape', async (t) => {
    assertShape(t, await as.get('/messages/%E0%A4%A'), 400)
  })

  t.test('unknown body fields are refused, not dropped', async (t) => {
    const before = await messageCount()
    const res = await as.post('/messages', { conversation_id: conv, content: 'x', sender_id: bob.user.id })
    assertShape(t, res, 400, 'VALIDATION_ERROR')
    const m = (await as.post('/messages', { conversation_id: conv, content: 'mine' })).json()
    assertShape(t, await as.patch(`/messages/${m.id}`, { content: 'edited', is_deleted: true }), 400, 'VALIDATION_ERROR')
    t.equal((await as.get(`/messages/${m.id}`)).json().content, 'mine', 'the refused edit changed nothing')
    t.equal(await messageCount(), before + 1, 'only the valid send was stored')
  })

  t.test('body types are not coerced', async (t) => {
    const before = await messageCount()
    assertShape(t, await as.post('/messages', { conversation_id: conv, content: 123 }), 400, 'VALIDATION_ERROR')
    assertShape(t, await as.post('/messages', { conversation_id: conv, content: true }), 400, 'VALIDATION_ERROR')
    assertShape(t, await as.post('/messages', { conversation_id: conv, content: ['x'] }), 400, 'VALIDATION_ERROR')
    assertShape(t, await as.post('/messages', { conversation_id: conv, content: 'x', client_id: 42 }), 400, 'VALIDATION_ERROR')
    assertShape(t, await as.post(`/conversations/${conv}/typing`, { is_typing: 'true' }), 400, 'VALIDATION_ERROR')
    t.equal(await messageCount(), before, 'nothing was sent')
  })

  t.test('query strings are coerced', async (t) => {
    for (let i = 0; i < 6; i++) await as.post('/messages', { conversation_id: conv, content: `q${i}` })
    const res = await as.get(`/conversations/${conv}/messages?limit=5`)
    t.equal(res.statusCode, 200)
    t.equal(res.json().length, 5, 'limit=5 is the number 5')
    t.same(res.json().map((m: any) => m.content), ['q5', 'q4', 'q3', 'q2', 'q1'])
    assertShape(t, await as.get(`/conversations/${conv}/messages?limit=abc`), 400, 'VALIDATION_ERROR')
    assertShape(t, await as.get(`/conversations/${conv}/messages?limit=2.5`), 400, 'VALIDATION_ERROR')
  })

  t.test('NUL characters in text are bad input, not a server error', async (t) => {
    const before = await messageCount()
    assertShape(t, await as.post('/messages', { conversation_id: conv, content: 'a\u0000b' }), 400)
    assertShape(t, await as.post('/messages', { conversation_id: conv, content: 'ab', client_id: 'c\u0000' }), 400)
    assertShape(t, await as.get('/users?query=a%00b'), 400)
    t.equal(await messageCount(), before, 'nothing was sent')
  })

  t.test('service errors share the shape: 401, 403, 404, 409', async (t) => {
    assertShape(t, await client(app).get(`/conversations/${conv}`), 401)
    assertShape(t, await client(app, { token: 'not.a.token' }).get(`/conversations/${conv}`), 401)
    const m = (await as.post('/messages', { conversation_id: conv, content: 'alice only' })).json()
    assertShape(t, await client(app, bob).patch(`/messages/${m.id}`, { content: 'x' }), 403)
    assertShape(t, await client(app, bob).delete(`/messages/${m.id}`), 403)
    assertShape(t, await client(app, stranger).get(`/messages/${m.id}`), 404)
    assertShape(t, await client(app, stranger).get(`/conversations/${conv}`), 404)
    assertShape(t, await as.post('/messages', { conversation_id: conv, content: 'x', recipient_id: bob.user.id }), 400)
    const taken = await app.inject({ method: 'POST', url: '/auth/register', payload: { username: alice.user.username, password: 'Passw0rd' } })
    assertShape(t, taken, 409)
  })

  t.test('no error body leaks internals', async (t) => {
    assertNoLeaks(t)
  })
})

t.test('a body over BODY_LIMIT: 413 PAYLOAD_TOO_LARGE', async (t) => {
  seen = []
  const { app } = await buildTestApp(t, { BODY_LIMIT: '2048' })
  const alice = await register(app)
  const bob = await register(app)
  const conv = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id as string
  const big = JSON.stringify({ conversation_id: conv, content: 'a'.repeat(4096) })
  t.ok(Buffer.byteLength(big) > 4096)
  assertShape(t, await json(app, alice, 'POST', '/messages', big), 413, 'PAYLOAD_TOO_LARGE')
  const page = await client(app, bob).get(`/conversations/${conv}/messages`)
  t.same(page.json(), [], 'nothing was sent')
  // Under the limit the same send works.
  const small = await client(app, alice).post('/messages', { conversation_id: conv, content: 'a'.repeat(1000) })
  t.equal(small.statusCode, 201)
  assertNoLeaks(t)
})

t.test('an unexpected failure is a bare 500', async (t) => {
  seen = []
  const { app, db } = await buildTestApp(t)
  const alice = await register(app)
  await db.destroy()
  const res = await client(app, alice).get(`/messages/${randomUUID()}`)
  const body = assertShape(t, res, 500, 'INTERNAL_ERROR')
  t.notOk('details' in body, 'no details of the failure')
  assertNoLeaks(t)
})

t.test('a database that is away answers 503 with Retry-After, not 500', async (t) => {
  const { buildApp } = await import('../src/app.ts')
  const { loadConfig } = await import('../src/config.ts')
  const { createDatabase, freePort } = await import('../src/database.ts')
  const { JWT_SECRET } = await import('./helper.ts')
  // Nothing listens on this port: every query is refused, as while PostgreSQL restarts.
  const url = `postgres://parley@127.0.0.1:${await freePort()}/parley`
  const { db } = createDatabase(url, 2)
  const app = await buildApp({ config: loadConfig({ NODE_ENV: 'test', DATABASE_URL: url, JWT_SECRET }), db, jwtSecret: JWT_SECRET })
  t.teardown(async () => {
    await app.close()
    await db.destroy()
  })
  const token = app.jwt.sign({ sub: randomUUID(), sid: randomUUID() })
  const res = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${token}` } })
  seen = []
  assertShape(t, res, 503, 'SERVICE_UNAVAILABLE')
  t.equal(res.headers['retry-after'], '1', 'with a time to retry after')
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'someone', password: 'Passw0rd' } })
  assertShape(t, login, 503, 'SERVICE_UNAVAILABLE')
  assertNoLeaks(t)
})
