// Threads and mentions (issue 14, points 3 and 4), over REST and WebSocket frames.
import t from 'tap'
import { assertError, buildLiveApp, client, groupOf, register, sendAs, type Session } from './helper.ts'

const { app, db, open } = await buildLiveApp(t, { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000' })

const group = (admin: Session, members: Session[]) => groupOf(app, admin, members)

const send = (who: Session, conversationId: string, content: string, extra: Record<string, unknown> = {}) => sendAs(app, who, conversationId, content, extra)

const users = (n: number, prefix?: string) => Promise.all(Array.from({ length: n }, (_, i) => register(app, prefix ? `${prefix}${i}_${process.pid}` : undefined)))
const conversation = async (who: Session, id: string) => (await client(app, who).get(`/conversations/${id}`)).json()

t.test('threads: replies into a root, counted on the root with thread_updated, paged oldest first', async (t) => {
  const [a, b, s] = await users(3)
  const g = await group(a, [b])
  const root = await send(a, g, 'root')
  t.match(root, { thread_id: null, thread_reply_count: 0, thread_last_reply_at: null })
  const wb = await open(b)

  const r1 = await send(b, g, 'first reply', { thread_id: root.id })
  t.equal(r1.thread_id, root.id, 'a reply names its root')
  const upd = await wb.next((f) => f.type === 'thread_updated')
  t.same(upd.data, { conversation_id: g, message_id: root.id, thread_reply_count: 1, thread_last_reply_at: r1.created_at })
  const newMsg = wb.frames.find((f) => f.type === 'new_message' && f.data.id === r1.id)!
  t.equal(upd.seq, newMsg.seq! + 1, "the root's event follows the reply's")

  // Naming a reply posts into its root's thread; over the socket too.
  const ws = await open(a)
  ws.send({ type: 'send', ref: 's1', conversation_id: g, content: 'second reply', thread_id: r1.id })
  const r2 = (await ws.next((f) => f.ref === 's1')).data
  t.equal(r2.thread_id, root.id, "naming a reply makes its root the thread")
  const r3 = await send(a, g, 'third reply', { thread_id: root.id })
  await wb.next((f) => f.type === 'thread_updated' && f.data.thread_reply_count === 3)

  const got = (await client(app, b).get(`/messages/${root.id}`)).json()
  t.match(got, { thread_reply_count: 3, thread_last_reply_at: r3.created_at })
  const page = (await client(app, b).get(`/messages/${root.id}/thread`)).json()
  t.same(page.map((m: { id: string }) => m.id), [r1.id, r2.id, r3.id], 'oldest first')
  t.same((await client(app, b).get(`/messages/${r2.id}/thread?limit=1`)).json().map((m: { id: string }) => m.id), [r1.id], 'named by a reply: the same thread')
  t.same((await client(app, b).get(`/messages/${root.id}/thread?after=${r1.id}`)).json().map((m: { id: string }) => m.id), [r2.id, r3.id])
  t.same((await client(app, b).get(`/messages/${root.id}/thread?before=${r3.id}&limit=1`)).json().map((m: { id: string }) => m.id), [r2.id])
  assertError(t, await client(app, s).get(`/messages/${root.id}/thread`), 404, 'MESSAGE_NOT_FOUND')

  // Replies are ordinary messages: in the history, and unread.
  const history = (await client(app, b).get(`/conversations/${g}/messages`)).json()
  t.ok(history.some((m: { id: string }) => m.id === r3.id), 'in the history')
  t.equal((await conversation(b, g)).unread_count, 3, "b's unread: the root, r2 and r3")

  await client(app, a).delete(`/messages/${r3.id}`)
  const after = await wb.next((f) => f.type === 'thread_updated' && f.data.thread_reply_count === 2)
  t.equal(after.data.thread_last_reply_at, r2.created_at, 'a deleted reply leaves the count and the last reply time')

  const other = await group(a, [b])
  const elsewhere = await send(a, other, 'elsewhere')
  assertError(t, await client(app, b).post('/messages', { conversation_id: g, content: 'x', thread_id: elsewhere.id }), 400, 'INVALID_THREAD')
  assertError(t, await client(app, s).post('/messages', { conversation_id: g, content: 'x', thread_id: root.id }), 404, 'CONVERSATION_NOT_FOUND')

  const wb2 = await open(b)
  wb2.send({ type: 'resume', conversations: { [g]: 0 } })
  await wb2.next((f) => f.type === 'resumed')
  const replayed = wb2.frames.filter((f) => f.type === 'thread_updated')
  t.equal(replayed.length, 4, 'every thread_updated replayed')
  t.same(replayed[0].data, { conversation_id: g, message_id: root.id, thread_reply_count: 2, thread_last_reply_at: r2.created_at }, 'as the root is now')
})

t.test('mentions: @username of a current member, not inside a word or an address, counted until read', async (t) => {
  const [a, b, c, outsider] = await users(4, 'men')
  const g = await group(a, [b, c])
  const bn = b.user.username
  const m = await send(a, g, `hi @${bn.toUpperCase()}, mail ${c.user.username}@example.com, ask x@${c.user.username} and @${outsider.user.username}`)
  t.same(m.mentions, [b.user.id], 'only b: case-insensitive; not in an address or a word; not a non-member')
  t.equal((await conversation(b, g)).unread_mention_count, 1)
  t.equal((await conversation(c, g)).unread_mention_count, 0)
  t.equal((await conversation(a, g)).unread_mention_count, 0, 'not the sender')

  const m2 = await send(c, g, `@${bn} @${bn} twice`)
  t.same(m2.mentions, [b.user.id], 'once however often named')
  t.equal((await conversation(b, g)).unread_mention_count, 2)

  // An edit that removes the mention, a delete, and a read each bring the count down.
  const edited = (await client(app, c).patch(`/messages/${m2.id}`, { content: 'no one now' })).json()
  t.same(edited.mentions, [])
  t.equal((await conversation(b, g)).unread_mention_count, 1, 'after an edit that removes it')
  const readd = (await client(app, c).patch(`/messages/${m2.id}`, { content: `again @${bn}` })).json()
  t.same(readd.mentions, [b.user.id], 'an edit that adds it')
  t.equal((await conversation(b, g)).unread_mention_count, 2)
  await client(app, c).delete(`/messages/${m2.id}`)
  t.equal((await conversation(b, g)).unread_mention_count, 1, 'after a delete')
  await client(app, b).post(`/messages/${m.id}/read`)
  t.equal((await conversation(b, g)).unread_mention_count, 0, 'after a read')

  // Leaving: a former member is no longer mentioned; one who comes back counts only what came after.
  await send(a, g, `@${bn} before leaving`)
  await client(app, b).post(`/conversations/${g}/leave`)
  const gone = await send(a, g, `@${bn} after leaving`)
  t.same(gone.mentions, [], 'a former member is not mentioned')
  await client(app, a).post(`/conversations/${g}/participants`, { user_ids: [b.user.id] })
  t.equal((await conversation(b, g)).unread_mention_count, 0, 'back in: the mentions of before are not counted')
  const list = (await client(app, b).get('/conversations')).json()
  t.equal(list.find((x: { id: string }) => x.id === g).unread_mention_count, 0, 'the list says the same')
})
