import { sql } from 'kysely'
import pg from 'pg'
import t, { type Test } from 'tap'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { createDatabase } from '../src/database.ts'
import { buildLiveApp, client, dropListener, JWT_SECRET, register, sessionIdOf, type Session, type TestApp } from './helper.ts'
import { WsClient } from './ws-client.ts'

// A socket lives no longer than what let it in (issue 11): its token, its session, its account; and it spends
// the same request budget as REST.

/** A second instance on the same database, listening, closed when the test ends. */
async function secondInstance(t: Test, url: string, env: Record<string, string> = {}) {
  const config = loadConfig({ NODE_ENV: 'test', DATABASE_URL: url, JWT_SECRET, ...env })
  const { db } = createDatabase(url, 3)
  const app = await buildApp({ config, db, jwtSecret: JWT_SECRET, databaseUrl: url })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => {
    await app.close()
    await db.destroy()
  })
  const { port } = app.server.address() as { port: number }
  return { app, base: `http://127.0.0.1:${port}` }
}

async function login(app: TestApp, username: string): Promise<Session> {
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username, password: 'Passw0rd' } })
  const body = res.json()
  return { token: body.access_token, refresh: body.refresh_token, user: body.user }
}

t.test('a socket is closed with 4401 when its token expires, unless an auth frame brought a fresh one', async (t) => {
  const { app, open } = await buildLiveApp(t)
  const alice = await register(app)
  const sid = sessionIdOf(alice.token)
  const short = app.jwt.sign({ sub: alice.user.id, sid }, { expiresIn: 2 })
  const ws = await open({ token: short })
  const closed = await ws.closedWith(15_000)
  t.match(closed, { code: 4401, reason: /expired/ }, 'closed at expiry')

  const renewed = await open({ token: app.jwt.sign({ sub: alice.user.id, sid }, { expiresIn: 2 }) })
  const expiresAt = Date.now() + 2000
  renewed.send({ type: 'auth', ref: 'a1', token: app.jwt.sign({ sub: alice.user.id, sid }, { expiresIn: 60 }) })
  t.match(await renewed.next((f) => f.ref === 'a1'), { type: 'ack' }, 'the fresh token is taken')
  while (Date.now() < expiresAt + 1000) await new Promise((resolve) => setTimeout(resolve, 100))
  await renewed.sync()
  t.notOk(renewed.closed, 'still open after the first token expired')

  const bob = await register(app)
  renewed.send({ type: 'auth', ref: 'a2', token: bob.token })
  t.match(await renewed.next((f) => f.ref === 'a2'), { type: 'error', code: 'OTHER_SESSION' }, "another user's token is refused")
  renewed.send({ type: 'auth', ref: 'a3', token: 'garbage' })
  t.match(await renewed.next((f) => f.ref === 'a3'), { type: 'error', code: 'UNAUTHORIZED' }, 'a bad token is refused')
})

t.test('ending a session closes its sockets with 4401 on every instance, and only its sockets', async (t) => {
  const { app, url, base, open } = await buildLiveApp(t)
  const other = await secondInstance(t, url)
  const username = `sessions_${process.pid}`
  const first = await register(app, username)
  const second = await login(app, username)
  const third = await login(app, username)
  const wsFirst = await open(first)
  const wsSecondHere = await open(second)
  const wsSecondThere = await WsClient.open(other.base, second.token)
  t.teardown(() => wsSecondThere.close())
  const wsThird = await WsClient.open(other.base, third.token)
  t.teardown(() => wsThird.close())

  // From the first session, end the second one.
  t.equal((await client(app, first).delete(`/auth/sessions/${sessionIdOf(second.token)}`)).statusCode, 204)
  t.match(await wsSecondHere.closedWith(), { code: 4401 }, 'its socket on this instance is closed')
  t.match(await wsSecondThere.closedWith(), { code: 4401 }, 'and on the other instance')
  await wsFirst.sync()
  await wsThird.sync()
  t.notOk(wsFirst.closed || wsThird.closed, "other sessions' sockets stay open")

  // Logging out ends the session: its socket on the other instance closes.
  const res = await fetch(`${base}/auth/logout`, {
    method: 'POST',
    headers: { authorization: `Bearer ${third.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: third.refresh }),
  })
  t.equal(res.status, 204)
  t.match(await wsThird.closedWith(), { code: 4401 }, 'logout closes the socket of that session')
  t.notOk(wsFirst.closed)
})

t.test('a password change closes the sockets of every other session; logout-all closes all', async (t) => {
  const { app, url, open } = await buildLiveApp(t)
  const other = await secondInstance(t, url)
  const username = `password_${process.pid}`
  const mine = await register(app, username)
  const theirs = await login(app, username)
  const wsMine = await open(mine)
  const wsTheirs = await WsClient.open(other.base, theirs.token)
  t.teardown(() => wsTheirs.close())
  const changed = await client(app, mine).patch('/users/me', { password: 'N3wPassword', current_password: 'Passw0rd' })
  t.equal(changed.statusCode, 200)
  t.match(await wsTheirs.closedWith(), { code: 4401 }, 'the other session is ended, its socket closed')
  await wsMine.sync()
  t.notOk(wsMine.closed, 'the session that changed it keeps its socket')

  const wsAgain = await WsClient.open(other.base, mine.token)
  t.teardown(() => wsAgain.close())
  t.equal((await client(app, mine).post('/auth/logout-all')).statusCode, 204)
  t.match(await wsMine.closedWith(), { code: 4401 }, 'logout-all closes every socket, here')
  t.match(await wsAgain.closedWith(), { code: 4401 }, 'and there')
  t.match(await (await open(mine)).closedWith(), { code: 4401 }, 'and the ended session cannot open a new one')
})

t.test('socket frames spend the same budget as REST requests; a socket that keeps going is closed with 1008', async (t) => {
  const { app, open } = await buildLiveApp(t, { RATE_LIMIT_MAX: '30' })
  const alice = await register(app)
  const ws = await open(alice) // the upgrade is a request: 1
  for (let i = 0; i < 9; i++) t.equal((await client(app, alice).get('/users/me')).statusCode, 200) // 10
  for (let i = 0; i < 20; i++) ws.send({ type: 'ping' }) // 30: the budget
  await ws.until((fs) => fs.filter((f) => f.type === 'pong').length === 20)
  ws.send({ type: 'ping', ref: 'over' })
  t.match(await ws.next((f) => f.ref === 'over'), { type: 'error', code: 'RATE_LIMITED' }, 'the frame past the budget is refused')
  t.equal((await client(app, alice).get('/users/me')).statusCode, 429, 'and REST is out of budget too')
  for (let i = 0; i < 25; i++) ws.send({ type: 'ping' })
  t.match(await ws.closedWith(), { code: 1008 }, 'a client that ignores the refusals is cut off')
  t.equal(ws.count((f) => f.type === 'pong'), 20, 'no frame past the budget was served')
})

t.test('a user may hold a bounded number of sockets', async (t) => {
  const { app, open } = await buildLiveApp(t, { WS_MAX_SOCKETS_PER_USER: '3' })
  const alice = await register(app)
  const three = [await open(alice), await open(alice), await open(alice)]
  const fourth = await open(alice)
  t.match(await fourth.closedWith(), { code: 1008, reason: /at most 3/i }, 'the fourth is refused')
  for (const ws of three) await ws.sync()
  three[0].close()
  await three[0].closedWith()
  while (app.realtime.hub.socketCount > 2) await new Promise((resolve) => setTimeout(resolve, 20))
  const again = await open(alice)
  await again.sync()
  t.notOk(again.closed, 'a closed one makes room')
})

t.test('open sessions are remembered, and forgotten as soon as any instance ends them', async (t) => {
  const { app, url, open } = await buildLiveApp(t)
  const other = await secondInstance(t, url)
  const username = `remembered_${process.pid}`
  const mine = await register(app, username)
  const theirs = await login(app, username)
  const me = client(app, mine)

  // Asked once, then known: further requests of the session do not ask the database.
  const asked: string[] = []
  const original = pg.Client.prototype.query
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string })?.text ?? ''
    if (text.includes('sessions')) asked.push(text)
    return (original as (...a: unknown[]) => unknown).apply(this, args)
  } as typeof original
  t.teardown(() => {
    pg.Client.prototype.query = original
  })
  t.equal((await me.get('/users/me')).statusCode, 200)
  asked.length = 0
  for (let i = 0; i < 3; i++) t.equal((await me.get('/users/me')).statusCode, 200)
  t.equal(asked.length, 0, 'a known open session costs no query')

  // Ended on the other instance: this one hears it (its socket of that session closes), and refuses the token.
  const ws = await open(theirs)
  t.equal((await client(app, theirs).get('/users/me')).statusCode, 200, 'known open here')
  const res = await fetch(`${other.base}/auth/sessions/${sessionIdOf(theirs.token)}`, { method: 'DELETE', headers: { authorization: `Bearer ${mine.token}` } })
  t.equal(res.status, 204)
  await ws.closedWith()
  t.equal((await client(app, theirs).get('/users/me')).json().code, 'SESSION_ENDED', 'refused here once the event is heard')

  // An account deleted on the other instance: likewise.
  const wsMine = await open(mine)
  t.equal((await fetch(`${other.base}/users/me`, { method: 'DELETE', headers: { authorization: `Bearer ${mine.token}` } })).status, 204)
  await wsMine.closedWith()
  t.equal((await me.get('/users/me')).json().code, 'ACCOUNT_DELETED')
})

t.test('while the listener is down (ends may be missed) nothing is trusted', async (t) => {
  const { app, url } = await buildLiveApp(t, { LISTENER_PROBE_INTERVAL: '200' })
  const alice = await register(app)
  t.equal((await client(app, alice).get('/users/me')).statusCode, 200, 'the session is known open')
  await dropListener(t, app, url)
  // Ended behind everyone's back: no notification at all.
  await sql`UPDATE sessions SET ended_at = now() WHERE id = ${sessionIdOf(alice.token)}`.execute(app.db)
  t.equal((await client(app, alice).get('/users/me')).json().code, 'SESSION_ENDED', 'asked again, and refused')
})

t.test('a session ended while its socket is still being let in closes that socket as soon as it opens', async (t) => {
  const { app, url, base } = await buildLiveApp(t)
  const username = `upgrading_${process.pid}`
  const mine = await register(app, username)
  const theirs = await login(app, username)
  // Memberships load during the upgrade: with participants locked, the upgrade waits there.
  const locker = new pg.Client({ connectionString: url })
  await locker.connect()
  t.teardown(() => locker.end())
  await locker.query('BEGIN; LOCK TABLE participants IN ACCESS EXCLUSIVE MODE')
  const opening = WsClient.open(base, theirs.token)
  while (app.realtime.hub.socketCount === 0) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal((await client(app, mine).delete(`/auth/sessions/${sessionIdOf(theirs.token)}`)).statusCode, 204, 'the session ends meanwhile')
  await locker.query('COMMIT')
  const ws = await opening
  t.teardown(() => ws.close())
  t.match(await ws.closedWith(), { code: 4401 }, 'the socket is closed once open')
})
