import { randomBytes, randomUUID } from 'node:crypto'
import pg from 'pg'
import t, { type Test } from 'tap'
import * as migration from '../db/migrations/0007-sessions.ts'
import { assertError, buildTestApp, client, register, sessionIdOf, uniqueName, type TestApp } from './helper.ts'

// Sessions (issue 11, point 3): every refresh-token family is one; ending it stops its refresh token at once
// and its access tokens on their next use, and tells every instance (pg_notify) so that sockets close.
// The sockets closing is tested with the hub (test/realtime.test.ts, test/cluster.test.ts).

const MANY_AUTH_CALLS = { AUTH_RATE_LIMIT_MAX: '1000' }

interface Signed {
  token: string
  refresh: string
  sid: string
}

async function signIn(app: TestApp, username: string, userAgent?: string): Promise<Signed> {
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { username, password: 'Passw0rd' }, headers: userAgent === undefined ? {} : { 'user-agent': userAgent } })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  const body = res.json()
  return { token: body.access_token, refresh: body.refresh_token, sid: sessionIdOf(body.access_token) }
}

/** A user with a first session (its registration) and `more` further sign-ins. */
async function userWith(app: TestApp, more: number) {
  const first = await register(app)
  const sessions: Signed[] = [{ token: first.token, refresh: first.refresh, sid: sessionIdOf(first.token) }]
  for (let i = 0; i < more; i++) sessions.push(await signIn(app, first.user.username))
  return { user: first.user, sessions }
}

const refresh = (app: TestApp, refresh_token: string) => app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token } })
const me = (app: TestApp, s: { token: string }) => client(app, s).get('/users/me')
const listOf = async (app: TestApp, s: { token: string }) => {
  const res = await client(app, s).get('/auth/sessions')
  if (res.statusCode !== 200) throw new Error(`list failed: ${res.statusCode} ${res.body}`)
  return res.json() as Array<{ id: string; created_at: string; last_used_at: string; user_agent: string | null; current: boolean }>
}

/** Every session_ended notification on the database, from a LISTEN of our own. */
async function sessionNotes(t: Test, url: string) {
  const listener = new pg.Client({ connectionString: url })
  await listener.connect()
  t.teardown(() => listener.end())
  const seen: Array<{ type: string; user_id: string; session_ids: string[] }> = []
  const waiters: Array<() => void> = []
  listener.on('notification', (n) => {
    const note = JSON.parse(n.payload ?? '{}')
    if (note.type !== 'session_ended') return
    seen.push(note)
    waiters.splice(0).forEach((wake) => wake())
  })
  await listener.query('LISTEN parley_ephemeral')
  /** The first notification about this user (waits for it). */
  const about = async (userId: string) => {
    for (;;) {
      const found = seen.find((n) => n.user_id === userId)
      if (found) return found
      await new Promise<void>((resolve) => waiters.push(resolve))
    }
  }
  return { about, seen }
}

t.test('GET /auth/sessions lists the caller\'s sessions, the current one marked', async (t) => {
  const { app } = await buildTestApp(t, MANY_AUTH_CALLS)
  const alice = await register(app)
  const phone = await signIn(app, alice.user.username, 'Parley-Phone/1.0')
  const long = await signIn(app, alice.user.username, `Long/${'é'.repeat(300)}`)
  const bare = await signIn(app, alice.user.username)
  const stranger = await register(app)

  const mine = await listOf(app, phone)
  t.equal(mine.length, 4, 'the registration and three sign-ins')
  t.same(mine.map((s) => s.id).sort(), [sessionIdOf(alice.token), phone.sid, long.sid, bare.sid].sort())
  t.same(mine.filter((s) => s.current).map((s) => s.id), [phone.sid], 'only the session of the token asking is current')
  for (const s of mine) {
    t.same(Object.keys(s).sort(), ['created_at', 'current', 'id', 'last_used_at', 'user_agent'])
    t.ok(!Number.isNaN(Date.parse(s.created_at)) && !Number.isNaN(Date.parse(s.last_used_at)))
  }
  const byId = new Map(mine.map((s) => [s.id, s]))
  t.equal(byId.get(phone.sid)!.user_agent, 'Parley-Phone/1.0')
  t.equal(byId.get(long.sid)!.user_agent, `Long/${'é'.repeat(250)}`, 'cut to 255 characters')
  t.equal(byId.get(bare.sid)!.user_agent, 'lightMyRequest', "inject's own User-Agent")
  t.same((await listOf(app, long)).filter((s) => s.current).map((s) => s.id), [long.sid])
  t.same((await listOf(app, stranger)).map((s) => s.id), [sessionIdOf(stranger.token)], 'nobody else sees them')

  // A refresh keeps the session (same id) and moves its last use.
  const before = Date.now()
  const next = (await refresh(app, phone.refresh)).json()
  t.equal(sessionIdOf(next.access_token), phone.sid, 'the new access token names the same session')
  const after = new Map((await listOf(app, alice)).map((s) => [s.id, s]))
  t.equal(after.size, 4)
  t.ok(Date.parse(after.get(phone.sid)!.last_used_at) >= before, 'last_used_at is the refresh')
  t.equal(after.get(phone.sid)!.created_at, byId.get(phone.sid)!.created_at)
  t.equal(after.get(bare.sid)!.last_used_at, byId.get(bare.sid)!.last_used_at, 'not moved by requests, only by refreshes')

  assertError(t, await client(app).get('/auth/sessions'), 401)
})

t.test('DELETE /auth/sessions/{id} ends that session at once, and only it', async (t) => {
  const { app, url } = await buildTestApp(t, MANY_AUTH_CALLS)
  const notes = await sessionNotes(t, url)
  const { user, sessions: [laptop, phone] } = await userWith(app, 1)
  const res = await client(app, laptop).delete(`/auth/sessions/${phone.sid}`)
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')

  assertError(t, await refresh(app, phone.refresh), 401, 'INVALID_REFRESH_TOKEN')
  assertError(t, await me(app, phone), 401, 'SESSION_ENDED')
  assertError(t, await client(app, phone).get('/auth/sessions'), 401, 'SESSION_ENDED')

  t.equal((await me(app, laptop)).statusCode, 200, 'the other session goes on')
  t.same((await listOf(app, laptop)).map((s) => s.id), [laptop.sid])
  t.same(await notes.about(user.id), { type: 'session_ended', user_id: user.id, session_ids: [phone.sid] }, 'every instance is told')
  const refreshed = await refresh(app, laptop.refresh)
  t.equal(refreshed.statusCode, 200)

  // Ended is gone: a second DELETE is a 404 like any unknown id.
  const again = assertError(t, await client(app, laptop).delete(`/auth/sessions/${phone.sid}`), 404, 'SESSION_NOT_FOUND')
  t.same(assertError(t, await client(app, laptop).delete(`/auth/sessions/${randomUUID()}`), 404), again)
  assertError(t, await client(app, laptop).delete('/auth/sessions/not-a-uuid'), 400, 'VALIDATION_ERROR')
  t.equal(notes.seen.length, 1, 'nothing ended, nothing announced')
})

t.test("a stranger's session id is a 404, and the session goes on", async (t) => {
  const { app } = await buildTestApp(t, MANY_AUTH_CALLS)
  const { sessions: [victim] } = await userWith(app, 0)
  const mallory = await register(app)
  const theirs = assertError(t, await client(app, mallory).delete(`/auth/sessions/${victim.sid}`), 404, 'SESSION_NOT_FOUND')
  t.same(assertError(t, await client(app, mallory).delete(`/auth/sessions/${randomUUID()}`), 404), theirs, 'the same 404 as for an id that does not exist')
  t.equal((await me(app, victim)).statusCode, 200)
  t.equal((await refresh(app, victim.refresh)).statusCode, 200)
})

t.test('a session can end itself', async (t) => {
  const { app } = await buildTestApp(t, MANY_AUTH_CALLS)
  const { sessions: [one, other] } = await userWith(app, 1)
  t.equal((await client(app, one).delete(`/auth/sessions/${one.sid}`)).statusCode, 204)
  assertError(t, await me(app, one), 401, 'SESSION_ENDED')
  t.equal((await me(app, other)).statusCode, 200)
})

t.test('POST /auth/logout-all ends every session, the caller\'s too', async (t) => {
  const { app, url } = await buildTestApp(t, MANY_AUTH_CALLS)
  const notes = await sessionNotes(t, url)
  const { user, sessions } = await userWith(app, 2)
  const bystander = await userWith(app, 0)

  const res = await client(app, sessions[0]).post('/auth/logout-all')
  t.equal(res.statusCode, 204)
  for (const [i, s] of sessions.entries()) {
    assertError(t, await me(app, s), 401, 'SESSION_ENDED')
    assertError(t, await refresh(app, s.refresh), 401, 'INVALID_REFRESH_TOKEN')
    t.pass(`session ${i} ended`)
  }
  t.same((await notes.about(user.id)).session_ids.sort(), sessions.map((s) => s.sid).sort())
  t.equal((await me(app, bystander.sessions[0])).statusCode, 200, "someone else's session is untouched")

  // Signing in again starts afresh.
  const again = await signIn(app, user.username)
  t.same((await listOf(app, again)).map((s) => s.id), [again.sid])
  assertError(t, await client(app).post('/auth/logout-all'), 401)
})

t.test('a password change ends every session but the current one', async (t) => {
  const { app, url } = await buildTestApp(t, MANY_AUTH_CALLS)
  const notes = await sessionNotes(t, url)
  const { user, sessions: [current, ...others] } = await userWith(app, 2)

  // Another change (a display name) ends nothing.
  t.equal((await client(app, current).patch('/users/me', { display_name: 'Still me' })).statusCode, 200)
  t.equal((await me(app, others[0])).statusCode, 200)

  const res = await client(app, current).patch('/users/me', { password: 'N3wPassword', current_password: 'Passw0rd' })
  t.equal(res.statusCode, 200)
  for (const s of others) {
    assertError(t, await me(app, s), 401, 'SESSION_ENDED')
    assertError(t, await refresh(app, s.refresh), 401, 'INVALID_REFRESH_TOKEN')
  }
  t.equal((await me(app, current)).statusCode, 200, 'the session that changed it goes on')
  t.same((await listOf(app, current)).map((s) => s.id), [current.sid])
  t.equal((await refresh(app, current.refresh)).statusCode, 200)
  t.same((await notes.about(user.id)).session_ids.sort(), others.map((s) => s.sid).sort())
})

t.test('logout and the reuse of a spent refresh token end their session, access tokens included', async (t) => {
  const { app } = await buildTestApp(t, MANY_AUTH_CALLS)
  const { sessions: [a, b, c] } = await userWith(app, 2)

  t.equal((await client(app, a).post('/auth/logout', { refresh_token: b.refresh })).statusCode, 204)
  assertError(t, await me(app, b), 401, 'SESSION_ENDED')
  t.equal((await me(app, a)).statusCode, 200)

  // A stolen copy of c's refresh token is spent first; c's own next refresh is then a reuse.
  const thief = (await refresh(app, c.refresh)).json()
  assertError(t, await refresh(app, c.refresh), 401, 'REFRESH_TOKEN_REUSED')
  assertError(t, await me(app, { token: thief.access_token }), 401, 'SESSION_ENDED')
  assertError(t, await me(app, c), 401, 'SESSION_ENDED')
  t.same((await listOf(app, a)).map((s) => s.id), [a.sid])
})

t.test('migration 0007 makes a session of every existing refresh-token family', async (t) => {
  const { db } = await buildTestApp(t)
  await migration.down(db)
  const user = (await db.insertInto('users').values({ username: uniqueName(), display_name: 'Old', password_hash: 'x' }).returning('id').executeTakeFirstOrThrow()).id
  const [live, revoked, expired] = [randomUUID(), randomUUID(), randomUUID()]
  const token = (family: string, at: string, extra: Record<string, unknown> = {}) => ({
    user_id: user, family_id: family, token_hash: randomBytes(16).toString('hex'), created_at: new Date(at), expires_at: new Date(Date.now() + 3600_000), ...extra,
  })
  await db.insertInto('refresh_tokens').values([
    token(live, '2026-01-01T00:00:00Z', { used_at: new Date('2026-01-02T00:00:00Z') }),
    token(live, '2026-01-02T00:00:00Z'),
    token(revoked, '2026-01-03T00:00:00Z', { revoked_at: new Date('2026-01-04T00:00:00Z') }),
    token(expired, '2026-01-05T00:00:00Z', { expires_at: new Date('2026-01-06T00:00:00Z') }),
  ]).execute()
  await migration.up(db)

  const rows = new Map((await db.selectFrom('sessions').selectAll().where('user_id', '=', user).execute()).map((r) => [r.id, r]))
  t.equal(rows.size, 3)
  const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : d)
  const live_ = rows.get(live)!
  t.same([iso(live_.created_at), iso(live_.last_used_at), live_.ended_at, live_.user_agent], ['2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z', null, null], 'open: first and last token')
  t.equal(iso(rows.get(revoked)?.ended_at), '2026-01-04T00:00:00.000Z', 'ended when revoked')
  t.equal(iso(rows.get(expired)?.ended_at), '2026-01-06T00:00:00.000Z', 'ended when expired')
  // The family id now has to name a session.
  await t.rejects(db.insertInto('refresh_tokens').values(token(randomUUID(), '2026-01-07T00:00:00Z')).execute(), { code: '23503' })
})
