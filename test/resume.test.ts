import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import pg from 'pg'
import t from 'tap'
import { buildLiveApp, client, register, type TestApp } from './helper.ts'
import type { Frame } from './ws-client.ts'
import { REPLAY_PAGE, replayPages, replayWindows } from '../src/realtime/replay.ts'

// `resume` (issue 11): a replay never gives back what was taken away, and a small frame cannot make the
// instance do or hold much.

const ofType = (type: string) => (f: Frame) => f.type === type

/** Writes n messages of `size` characters into a conversation through the real triggers, in one statement. */
async function bulk(app: TestApp, conv: string, sender: string, n: number, size = 10) {
  await sql`INSERT INTO messages (conversation_id, sender_id, message_type, content)
    SELECT ${conv}, ${sender}, 'text', lpad(g::text, ${size}, 'x') FROM generate_series(1, ${n}) g`.execute(app.db)
}

t.test('a replay serves each message as it is now: no deleted text, no earlier wording, nothing before a clear', async (t) => {
  const { app, open } = await buildLiveApp(t)
  const [alice, bob, carol] = [await register(app), await register(app), await register(app)]
  const as = client(app, alice)
  const group = (await as.post('/conversations', { is_group: true, name: 'G', participant_ids: [bob.user.id, carol.user.id] })).json().id
  const secret = (await as.post('/messages', { conversation_id: group, content: 'my password is hunter2' })).json()
  await as.delete(`/messages/${secret.id}`)
  const typo = (await as.post('/messages', { conversation_id: group, content: 'meet at the old place' })).json()
  await as.patch(`/messages/${typo.id}`, { content: 'meet at the new place' })
  const beforeClear = (await as.post('/messages', { conversation_id: group, content: 'said before bob cleared' })).json()
  t.equal((await client(app, bob).delete(`/conversations/${group}/messages`)).statusCode, 204, 'bob clears his history')
  const after = (await as.post('/messages', { conversation_id: group, content: 'said after bob cleared' })).json()

  const wb = await open(bob)
  wb.send({ type: 'resume', conversations: { [group]: 0 } })
  await wb.next(ofType('resumed'))
  const text = JSON.stringify(wb.frames)
  for (const gone of ['hunter2', 'old place', 'said before bob cleared']) t.notOk(text.includes(gone), `no frame holds "${gone}"`)
  t.same(wb.frames.filter((f) => f.type === 'new_message').map((f) => f.data.id), [after.id], 'bob gets only what came after his clear')
  t.notOk(wb.frames.some((f) => f.conversation_id === group && f.seq! <= beforeClear.seq), 'no event at or before his cleared point')

  // Carol cleared nothing: she gets every event, each message as it is now.
  const wc = await open(carol)
  wc.send({ type: 'resume', conversations: { [group]: 0 } })
  await wc.next(ofType('resumed'))
  const shown = (id: string) => wc.frames.filter((f) => f.data?.id === id).map((f) => [f.type, f.data.content])
  t.same(shown(secret.id), [['new_message', 'This message was deleted'], ['message_deleted', 'This message was deleted']], 'the deleted message in its deleted form only')
  t.same(shown(typo.id), [['new_message', 'meet at the new place'], ['message_edited', 'meet at the new place']], 'the edited message in its current wording only')
  t.notOk(JSON.stringify(wc.frames).includes('hunter2'), 'no trace of the deleted text')

  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM conversation_events
    WHERE payload::text LIKE '%hunter2%' OR payload::text LIKE '%old place%'`.execute(app.db)
  t.equal(rows[0].n, 0, 'the event log keeps neither the deleted text nor the earlier wording')
})

t.test('a former member is replayed up to their removal, and not what they had cleared', async (t) => {
  const { app, open } = await buildLiveApp(t)
  const [alice, bob] = [await register(app), await register(app)]
  const as = client(app, alice)
  const group = (await as.post('/conversations', { is_group: true, name: 'G', participant_ids: [bob.user.id] })).json().id
  await as.post('/messages', { conversation_id: group, content: 'cleared by bob' })
  await client(app, bob).delete(`/conversations/${group}/messages`)
  const kept = (await as.post('/messages', { conversation_id: group, content: 'bob saw this' })).json()
  await as.delete(`/conversations/${group}/participants/${bob.user.id}`)
  await as.post('/messages', { conversation_id: group, content: 'after bob left' })

  const wb = await open(bob)
  wb.send({ type: 'resume', conversations: { [group]: 0 } })
  await wb.next(ofType('resumed'))
  const inGroup = wb.frames.filter((f) => f.conversation_id === group)
  const contents = inGroup.filter((f) => f.type === 'new_message').map((f) => f.data.content)
  t.ok(contents.includes(kept.content), 'what came between his clear and his removal')
  t.notOk(contents.includes('cleared by bob'), 'not what he had cleared')
  t.notOk(contents.includes('after bob left'), 'nothing after his removal')
  t.equal(inGroup.at(-1)?.type, 'participant_removed', 'ending with his removal')
  t.notOk(inGroup.some((f) => 'cleared_seq' in (f.data as object)), 'the cleared point the log keeps is never sent')
})

t.test('a resume naming strangers and random ids answers nothing and keeps nothing', async (t) => {
  const { app, open } = await buildLiveApp(t)
  const [alice, bob, mallory] = [await register(app), await register(app), await register(app)]
  const theirs = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id
  await client(app, alice).post('/messages', { conversation_id: theirs, content: 'private' })
  const wm = await open(mallory)
  const named: Record<string, number> = { [theirs]: 0 }
  for (let i = 0; i < 999; i++) named[randomUUID()] = 0
  wm.send({ type: 'resume', conversations: named })
  await wm.next(ofType('resumed'))
  t.same(wm.frames.map((f) => f.type), ['resumed'], "no event of a conversation she is not in")
  const conns = [...((app.realtime.hub as unknown as { users: Map<string, { conns: Set<{ sent: Map<string, number> }> }> }).users.get(mallory.user.id)?.conns ?? [])]
  t.equal(conns.length, 1)
  t.equal(conns[0].sent.size, 0, 'the socket remembers no seq for ids it is not a member of')

  const tooMany: Record<string, number> = {}
  for (let i = 0; i < 1001; i++) tooMany[randomUUID()] = 0
  wm.send({ type: 'resume', conversations: tooMany })
  const error = await wm.next(ofType('error'))
  t.equal(error.code, 'BAD_FRAME', 'more than 1000 conversations in one resume is refused')
})

t.test('a large replay is read in pages and written as the socket drains: complete, in order, not cut off', async (t) => {
  // 3,000 events of ~3 KB: 9 MB through a socket allowed 256 KB of backlog. Written all at once (as a single
  // query's rows would be), the backlog passes the limit and the socket is closed as too slow.
  const { app, open } = await buildLiveApp(t, { WS_MAX_BUFFERED: String(256 * 1024) })
  const [alice, bob] = [await register(app), await register(app)]
  const conv = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id
  await bulk(app, conv, alice.user.id, 3000, 3000)
  const wb = await open(bob)
  wb.send({ type: 'resume', conversations: { [conv]: 0 } })
  await wb.until((fs) => wb.closed || fs.some(ofType('resumed')), 60_000)
  t.notOk(wb.closed, 'the socket stayed open')
  const seqs = wb.frames.filter((f) => f.type === 'new_message').map((f) => f.seq)
  t.equal(seqs.length, 3000, 'every message')
  t.same(seqs, [...seqs].sort((a, b) => a! - b!), 'in seq order')
  t.equal(new Set(seqs).size, 3000, 'each once')
})

t.test('one resume at a time per socket', async (t) => {
  const { app, url, open } = await buildLiveApp(t)
  const [alice, bob] = [await register(app), await register(app)]
  const conv = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id
  await bulk(app, conv, alice.user.id, 10)
  const wb = await open(bob)
  // The log locked by another transaction: the first replay waits on it, so it is surely still running.
  const locker = new pg.Client({ connectionString: url })
  await locker.connect()
  t.teardown(() => locker.end())
  await locker.query('BEGIN; LOCK TABLE conversation_events IN ACCESS EXCLUSIVE MODE')
  wb.send({ type: 'resume', conversations: { [conv]: 0 } })
  const hub = app.realtime.hub as unknown as { users: Map<string, { conns: Set<{ held?: unknown[] }> }> }
  const running = () => [...(hub.users.get(bob.user.id)?.conns ?? [])][0]?.held !== undefined
  while (!running()) await new Promise((resolve) => setTimeout(resolve, 10))
  wb.send({ type: 'resume', ref: 'second', conversations: { [conv]: 0 } })
  const refused = await wb.next(ofType('error'))
  t.match(refused, { ref: 'second', code: 'RESUME_IN_PROGRESS' }, 'a second resume is refused while the first runs')
  await locker.query('COMMIT')
  await wb.next(ofType('resumed'))
  await wb.sync()
  t.equal(wb.count(ofType('resumed')), 1, 'only the first is answered')
  t.equal(wb.count((f) => f.type === 'new_message'), 10, 'in full')
})

t.test('text that JSON must escape arrives intact over REST, live and in a replay', async (t) => {
  const { app, open } = await buildLiveApp(t)
  const [alice, bob] = [await register(app), await register(app)]
  const as = client(app, alice)
  const conv = (await as.post('/conversations', { participant_ids: [bob.user.id] })).json().id
  const wb = await open(bob)
  const content = 'he said "hi" \\ back\\slash\nnew line\ttab \u0001 \u2028 </script> é 👩‍👩‍👧 {"json":true}'
  const clientId = 'id with "quotes" and \\'
  const sent = await as.post('/messages', { conversation_id: conv, content, client_id: clientId })
  t.equal(sent.statusCode, 201)
  t.equal(sent.json().content, content, 'the answer')
  t.equal(sent.json().client_id, clientId, 'the client_id in the answer')
  const live = await wb.next((f) => f.type === 'new_message')
  t.same(live.data, sent.json(), 'the live frame is the message the sender was answered')
  const history = (await client(app, bob).get(`/conversations/${conv}/messages`)).json()
  t.same(history.find((m: { id: string }) => m.id === sent.json().id), sent.json(), 'the history')

  const wb2 = await open(bob)
  wb2.send({ type: 'resume', conversations: { [conv]: 0 } })
  await wb2.next(ofType('resumed'))
  const replayed = wb2.frames.find((f) => f.type === 'new_message')
  t.same(replayed?.data, sent.json(), 'the replayed frame is the same message, to the byte of its content')
})

t.test('a resume sent after live frames already arrived still gives back what came before them', async (t) => {
  // A client reconnects: what was committed while it was away comes from `resume`, but live frames of newer
  // events can reach the new socket before its resume frame does (npm run chaos found it after an instance died).
  const { app, open } = await buildLiveApp(t)
  const [alice, bob] = [await register(app), await register(app)]
  const as = client(app, alice)
  const group = (await as.post('/conversations', { is_group: true, name: 'G', participant_ids: [bob.user.id] })).json().id
  const seen = (await as.post('/messages', { conversation_id: group, content: 'seen before the drop' })).json()
  const missed = (await as.post('/messages', { conversation_id: group, content: 'sent while bob was away' })).json()
  const wb = await open(bob)
  const live = (await as.post('/messages', { conversation_id: group, content: 'sent after bob reconnected' })).json()
  await wb.next((f) => f.type === 'new_message' && f.data.id === live.id)
  wb.send({ type: 'resume', conversations: { [group]: seen.seq } })
  await wb.next(ofType('resumed'))
  const ids = wb.frames.filter((f) => f.type === 'new_message').map((f) => f.data.id)
  t.same(ids.sort(), [missed.id, live.id].sort(), 'the message bob missed is replayed, and the live one is not sent twice')
})

t.test("a replay's page probes each message by key: no scan of the conversation's messages, on any plan", async (t) => {
  const { app } = await buildLiveApp(t)
  const [alice, bob] = [await register(app), await register(app)]
  const conv = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id
  // A small table, freshly analyzed: the custom plan a prepared statement gets for its first executions hashed
  // every message of it once per page when the messages were joined.
  await bulk(app, conv, alice.user.id, 2000)
  await sql`ANALYZE messages`.execute(app.db)
  await sql`ANALYZE conversation_events`.execute(app.db)
  const plan = (mode: string) =>
    app.db.connection().execute(async (conn) => {
      await sql.raw(`SET plan_cache_mode = ${mode}`).execute(conn)
      await sql.raw(`PREPARE page(uuid, bigint, bigint) AS ${REPLAY_PAGE}`).execute(conn)
      const { rows } = await sql<{ 'QUERY PLAN': string }>`EXPLAIN EXECUTE page(${sql.lit(conv)}, 100, 600)`.execute(conn)
      await sql`DEALLOCATE page`.execute(conn)
      await sql`RESET plan_cache_mode`.execute(conn)
      return rows.map((r) => r['QUERY PLAN']).join('\n')
    })
  for (const mode of ['force_custom_plan', 'force_generic_plan']) {
    const text = await plan(mode)
    t.notMatch(text, /Seq Scan on messages/, `${mode}: no scan of messages`)
    t.match(text, /Index Scan using messages_pkey/, `${mode}: the message by its key`)
  }
})

t.test("a replay's first page is small and each after it twice the last, up to the page size: the first frames need not wait for a whole page", async (t) => {
  const { app } = await buildLiveApp(t)
  const [alice, bob] = [await register(app), await register(app)]
  const conv = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id
  await bulk(app, conv, alice.user.id, 1500)
  const [window] = await replayWindows(app.db, bob.user.id, { [conv]: 0 })
  const sizes: number[] = []
  const seqs: number[] = []
  for await (const page of replayPages(app.db, window, 500)) {
    sizes.push(page.length)
    for (const [seq, type] of page) if (type === 'new_message') seqs.push(seq)
  }
  t.same(sizes.slice(0, 4), [100, 200, 400, 500], 'pages of 100, 200, 400, then 500')
  t.equal(sizes.reduce((a, b) => a + b), window.last_seq - window.after, 'every event of the window, once')
  t.same(seqs, Array.from({ length: 1500 }, (_, i) => seqs[0] + i), 'the messages in seq order, none missing')
})
