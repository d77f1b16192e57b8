import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import t, { type Test } from 'tap'
import { assertError, buildTestApp, client, register, type Session, type TestApp } from './helper.ts'

type Ctx = Awaited<ReturnType<typeof buildTestApp>>
type DB = Ctx['db']

const MESSAGE_FIELDS = [
  'id', 'conversation_id', 'sender_id', 'seq', 'message_type', 'content', 'file_url', 'file_name', 'file_size',
  'mime_type', 'reply_to_id', 'is_edited', 'is_deleted', 'created_at', 'updated_at',
]
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const DELETED = 'This message was deleted'

const isIso = (s: unknown) => typeof s === 'string' && !Number.isNaN(Date.parse(s)) && new Date(s).toISOString() === s

/** Every field of the contract's Message, each of the right kind. */
function assertMessageShape(t: Test, m: any) {
  for (const f of MESSAGE_FIELDS) t.ok(f in m, `message has ${f}`)
  t.match(m.id, UUID)
  t.match(m.conversation_id, UUID)
  t.match(m.sender_id, UUID)
  t.ok(Number.isInteger(m.seq) && m.seq > 0, 'seq is a positive integer')
  t.ok(isIso(m.created_at), 'created_at is ISO-8601 UTC')
  t.ok(isIso(m.updated_at), 'updated_at is ISO-8601 UTC')
  t.type(m.is_edited, 'boolean')
  t.type(m.is_deleted, 'boolean')
}

async function directConversation(app: TestApp, a: Session, b: Session): Promise<string> {
  const res = await client(app, a).post('/conversations', { participant_ids: [b.user.id], is_group: false })
  if (res.statusCode !== 201 && res.statusCode !== 200) throw new Error(`direct failed: ${res.statusCode} ${res.body}`)
  return res.json().id
}

async function group(app: TestApp, admin: Session, members: Session[]): Promise<string> {
  const res = await client(app, admin).post('/conversations', { participant_ids: members.map((m) => m.user.id), is_group: true, name: 'team' })
  if (res.statusCode !== 201) throw new Error(`group failed: ${res.statusCode} ${res.body}`)
  return res.json().id
}

async function send(app: TestApp, who: Session, conversationId: string, content: string, extra: Record<string, unknown> = {}) {
  const res = await client(app, who).post('/messages', { conversation_id: conversationId, content, ...extra })
  if (res.statusCode !== 201) throw new Error(`send failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

/** The conversation's event log as a replay serves it. */
const events = (db: DB, conversationId: string) =>
  db.selectFrom('parley_served_events').select(['seq', 'type', 'payload']).where('conversation_id', '=', conversationId).orderBy('seq').execute()

async function lastSeq(db: DB, conversationId: string): Promise<number> {
  const row = await db.selectFrom('conversations').select('last_seq').where('id', '=', conversationId).executeTakeFirstOrThrow()
  return Number(row.last_seq)
}

/** The log of a conversation has no gap: its seqs are exactly 1..last_seq. */
async function assertContiguous(t: Test, db: DB, conversationId: string) {
  const seqs = (await events(db, conversationId)).map((e) => Number(e.seq))
  const n = await lastSeq(db, conversationId)
  t.same(seqs, Array.from({ length: n }, (_, i) => i + 1), `event seqs are 1..${n} with no gap`)
}

/** Runs an action and returns the events it appended to the conversation's log. */
async function newEvents(db: DB, conversationId: string, action: () => Promise<unknown>) {
  const before = (await events(db, conversationId)).length
  const result = await action()
  const after = await events(db, conversationId)
  return { result, added: after.slice(before) }
}

t.test('sending messages', async (t) => {
  const { app, db } = await buildTestApp(t)
  const alice = await register(app)
  const bob = await register(app)
  const carol = await register(app)
  const conv = await directConversation(app, alice, bob)

  t.test('by conversation_id answers 201 with a Message', async (t) => {
    const res = await client(app, alice).post('/messages', { conversation_id: conv, content: 'hello bob' })
    t.equal(res.statusCode, 201)
    const m = res.json()
    assertMessageShape(t, m)
    t.equal(m.conversation_id, conv)
    t.equal(m.sender_id, alice.user.id)
    t.equal(m.content, 'hello bob')
    t.equal(m.message_type, 'text')
    t.equal(m.is_edited, false)
    t.equal(m.is_deleted, false)
    t.equal(m.reply_to_id, null)
    t.equal(m.file_url, null)
    t.equal(m.file_name, null)
    t.equal(m.file_size, null)
    t.equal(m.mime_type, null)
    t.equal(m.seq, await lastSeq(db, conv), 'seq is the newest position of the log')
    const again = await client(app, bob).get(`/messages/${m.id}`)
    t.equal(again.statusCode, 200)
    t.same(again.json(), m, 'the recipient reads back the same message')
  })

  t.test('seq grows with each message', async (t) => {
    const a = await send(app, alice, conv, 'one')
    const b = await send(app, bob, conv, 'two')
    t.ok(b.seq > a.seq, 'later message has a larger seq')
  })

  t.test('by recipient_id opens the direct conversation, then reuses it', async (t) => {
    const dave = await register(app)
    const first = await client(app, alice).post('/messages', { recipient_id: dave.user.id, content: 'hi dave' })
    t.equal(first.statusCode, 201)
    const second = await client(app, alice).post('/messages', { recipient_id: dave.user.id, content: 'still there?' })
    t.equal(second.statusCode, 201)
    t.equal(second.json().conversation_id, first.json().conversation_id, 'both sends land in one conversation')
    const reply = await client(app, dave).post('/messages', { recipient_id: alice.user.id, content: 'yes' })
    t.equal(reply.statusCode, 201)
    t.equal(reply.json().conversation_id, first.json().conversation_id, 'the other direction reuses it too')
    t.not(first.json().conversation_id, conv, 'a different pair has a different conversation')

    const convRes = await client(app, dave).get(`/conversations/${first.json().conversation_id}`)
    t.equal(convRes.statusCode, 200)
    t.equal(convRes.json().is_group, false)
    t.same(convRes.json().participants.map((p: any) => p.user.id).sort(), [alice.user.id, dave.user.id].sort())
    const page = await client(app, dave).get(`/conversations/${first.json().conversation_id}/messages`)
    t.same(page.json().map((m: any) => m.content), ['yes', 'still there?', 'hi dave'])

    // The existing pair of alice and bob is reused as well.
    const toBob = await client(app, alice).post('/messages', { recipient_id: bob.user.id, content: 'via recipient' })
    t.equal(toBob.statusCode, 201)
    t.equal(toBob.json().conversation_id, conv)
  })

  t.test('exactly one of conversation_id and recipient_id', async (t) => {
    const both = await client(app, alice).post('/messages', { conversation_id: conv, recipient_id: bob.user.id, content: 'x' })
    assertError(t, both, 400)
    const neither = await client(app, alice).post('/messages', { content: 'x' })
    assertError(t, neither, 400)
    const page = await client(app, alice).get(`/conversations/${conv}/messages?limit=100`)
    t.notOk(page.json().some((m: any) => m.content === 'x'), 'nothing was sent')
  })

  t.test('content length is 1..5000', async (t) => {
    assertError(t, await client(app, alice).post('/messages', { conversation_id: conv, content: '' }), 400, 'VALIDATION_ERROR')
    const max = await client(app, alice).post('/messages', { conversation_id: conv, content: 'a'.repeat(5000) })
    t.equal(max.statusCode, 201)
    t.equal(max.json().content.length, 5000)
    assertError(t, await client(app, alice).post('/messages', { conversation_id: conv, content: 'a'.repeat(5001) }), 400, 'VALIDATION_ERROR')
    assertError(t, await client(app, alice).post('/messages', { conversation_id: conv }), 400, 'VALIDATION_ERROR')
  })

  t.test('a non-member cannot send to a conversation, and learns nothing', async (t) => {
    const before = await lastSeq(db, conv)
    const res = await client(app, carol).post('/messages', { conversation_id: conv, content: 'let me in' })
    assertError(t, res, 404)
    const unknown = await client(app, carol).post('/messages', { conversation_id: randomUUID(), content: 'anyone?' })
    assertError(t, unknown, 404)
    t.equal(unknown.json().code, res.json().code, 'a stranger sees the same answer as for a conversation that does not exist')
    t.equal(await lastSeq(db, conv), before, 'nothing was written')
  })

  t.test('sending to an unknown user is 404, to yourself 400', async (t) => {
    assertError(t, await client(app, alice).post('/messages', { recipient_id: randomUUID(), content: 'x' }), 404)
    assertError(t, await client(app, alice).post('/messages', { recipient_id: alice.user.id, content: 'x' }), 400)
  })

  t.test('reply_to_id must be a message of the same conversation', async (t) => {
    const original = await send(app, bob, conv, 'question?')
    const reply = await client(app, alice).post('/messages', { conversation_id: conv, content: 'answer', reply_to_id: original.id })
    t.equal(reply.statusCode, 201)
    t.equal(reply.json().reply_to_id, original.id)

    const other = await directConversation(app, alice, carol)
    const elsewhere = await send(app, carol, other, 'from another conversation')
    const before = await lastSeq(db, conv)
    const bad = await client(app, alice).post('/messages', { conversation_id: conv, content: 'answer', reply_to_id: elsewhere.id })
    assertError(t, bad, 400)
    assertError(t, await client(app, alice).post('/messages', { conversation_id: conv, content: 'answer', reply_to_id: randomUUID() }), 400)
    t.equal(await lastSeq(db, conv), before, 'nothing was written')
  })

  t.test('each send appends one new_message event equal to the response', async (t) => {
    const { result, added } = await newEvents(db, conv, () => client(app, bob).post('/messages', { conversation_id: conv, content: 'logged' }))
    const res = result as Awaited<ReturnType<ReturnType<typeof client>['post']>>
    t.equal(res.statusCode, 201)
    t.equal(added.length, 1, 'exactly one event')
    t.equal(added[0].type, 'new_message')
    t.equal(Number(added[0].seq), res.json().seq, "the event's seq is the message's seq")
    t.same(added[0].payload, res.json(), 'the event payload is the REST body')
    await assertContiguous(t, db, conv)
  })
})

t.test('client_id makes a send idempotent', async (t) => {
  const { app, db } = await buildTestApp(t)
  const alice = await register(app)
  const bob = await register(app)
  const conv = await directConversation(app, alice, bob)
  const rows = (clientId: string) => db.selectFrom('messages').select('id').where('client_id', '=', clientId).execute()

  t.test('a retry answers 200 with the first message', async (t) => {
    const clientId = randomUUID()
    const first = await client(app, alice).post('/messages', { conversation_id: conv, content: 'once', client_id: clientId })
    t.equal(first.statusCode, 201)
    const seqAfterFirst = await lastSeq(db, conv)
    const retry = await client(app, alice).post('/messages', { conversation_id: conv, content: 'once', client_id: clientId })
    t.equal(retry.statusCode, 200)
    t.same(retry.json(), first.json(), 'the identical first message')
    t.equal(retry.json().id, first.json().id)
    t.equal(retry.json().seq, first.json().seq)
    t.equal((await rows(clientId)).length, 1, 'only one row exists')
    t.equal(await lastSeq(db, conv), seqAfterFirst, 'the retry logged nothing')
    const page = await client(app, bob).get(`/conversations/${conv}/messages`)
    t.equal(page.json().filter((m: any) => m.content === 'once').length, 1, 'the recipient sees it once')
  })

  t.test('10 concurrent sends with one client_id create one message, without a gap in the log', async (t) => {
    const clientId = randomUUID()
    const results = await Promise.all(
      Array.from({ length: 10 }, () => client(app, alice).post('/messages', { conversation_id: conv, content: 'racy', client_id: clientId })),
    )
    const codes = results.map((r) => r.statusCode).sort()
    t.same(codes, [200, 200, 200, 200, 200, 200, 200, 200, 200, 201], 'one 201, the rest 200')
    const ids = new Set(results.map((r) => r.json().id))
    t.equal(ids.size, 1, 'all answers are the same message')
    const created = results.find((r) => r.statusCode === 201)!.json()
    for (const r of results) t.same(r.json(), created)
    t.equal((await rows(clientId)).length, 1, 'only one row exists')
    // A send right after must take the very next seq.
    const next = await send(app, alice, conv, 'after the race')
    t.equal(next.seq, await lastSeq(db, conv))
    await assertContiguous(t, db, conv)
  })

  t.test('the same client_id from another sender is independent', async (t) => {
    const clientId = randomUUID()
    const a = await client(app, alice).post('/messages', { conversation_id: conv, content: 'from alice', client_id: clientId })
    const b = await client(app, bob).post('/messages', { conversation_id: conv, content: 'from bob', client_id: clientId })
    t.equal(a.statusCode, 201)
    t.equal(b.statusCode, 201)
    t.not(a.json().id, b.json().id)
    t.equal(b.json().content, 'from bob')
    t.equal(b.json().sender_id, bob.user.id)
    t.equal((await rows(clientId)).length, 2)
  })
})

t.test('paging history', async (t) => {
  const { app } = await buildTestApp(t)
  const alice = await register(app)
  const bob = await register(app)
  const carol = await register(app)
  const conv = await directConversation(app, alice, bob)
  const sent: any[] = []
  for (let i = 0; i < 12; i++) sent.push(await send(app, i % 2 ? bob : alice, conv, `m${i}`))
  const other = await directConversation(app, alice, carol)
  const foreign = await send(app, alice, other, 'elsewhere')
  const page = async (t: Test, query: string) => {
    const res = await client(app, alice).get(`/conversations/${conv}/messages${query}`)
    t.equal(res.statusCode, 200, `GET ${query} is 200`)
    return res.json().map((m: any) => m.content) as string[]
  }
  const contents = (from: number, to: number) => sent.slice(from, to).map((m) => m.content)

  t.test('newest first by default', async (t) => {
    const res = await client(app, bob).get(`/conversations/${conv}/messages`)
    t.equal(res.statusCode, 200)
    t.same(res.json().map((m: any) => m.content), contents(0, 12).reverse())
    t.same(res.json()[0], sent[11], 'items are full Messages')
  })

  t.test('limit bounds the page, at most 100', async (t) => {
    t.same(await page(t, '?limit=3'), ['m11', 'm10', 'm9'])
    t.equal((await page(t, '?limit=100')).length, 12)
    assertError(t, await client(app, alice).get(`/conversations/${conv}/messages?limit=101`), 400, 'VALIDATION_ERROR')
    assertError(t, await client(app, alice).get(`/conversations/${conv}/messages?limit=0`), 400, 'VALIDATION_ERROR')
  })

  t.test('before gives older messages, newest first', async (t) => {
    t.same(await page(t, `?before=${sent[5].id}&limit=3`), ['m4', 'm3', 'm2'])
    t.same(await page(t, `?before=${sent[1].id}`), ['m0'])
    t.same(await page(t, `?before=${sent[0].id}`), [])
  })

  t.test('after gives newer messages, oldest first', async (t) => {
    t.same(await page(t, `?after=${sent[5].id}&limit=3`), ['m6', 'm7', 'm8'])
    t.same(await page(t, `?after=${sent[9].id}`), ['m10', 'm11'])
    t.same(await page(t, `?after=${sent[11].id}`), [])
  })

  t.test('walking pages with before covers every message once', async (t) => {
    const seen: string[] = []
    let cursor: string | undefined
    for (let i = 0; i < 20; i++) {
      const res = await client(app, alice).get(`/conversations/${conv}/messages?limit=5${cursor ? `&before=${cursor}` : ''}`)
      const items = res.json()
      if (items.length === 0) break
      seen.push(...items.map((m: any) => m.id))
      cursor = items.at(-1).id
    }
    t.same(seen, sent.map((m) => m.id).reverse(), 'every message exactly once, newest first')
  })

  t.test('walking pages with after covers every message once', async (t) => {
    const seen: string[] = [sent[0].id]
    let cursor = sent[0].id
    for (let i = 0; i < 20; i++) {
      const items = (await client(app, alice).get(`/conversations/${conv}/messages?limit=4&after=${cursor}`)).json()
      if (items.length === 0) break
      seen.push(...items.map((m: any) => m.id))
      cursor = items.at(-1).id
    }
    t.same(seen, sent.map((m) => m.id))
  })

  t.test('a cursor from another conversation is 404', async (t) => {
    assertError(t, await client(app, alice).get(`/conversations/${conv}/messages?before=${foreign.id}`), 404)
    assertError(t, await client(app, alice).get(`/conversations/${conv}/messages?after=${foreign.id}`), 404)
    assertError(t, await client(app, alice).get(`/conversations/${conv}/messages?before=${randomUUID()}`), 404)
  })

  t.test('a stranger cannot page, and the answer does not tell the conversation exists', async (t) => {
    const res = await client(app, carol).get(`/conversations/${conv}/messages`)
    assertError(t, res, 404)
    const none = await client(app, carol).get(`/conversations/${randomUUID()}/messages`)
    assertError(t, none, 404)
    t.equal(res.json().code, none.json().code)
  })
})

t.test('reading, editing and deleting a message', async (t) => {
  const { app, db } = await buildTestApp(t)
  const alice = await register(app)
  const bob = await register(app)
  const carol = await register(app)
  const stranger = await register(app)
  const direct = await directConversation(app, alice, bob)
  // alice is the group's admin; bob and carol are plain members.
  const team = await group(app, alice, [bob, carol])

  t.test('GET /messages/{id}: members only', async (t) => {
    const m = await send(app, alice, direct, 'look')
    const res = await client(app, bob).get(`/messages/${m.id}`)
    t.equal(res.statusCode, 200)
    t.same(res.json(), m)
    assertError(t, await client(app, stranger).get(`/messages/${m.id}`), 404)
    assertError(t, await client(app, alice).get(`/messages/${randomUUID()}`), 404)
  })

  t.test('only the sender edits', async (t) => {
    const m = await send(app, bob, team, 'typo heer')
    const { result, added } = await newEvents(db, team, () => client(app, bob).patch(`/messages/${m.id}`, { content: 'typo here' }))
    const res = result as Awaited<ReturnType<ReturnType<typeof client>['patch']>>
    t.equal(res.statusCode, 200)
    const edited = res.json()
    assertMessageShape(t, edited)
    t.equal(edited.id, m.id)
    t.equal(edited.content, 'typo here')
    t.equal(edited.is_edited, true)
    t.equal(edited.is_deleted, false)
    t.equal(edited.seq, m.seq, 'seq stays the position of its creation')
    t.equal(edited.created_at, m.created_at)
    t.equal(added.length, 1, 'one event')
    t.equal(added[0].type, 'message_edited')
    t.same(added[0].payload, edited, 'the event payload is the REST body')
    t.same((await client(app, carol).get(`/messages/${m.id}`)).json(), edited, 'others see the edit')

    const before = await lastSeq(db, team)
    const byMember = await client(app, carol).patch(`/messages/${m.id}`, { content: 'hijack' })
    assertError(t, byMember, 403)
    const byAdmin = await client(app, alice).patch(`/messages/${m.id}`, { content: 'hijack' })
    assertError(t, byAdmin, 403, undefined)
    assertError(t, await client(app, stranger).patch(`/messages/${m.id}`, { content: 'hijack' }), 404)
    assertError(t, await client(app, bob).patch(`/messages/${m.id}`, { content: '' }), 400, 'VALIDATION_ERROR')
    t.equal((await client(app, bob).get(`/messages/${m.id}`)).json().content, 'typo here', 'content unchanged')
    t.equal(await lastSeq(db, team), before, 'no event for refused edits')
  })

  t.test('a deleted message cannot be edited', async (t) => {
    const m = await send(app, alice, direct, 'soon gone')
    t.equal((await client(app, alice).delete(`/messages/${m.id}`)).statusCode, 200)
    const res = await client(app, alice).patch(`/messages/${m.id}`, { content: 'back' })
    assertError(t, res, 400)
    const now = (await client(app, alice).get(`/messages/${m.id}`)).json()
    t.equal(now.content, DELETED)
    t.equal(now.is_deleted, true)
  })

  t.test('the sender deletes: 200 with the deleted form, shown afterwards, twice is fine', async (t) => {
    const m = await send(app, bob, direct, 'secret')
    const { result, added } = await newEvents(db, direct, () => client(app, bob).delete(`/messages/${m.id}`))
    const res = result as Awaited<ReturnType<ReturnType<typeof client>['delete']>>
    t.equal(res.statusCode, 200)
    const gone = res.json()
    assertMessageShape(t, gone)
    t.equal(gone.id, m.id)
    t.equal(gone.is_deleted, true)
    t.equal(gone.content, DELETED)
    t.equal(gone.file_url, null)
    t.equal(gone.file_name, null)
    t.equal(gone.file_size, null)
    t.equal(gone.mime_type, null)
    t.equal(gone.seq, m.seq)
    t.equal(added.length, 1, 'one event')
    t.equal(added[0].type, 'message_deleted')
    t.same(added[0].payload, gone, 'the event payload is the REST body')

    t.same((await client(app, alice).get(`/messages/${m.id}`)).json(), gone, 'GET shows the deleted form')
    const listed = (await client(app, alice).get(`/conversations/${direct}/messages`)).json().find((x: any) => x.id === m.id)
    t.same(listed, gone, 'history shows the deleted form')
    const row = await db.selectFrom('messages').select(['content', 'is_deleted']).where('id', '=', m.id).executeTakeFirstOrThrow()
    t.same(row, { content: DELETED, is_deleted: true }, 'the row stays, its content is gone')

    const { result: again, added: none } = await newEvents(db, direct, () => client(app, bob).delete(`/messages/${m.id}`))
    const twice = again as typeof res
    t.equal(twice.statusCode, 200, 'deleting twice is fine')
    t.same(twice.json(), gone)
    t.equal(none.length, 0, 'a second delete logs nothing')
  })

  t.test('in a direct conversation the other person cannot delete', async (t) => {
    const m = await send(app, alice, direct, 'mine')
    assertError(t, await client(app, bob).delete(`/messages/${m.id}`), 403)
    assertError(t, await client(app, stranger).delete(`/messages/${m.id}`), 404)
    const now = (await client(app, alice).get(`/messages/${m.id}`)).json()
    t.equal(now.is_deleted, false)
    t.equal(now.content, 'mine')
  })

  t.test('in a group the admin can delete anyone’s message, a plain member only their own', async (t) => {
    const m = await send(app, bob, team, 'bob says')
    assertError(t, await client(app, carol).delete(`/messages/${m.id}`), 403)
    t.equal((await client(app, carol).get(`/messages/${m.id}`)).json().is_deleted, false, 'still there')
    const byAdmin = await client(app, alice).delete(`/messages/${m.id}`)
    t.equal(byAdmin.statusCode, 200)
    t.equal(byAdmin.json().is_deleted, true)
    t.equal(byAdmin.json().content, DELETED)
    t.equal(byAdmin.json().sender_id, bob.user.id, 'still bob’s message')

    const own = await send(app, carol, team, 'carol says')
    const byCarol = await client(app, carol).delete(`/messages/${own.id}`)
    t.equal(byCarol.statusCode, 200)
    t.equal(byCarol.json().is_deleted, true)
  })

  t.test('a promoted member can delete others’ messages', async (t) => {
    const m = await send(app, alice, team, 'from the admin')
    const promote = await client(app, alice).patch(`/conversations/${team}/participants/${carol.user.id}`, { role: 'admin' })
    t.equal(promote.statusCode, 200)
    const res = await client(app, carol).delete(`/messages/${m.id}`)
    t.equal(res.statusCode, 200)
    t.equal(res.json().is_deleted, true)
  })

  t.test('bad ids are 400', async (t) => {
    assertError(t, await client(app, alice).get('/messages/not-a-uuid'), 400, 'VALIDATION_ERROR')
    assertError(t, await client(app, alice).delete('/messages/not-a-uuid'), 400, 'VALIDATION_ERROR')
    assertError(t, await client(app, alice).patch('/messages/not-a-uuid', { content: 'x' }), 400, 'VALIDATION_ERROR')
  })
})

t.test('read state and receipts', async (t) => {
  const { app, db } = await buildTestApp(t)
  const alice = await register(app)
  const bob = await register(app)
  const carol = await register(app)
  const dave = await register(app)
  const stranger = await register(app)
  const team = await group(app, alice, [bob, carol, dave])
  const unread = async (who: Session) => (await client(app, who).get(`/conversations/${team}`)).json().unread_count as number

  const msgs: any[] = []
  for (let i = 0; i < 5; i++) msgs.push(await send(app, alice, team, `news ${i}`))

  t.test('marking read is 204 and covers every earlier message', async (t) => {
    const start = await unread(bob)
    t.ok(start >= 5, 'bob has at least the 5 new messages unread')
    const { result, added } = await newEvents(db, team, () => client(app, bob).post(`/messages/${msgs[2].id}/read`))
    const res = result as Awaited<ReturnType<ReturnType<typeof client>['post']>>
    t.equal(res.statusCode, 204)
    t.equal(res.body, '', 'no body')
    t.equal(await unread(bob), 2, 'only the two messages after the read one stay unread')
    t.equal(await unread(carol), start, 'other members are unaffected')
    t.equal(await unread(alice), 0, 'own messages are never unread')

    t.equal(added.length, 1, 'one event')
    t.equal(added[0].type, 'message_read')
    const payload = added[0].payload as any
    t.same(Object.keys(payload).sort(), ['conversation_id', 'message_id', 'read_at', 'user_id'])
    t.equal(payload.conversation_id, team)
    t.equal(payload.message_id, msgs[2].id)
    t.equal(payload.user_id, bob.user.id)
    t.ok(isIso(payload.read_at))

    for (const m of msgs.slice(0, 3)) {
      const receipts = (await client(app, alice).get(`/messages/${m.id}/receipts`)).json()
      t.same(receipts.map((r: any) => r.user_id), [bob.user.id], `${m.content} is read by bob`)
      t.equal(receipts[0].read_at, payload.read_at, 'at the time the event announced')
    }
    for (const m of msgs.slice(3)) {
      t.same((await client(app, alice).get(`/messages/${m.id}/receipts`)).json(), [], `${m.content} is not read yet`)
    }
  })

  t.test('reading an older message after a newer one changes nothing', async (t) => {
    const before = (await client(app, alice).get(`/messages/${msgs[0].id}/receipts`)).json()
    const { result, added } = await newEvents(db, team, () => client(app, bob).post(`/messages/${msgs[1].id}/read`))
    t.equal((result as { statusCode: number }).statusCode, 204)
    t.equal(added.length, 0, 'no new event')
    t.equal(await unread(bob), 2, 'unread count unchanged')
    t.same((await client(app, alice).get(`/messages/${msgs[0].id}/receipts`)).json(), before, 'receipts unchanged')
    const rows = await db.selectFrom('read_receipts').select('seq').where('conversation_id', '=', team).where('user_id', '=', bob.user.id).execute()
    t.equal(rows.length, 1, 'no new receipt')
    // Reading the same message again is just as silent.
    const { added: again } = await newEvents(db, team, () => client(app, bob).post(`/messages/${msgs[2].id}/read`))
    t.equal(again.length, 0)
  })

  t.test('receipts list readers of the message or a later one, never the sender', async (t) => {
    // carol reads the newest message: that implies every earlier one.
    t.equal((await client(app, carol).post(`/messages/${msgs[4].id}/read`)).statusCode, 204)
    t.equal(await unread(carol), 0)
    // dave reads only the first message.
    t.equal((await client(app, dave).post(`/messages/${msgs[0].id}/read`)).statusCode, 204)
    // the sender reading their own message is no receipt.
    t.equal((await client(app, alice).post(`/messages/${msgs[4].id}/read`)).statusCode, 204)

    const receipts = async (i: number) => {
      const res = await client(app, bob).get(`/messages/${msgs[i].id}/receipts`)
      t.equal(res.statusCode, 200)
      for (const r of res.json()) {
        t.same(Object.keys(r).sort(), ['read_at', 'user_id'])
        t.ok(isIso(r.read_at))
      }
      return (res.json() as any[]).map((r) => r.user_id).sort()
    }
    t.same(await receipts(0), [bob.user.id, carol.user.id, dave.user.id].sort(), 'first message: everyone but the sender')
    t.same(await receipts(2), [bob.user.id, carol.user.id].sort(), 'not dave, who only read an earlier one')
    t.same(await receipts(3), [carol.user.id], 'carol read a later one')
    t.same(await receipts(4), [carol.user.id])
    t.notOk((await receipts(4)).includes(alice.user.id), 'never the sender')
  })

  t.test('a later read keeps the first read time of earlier messages', async (t) => {
    const first = (await client(app, alice).get(`/messages/${msgs[0].id}/receipts`)).json().find((r: any) => r.user_id === bob.user.id)
    t.equal((await client(app, bob).post(`/messages/${msgs[4].id}/read`)).statusCode, 204)
    t.equal(await unread(bob), 0)
    const after = (await client(app, alice).get(`/messages/${msgs[0].id}/receipts`)).json().find((r: any) => r.user_id === bob.user.id)
    t.equal(after.read_at, first.read_at, 'first read time kept')
    t.same((await client(app, alice).get(`/messages/${msgs[4].id}/receipts`)).json().map((r: any) => r.user_id).sort(), [bob.user.id, carol.user.id].sort())
  })

  t.test('reading and receipts are for members only', async (t) => {
    const before = await lastSeq(db, team)
    assertError(t, await client(app, stranger).post(`/messages/${msgs[0].id}/read`), 404)
    assertError(t, await client(app, stranger).get(`/messages/${msgs[0].id}/receipts`), 404)
    assertError(t, await client(app, bob).post(`/messages/${randomUUID()}/read`), 404)
    t.equal(await lastSeq(db, team), before)
  })

  t.test('the log has no gaps after all of it', async (t) => {
    await assertContiguous(t, db, team)
  })
})

t.test('a read racing a change of the reader’s membership completes', async (t) => {
  const { app, db, url } = await buildTestApp(t)
  const alice = await register(app)
  const bob = await register(app)
  const team = await group(app, alice, [bob])
  const m = await send(app, alice, team, 'read me')

  // An admin change holds the conversation row, then writes bob's participant row (as adminChange does).
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  t.teardown(() => admin.end())
  await admin.query('BEGIN')
  await admin.query('SELECT id FROM conversations WHERE id = $1 FOR UPDATE', [team])
  const read = client(app, bob).post(`/messages/${m.id}/read`)
  // Wait (by state, not by time) until bob's read is queued behind the admin's lock.
  let waiting = 0
  for (let i = 0; i < 500 && waiting === 0; i++) {
    await sleep(10)
    const r = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    waiting = r.rows[0].n
  }
  t.equal(waiting, 1, "bob's read waits for the admin's change")
  let adminError: unknown
  try {
    await admin.query("UPDATE participants SET role = 'admin' WHERE conversation_id = $1 AND user_id = $2", [team, bob.user.id])
    await admin.query('COMMIT')
  } catch (err) {
    adminError = err
    await admin.query('ROLLBACK')
  }
  const res = await read
  t.equal(adminError, undefined, 'the admin change went through')
  t.equal(res.statusCode, 204, 'and so did the read, without a deadlock')
  const receipts = await client(app, alice).get(`/messages/${m.id}/receipts`)
  t.same(receipts.json().map((r: any) => r.user_id), [bob.user.id])
  const members = (await client(app, alice).get(`/conversations/${team}/participants`)).json()
  t.equal(members.find((p: any) => p.user.id === bob.user.id).role, 'admin')
  await assertContiguous(t, db, team)
})

t.test("within a conversation a message's time never goes back, though its writer began first", async (t) => {
  const { app, db, url } = await buildTestApp(t)
  const alice = await register(app)
  const team = await group(app, alice, [])
  // A writer whose transaction began (now()) before another's, and that takes its seq after it.
  const early = new pg.Client({ connectionString: url })
  await early.connect()
  t.teardown(() => early.end())
  await early.query('BEGIN')
  const began: Date = (await early.query('SELECT now() AS began')).rows[0].began
  // Until the clock has moved on by more than the column's millisecond, so that the two times can differ.
  while (Date.now() < began.getTime() + 5) await sleep(1)
  const second = await send(app, alice, team, 'began second, sent second')
  await early.query(`INSERT INTO messages (conversation_id, sender_id, message_type, content) VALUES ($1, $2, 'text', 'began first, sent third')`, [team, alice.user.id])
  await early.query('COMMIT')
  const third = await db.selectFrom('messages').select(['seq', 'created_at', 'updated_at']).where('conversation_id', '=', team).where('content', '=', 'began first, sent third').executeTakeFirstOrThrow()
  t.ok(Number(third.seq) > second.seq, 'the early writer took the later seq')
  t.ok(new Date(third.created_at) >= new Date(second.created_at), `and a time (${new Date(third.created_at).toISOString()}) no earlier than the message before it (${second.created_at}), not its transaction's start (${began.toISOString()})`)
  t.same(third.updated_at, third.created_at, 'updated_at starts as created_at')

  // A rename in a transaction that began before a message does not move the conversation's activity back.
  await early.query('BEGIN')
  const renameBegan: Date = (await early.query('SELECT now() AS began')).rows[0].began
  while (Date.now() < renameBegan.getTime() + 5) await sleep(1)
  const fourth = await send(app, alice, team, 'sent before the rename commits')
  await early.query(`UPDATE conversations SET name = 'renamed' WHERE id = $1`, [team])
  await early.query('COMMIT')
  const conversation = await db.selectFrom('conversations').select('updated_at').where('id', '=', team).executeTakeFirstOrThrow()
  t.ok(new Date(conversation.updated_at) >= new Date(fourth.created_at), "the conversation's activity stays at its latest message")
  const fifth = await send(app, alice, team, 'after the rename')
  t.ok(new Date(fifth.created_at) >= new Date(fourth.created_at), 'so the next message is no earlier either')
})
