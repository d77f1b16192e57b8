// Mark unread and read_state (issue 15, point 5): the reader's position moves back, the counts follow exactly,
// and the reader's own devices follow reads and mark-unread live; nobody else is told.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { assertError, buildLiveApp, client, groupOf, register, sendAs } from './helper.ts'
import type { Frame } from './ws-client.ts'

const readState = (conv: string) => (f: Frame) => f.type === 'read_state' && f.conversation_id === conv

t.test('mark unread moves the read position back to just before the message, with exact counts', async (t) => {
  const { app, open } = await buildLiveApp(t)
  const [alice, bob, stranger] = [await register(app), await register(app), await register(app)]
  const g = await groupOf(app, alice, [bob])
  const m1 = await sendAs(app, alice, g, 'one')
  const m2 = await sendAs(app, alice, g, `two for @${bob.user.username}`)
  await sendAs(app, bob, g, 'my own, never unread')
  const m4 = await sendAs(app, alice, g, `four for @${bob.user.username}`)
  const bb = client(app, bob)
  t.equal((await bb.post(`/messages/${m4.id}/read`)).statusCode, 204)
  t.match((await bb.get(`/conversations/${g}`)).json(), { unread_count: 0, unread_mention_count: 0 })

  const [phone, wa] = [await open(bob), await open(alice)]
  t.equal((await bb.post(`/messages/${m2.id}/unread`)).statusCode, 204)
  t.match((await bb.get(`/conversations/${g}`)).json(), { unread_count: 2, unread_mention_count: 2 }, 'two and four are unread again (bob\'s own three is not), both mention him')
  const frame = await phone.next(readState(g))
  t.same(frame.data, { conversation_id: g, last_read_message_id: m1.id, unread_count: 2, unread_mention_count: 2 }, 'read_state: positioned on the message before, the same counts')
  t.equal(frame.seq, undefined, 'without seq')

  t.equal((await bb.post(`/messages/${m4.id}/unread`)).statusCode, 204)
  t.match((await bb.get(`/conversations/${g}`)).json(), { unread_count: 2 }, 'marking a later message unread never moves the position forward')
  t.equal((await bb.post(`/messages/${m1.id}/unread`)).statusCode, 204)
  const created = (await bb.get(`/conversations/${g}/messages`)).json().find((m: { message_type: string }) => m.message_type === 'system')
  t.match((await phone.next((f) => readState(g)(f) && f.data.unread_count === 3)).data, { last_read_message_id: created.id, unread_count: 3, unread_mention_count: 2 },
    'before the first message: positioned on the group\'s "created" notice')

  // Others are not told, and what they knew stays true: bob did read those messages.
  await wa.sync()
  t.notOk(wa.frames.some((f) => f.type === 'read_state' || f.type === 'message_read'), 'alice hears nothing of it')
  t.same((await client(app, alice).get(`/messages/${m2.id}/receipts`)).json().map((r: { user_id: string }) => r.user_id), [bob.user.id], 'his receipt stays')

  // Reading again what he had read: the position moves, his devices follow, nobody else hears of a second read.
  t.equal((await bb.post(`/messages/${m2.id}/read`)).statusCode, 204)
  t.same((await phone.next((f) => readState(g)(f) && f.data.last_read_message_id === m2.id)).data, { conversation_id: g, last_read_message_id: m2.id, unread_count: 1, unread_mention_count: 1 })
  await wa.sync()
  t.notOk(wa.frames.some((f) => f.type === 'message_read'), 'no second message_read for what alice already saw read')
  const m5 = await sendAs(app, alice, g, 'five')
  t.equal((await bb.post(`/messages/${m5.id}/read`)).statusCode, 204)
  t.match((await wa.next((f) => f.type === 'message_read')).data, { message_id: m5.id, user_id: bob.user.id }, 'a read beyond what he had read is told as before')

  assertError(t, await client(app, stranger).post(`/messages/${m2.id}/unread`), 404, 'MESSAGE_NOT_FOUND')
  assertError(t, await bb.post(`/messages/${randomUUID()}/unread`), 404, 'MESSAGE_NOT_FOUND')
})

t.test("a read over REST or the read frame reaches the reader's other sockets as read_state", async (t) => {
  const { app, open } = await buildLiveApp(t)
  const [alice, bob] = [await register(app), await register(app)]
  const dm = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id
  const m1 = await sendAs(app, alice, dm, 'one')
  const m2 = await sendAs(app, alice, dm, 'two')
  const [phone, laptop, wa] = [await open(bob), await open(bob), await open(alice)]

  phone.send({ type: 'read', ref: 'r1', message_id: m1.id })
  await phone.next((f) => f.ref === 'r1' && f.type === 'ack')
  t.same((await laptop.next(readState(dm))).data, { conversation_id: dm, last_read_message_id: m1.id, unread_count: 1, unread_mention_count: 0 }, 'the read frame: the laptop follows')
  await client(app, bob).post(`/messages/${m2.id}/read`)
  t.same((await laptop.next((f) => readState(dm)(f) && f.data.last_read_message_id === m2.id)).data, { conversation_id: dm, last_read_message_id: m2.id, unread_count: 0, unread_mention_count: 0 }, 'REST: too')
  // The phone's socket gets it on its own time: waited for, not looked for at the moment the laptop's came.
  t.ok(await phone.next((f) => readState(dm)(f) && f.data.last_read_message_id === m2.id), 'and so does the phone')
  await wa.sync()
  t.notOk(wa.frames.some((f) => f.type === 'read_state'), 'the sender gets message_read, never read_state')
})

t.test("clearing a conversation's history reads it: the member's other devices follow", async (t) => {
  const { app, open } = await buildLiveApp(t)
  const [alice, bob] = [await register(app), await register(app)]
  const g = await groupOf(app, alice, [bob])
  await sendAs(app, alice, g, 'one @' + bob.user.username)
  await sendAs(app, alice, g, 'two')
  const [laptop, wa] = [await open(bob), await open(alice)]
  t.equal((await client(app, bob).delete(`/conversations/${g}/messages`)).statusCode, 204)
  t.same((await laptop.next(readState(g))).data, { conversation_id: g, last_read_message_id: null, unread_count: 0, unread_mention_count: 0 },
    'nothing left to read, no mention, and no message to point at')
  await wa.sync()
  t.notOk(wa.frames.some((f) => f.type === 'read_state'), 'the others are not told')
})
