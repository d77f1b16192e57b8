import pg from 'pg'
import t from 'tap'
import { buildTestApp, client, register } from './helper.ts'

// The event log lives in triggers/: these tests talk SQL to a real server, as the triggers' only users do.

async function connect(url: string) {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  return c
}

/** A direct conversation created through the API, returned with its members. */
async function conversation(t: Parameters<typeof buildTestApp>[0]) {
  const ctx = await buildTestApp(t)
  const alice = await register(ctx.app)
  const bob = await register(ctx.app)
  const res = await client(ctx.app, alice).post('/conversations', { participant_ids: [bob.user.id] })
  return { ...ctx, alice, bob, conversationId: res.json().id as string }
}

const insertMessage = (c: pg.Client, conversationId: string, senderId: string, content: string) =>
  c.query('INSERT INTO messages (conversation_id, sender_id, message_type, content) VALUES ($1, $2, $3, $4) RETURNING seq', [conversationId, senderId, 'text', content])

async function eventSeqs(c: pg.Client, conversationId: string): Promise<number[]> {
  const { rows } = await c.query('SELECT seq FROM conversation_events WHERE conversation_id = $1 ORDER BY seq', [conversationId])
  return rows.map((r) => Number(r.seq))
}

t.test('20 concurrent writers get seqs 1..20 exactly', async (t) => {
  const { url, alice } = await conversation(t)
  const setup = await connect(url)
  t.teardown(() => setup.end())
  // A conversation with no members, so messages are the only events in its log.
  const { rows } = await setup.query('INSERT INTO conversations (is_group, name, created_by) VALUES (true, $1, $2) RETURNING id', ['load', alice.user.id])
  const conv = rows[0].id
  const writers = await Promise.all(Array.from({ length: 20 }, () => connect(url)))
  t.teardown(() => Promise.all(writers.map((w) => w.end())))
  const seqs = await Promise.all(
    writers.map(async (w, i) => {
      await w.query('BEGIN')
      const r = await insertMessage(w, conv, alice.user.id, `m${i}`)
      await w.query('COMMIT')
      return Number(r.rows[0].seq)
    }),
  )
  t.same([...seqs].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1), 'each writer got its own seq, no gaps')
  t.same(await eventSeqs(setup, conv), Array.from({ length: 20 }, (_, i) => i + 1), 'the log is 1..20')
  const last = await setup.query('SELECT last_seq FROM conversations WHERE id = $1', [conv])
  t.equal(Number(last.rows[0].last_seq), 20)
})

t.test('seq order is commit order, and a rollback gives its seq back', async (t) => {
  const { url, conversationId, alice, bob } = await conversation(t)
  const [a, b, check] = await Promise.all([connect(url), connect(url), connect(url)])
  t.teardown(() => Promise.all([a.end(), b.end(), check.end()]))
  const before = (await eventSeqs(check, conversationId)).at(-1)!

  await a.query('BEGIN')
  const first = Number((await insertMessage(a, conversationId, alice.user.id, 'first')).rows[0].seq)
  await b.query('BEGIN')
  const order: string[] = []
  const second = insertMessage(b, conversationId, bob.user.id, 'second').then((r) => {
    order.push('b inserted')
    return Number(r.rows[0].seq)
  })
  // b waits on the conversation's row lock until a ends: see it blocked before a commits.
  const bPid = (b as unknown as { processID: number }).processID
  for (;;) {
    const w = await check.query("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", [bPid])
    if (w.rows[0]?.wait_event_type === 'Lock') break
  }
  order.push('a commits')
  await a.query('COMMIT')
  const secondSeq = await second
  await b.query('COMMIT')
  t.same(order, ['a commits', 'b inserted'], 'the second writer waited for the first to commit')
  t.equal(first, before + 1)
  t.equal(secondSeq, before + 2)

  await a.query('BEGIN')
  const rolledBack = Number((await insertMessage(a, conversationId, alice.user.id, 'never')).rows[0].seq)
  await a.query('ROLLBACK')
  const next = Number((await insertMessage(a, conversationId, alice.user.id, 'after rollback')).rows[0].seq)
  t.equal(rolledBack, before + 3)
  t.equal(next, before + 3, 'the rolled-back seq is reused: no gap')
  const seqs = await eventSeqs(check, conversationId)
  t.same(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'the log has no gaps')
})

t.test('a LISTEN connection hears events on commit, never on rollback', async (t) => {
  const { url, conversationId, alice } = await conversation(t)
  const [listener, writer] = await Promise.all([connect(url), connect(url)])
  t.teardown(() => Promise.all([listener.end(), writer.end()]))
  const heard: any[] = []
  let wake: () => void = () => {}
  listener.on('notification', (n) => {
    heard.push({ channel: n.channel, ...JSON.parse(n.payload!) })
    wake()
  })
  const nextNotification = () => new Promise<void>((resolve) => (wake = resolve))
  await listener.query('LISTEN parley_events')

  await writer.query('BEGIN')
  await insertMessage(writer, conversationId, alice.user.id, 'hello')
  // A round trip on the listener: anything already notified would have been delivered before its answer.
  await listener.query('SELECT 1')
  t.equal(heard.length, 0, 'nothing is announced before commit')
  const arrived = nextNotification()
  await writer.query('COMMIT')
  await arrived
  t.equal(heard.length, 1)
  t.equal(heard[0].channel, 'parley_events')
  t.equal(heard[0].conversation_id, conversationId)
  t.equal(heard[0].type, 'new_message')
  t.equal(heard[0].data.content, 'hello')
  t.equal(heard[0].seq, heard[0].data.seq)

  await writer.query('BEGIN')
  await insertMessage(writer, conversationId, alice.user.id, 'rolled back')
  await writer.query('ROLLBACK')
  const arrived2 = nextNotification()
  await insertMessage(writer, conversationId, alice.user.id, 'kept')
  await arrived2
  await listener.query('SELECT 1')
  t.equal(heard.length, 2, 'the rolled-back insert was never announced')
  t.equal(heard[1].data.content, 'kept')
  t.equal(heard[1].seq, heard[0].seq + 1)
})

t.test('a large event is announced by key, and the log serves it whole', async (t) => {
  const { app, url, conversationId, alice } = await conversation(t)
  const listener = await connect(url)
  t.teardown(() => listener.end())
  const heard: { payload: string }[] = []
  const arrived = new Promise<void>((resolve) =>
    listener.on('notification', (n) => {
      heard.push({ payload: n.payload! })
      resolve()
    }),
  )
  await listener.query('LISTEN parley_events')
  const content = '€'.repeat(5000) // 15,000 bytes of UTF-8: more than NOTIFY can carry
  const res = await client(app, alice).post('/messages', { conversation_id: conversationId, content })
  t.equal(res.statusCode, 201)
  await arrived
  t.ok(Buffer.byteLength(heard[0].payload) < 8000, 'the notification is small')
  const note = JSON.parse(heard[0].payload)
  t.same(note, { conversation_id: conversationId, seq: res.json().seq, type: 'new_message' }, 'key only, no data')
  const { rows } = await listener.query('SELECT payload FROM parley_served_events WHERE conversation_id = $1 AND seq = $2', [conversationId, note.seq])
  t.same(rows[0].payload, res.json(), 'the log serves the whole message, equal to the REST answer')
  const stored = await listener.query('SELECT payload FROM conversation_events WHERE conversation_id = $1 AND seq = $2', [conversationId, note.seq])
  t.same(stored.rows[0].payload, { message_id: res.json().id }, 'and stores its id only')
})

t.test('every kind of change lands in the log in order', async (t) => {
  const { app, url, alice, bob } = await conversation(t)
  const carol = await register(app)
  const as = client(app, alice)
  const group = (await as.post('/conversations', { is_group: true, name: 'Team', participant_ids: [bob.user.id] })).json()
  const msg = (await as.post('/messages', { conversation_id: group.id, content: 'hi' })).json()
  await as.patch(`/messages/${msg.id}`, { content: 'hi there' })
  await client(app, bob).post(`/messages/${msg.id}/read`)
  await as.post(`/conversations/${group.id}/participants`, { user_ids: [carol.user.id] })
  await as.patch(`/conversations/${group.id}/participants/${bob.user.id}`, { role: 'admin' })
  await as.patch(`/conversations/${group.id}`, { name: 'Team 2' })
  await as.delete(`/conversations/${group.id}/participants/${carol.user.id}`)
  await as.delete(`/messages/${msg.id}`)

  const c = await connect(url)
  t.teardown(() => c.end())
  // As a replay serves it: every message event shows the message as it is now (deleted, here).
  const { rows } = await c.query('SELECT seq, type, payload FROM parley_served_events WHERE conversation_id = $1 ORDER BY seq', [group.id])
  t.same(rows.map((r) => Number(r.seq)), rows.map((_, i) => i + 1), 'contiguous from 1')
  const deleted = { id: msg.id, is_deleted: true, content: 'This message was deleted' }
  const sys = (text: RegExp) => ({ type: 'new_message', payload: { message_type: 'system', content: text } })
  t.match(rows, [
    { type: 'participant_added', payload: { user_id: alice.user.id, role: 'admin', by: alice.user.id } },
    { type: 'participant_added', payload: { user_id: bob.user.id, role: 'member' } },
    sys(/created the group "Team"/),
    { type: 'new_message', payload: deleted },
    { type: 'message_edited', payload: deleted },
    { type: 'message_read', payload: { message_id: msg.id, user_id: bob.user.id } },
    { type: 'participant_added', payload: { user_id: carol.user.id, by: alice.user.id } },
    sys(/added/),
    { type: 'participant_role_changed', payload: { user_id: bob.user.id, role: 'admin', by: alice.user.id } },
    sys(/made .* an admin/),
    { type: 'conversation_updated', payload: { name: 'Team 2', by: alice.user.id } },
    sys(/renamed the group to "Team 2"/),
    { type: 'participant_removed', payload: { user_id: carol.user.id, by: alice.user.id } },
    sys(/removed/),
    { type: 'message_deleted', payload: deleted },
  ])
  t.notOk(rows.some((r) => 'cleared_seq' in r.payload), "a removal's cleared point is kept for replays, never served")
  t.equal(rows.length, 15, 'nothing else was logged')
  const conv = (await as.get(`/conversations/${group.id}`)).json()
  t.equal(conv.last_seq, 15, "the conversation's last_seq is the log's end")
})
