// Mute and archive (issue 15, point 4): the caller's own, with the caller's sockets told and nobody else.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { assertError, buildLiveApp, buildTestApp, client, groupOf, register, sendAs } from './helper.ts'

const ids = (convs: { id: string }[]) => convs.map((c) => c.id)

t.test('a mute is the caller\'s own, ends by itself, and leaves the unread counts as they are', async (t) => {
  const { app } = await buildTestApp(t)
  const [alice, bob] = [await register(app), await register(app)]
  const g = await groupOf(app, alice, [bob])
  const until = new Date(Date.now() + 3_600_000).toISOString()
  const muted = await client(app, bob).patch(`/conversations/${g}/settings`, { muted_until: until })
  t.equal(muted.statusCode, 200)
  t.match(muted.json(), { id: g, muted_until: until, is_archived: false }, 'answered with the Conversation as bob sees it')
  t.equal((await client(app, alice).get(`/conversations/${g}`)).json().muted_until, null, 'alice sees no mute')

  await sendAs(app, alice, g, 'while muted')
  await sendAs(app, alice, g, `@${bob.user.username} still counted`)
  t.match((await client(app, bob).get(`/conversations/${g}`)).json(), { muted_until: until, unread_count: 2, unread_mention_count: 1 }, 'a muted conversation still counts unread and mentions')

  const past = new Date(Date.now() - 1000).toISOString()
  t.equal((await client(app, bob).patch(`/conversations/${g}/settings`, { muted_until: past })).json().muted_until, null, 'a time already past reads as no mute')
  // A mute whose time comes while it is stored: no job, the read itself says it is over.
  await app.db.updateTable('participants').set({ muted_until: new Date(Date.now() - 1) }).where('conversation_id', '=', g).where('user_id', '=', bob.user.id).execute()
  t.equal((await client(app, bob).get(`/conversations/${g}`)).json().muted_until, null, 'an expired mute reads as null')
  await client(app, bob).patch(`/conversations/${g}/settings`, { muted_until: until })
  t.equal((await client(app, bob).patch(`/conversations/${g}/settings`, { muted_until: null })).json().muted_until, null, 'null unmutes')
})

t.test('archived conversations leave the list and are listed, paged, with ?archived=true; a new message leaves them archived', async (t) => {
  const { app } = await buildTestApp(t)
  const [alice, bob] = [await register(app), await register(app)]
  const as = client(app, bob)
  const groups: string[] = []
  for (let i = 0; i < 4; i++) groups.push(await groupOf(app, alice, [bob], `g${i}`))
  const [g0, g1, g2, g3] = groups
  for (const g of [g0, g1, g2]) t.match((await as.patch(`/conversations/${g}/settings`, { is_archived: true })).json(), { id: g, is_archived: true })
  t.same(ids((await as.get('/conversations')).json()), [g3], 'the list leaves the archived out')
  t.same(ids((await as.get('/conversations?archived=true')).json()), [g2, g1, g0], 'listed with ?archived=true, most recent first')
  const first = (await as.get('/conversations?archived=true&limit=2')).json()
  t.same(ids(first), [g2, g1], 'paged')
  t.same(ids((await as.get(`/conversations?archived=true&limit=2&before=${first[1].id}`)).json()), [g0], 'with the same cursor')
  t.same(ids((await client(app, alice).get('/conversations')).json()), [g3, g2, g1, g0], "alice's list is her own")

  const msg = await sendAs(app, alice, g1, 'a new message')
  t.same(ids((await as.get('/conversations')).json()), [g3], 'a new message does not bring it back (it stays archived until unarchived)')
  const archived = (await as.get('/conversations?archived=true')).json()
  t.same(ids(archived), [g1, g2, g0], 'it moves up the archived list')
  t.match(archived[0], { unread_count: 1, last_message: { id: msg.id } })

  t.equal((await as.patch(`/conversations/${g1}/settings`, { is_archived: false })).json().is_archived, false)
  t.same(ids((await as.get('/conversations')).json()), [g1, g3], 'unarchived: back in the list')
})

t.test('settings are validated, and a stranger gets 404', async (t) => {
  const { app } = await buildTestApp(t)
  const [alice, bob, stranger] = [await register(app), await register(app), await register(app)]
  const g = await groupOf(app, alice, [bob])
  assertError(t, await client(app, bob).patch(`/conversations/${g}/settings`, {}), 400, 'VALIDATION_ERROR')
  assertError(t, await client(app, bob).patch(`/conversations/${g}/settings`, { muted_until: 'tomorrow' }), 400, 'VALIDATION_ERROR')
  assertError(t, await client(app, bob).patch(`/conversations/${g}/settings`, { is_archived: 'yes' }), 400, 'VALIDATION_ERROR')
  assertError(t, await client(app, bob).patch(`/conversations/${g}/settings`, { name: 'x' }), 400, 'VALIDATION_ERROR')
  const strangers = await client(app, stranger).patch(`/conversations/${g}/settings`, { is_archived: true })
  const unknown = await client(app, stranger).patch(`/conversations/${randomUUID()}/settings`, { is_archived: true })
  t.same(assertError(t, strangers, 404, 'CONVERSATION_NOT_FOUND'), unknown.json(), 'the same 404 as an unknown id')
})

t.test("the caller's sockets get conversation_updated with their own view; the other members get nothing", async (t) => {
  const { app, open } = await buildLiveApp(t)
  const [alice, bob] = [await register(app), await register(app)]
  const g = await groupOf(app, alice, [bob])
  const [phone, laptop, wa] = [await open(bob), await open(bob), await open(alice)]
  await client(app, bob).patch(`/conversations/${g}/settings`, { is_archived: true })
  for (const [name, ws] of [['phone', phone], ['laptop', laptop]] as const) {
    const frame = await ws.next((f) => f.type === 'conversation_updated' && f.conversation_id === g)
    t.match(frame.data, { id: g, is_archived: true, muted_until: null }, `bob's ${name} gets his own view`)
    t.equal(frame.seq, undefined, 'without seq: no event of the conversation')
  }
  await wa.sync()
  t.notOk(wa.frames.some((f) => f.type === 'conversation_updated'), 'alice hears nothing of it')
})
