import pg from 'pg'
import t, { type Test } from 'tap'
import { call, startCluster, stopServer } from './processes.ts'
import type { Frame } from './ws-client.ts'

// Two real instances (separate processes) on one real PostgreSQL: they share nothing else.

const ENV = {
  JWT_SECRET: 'cluster-secret-that-is-at-least-32-chars',
  LOG_LEVEL: 'info',
  PRESENCE_HEARTBEAT: '200',
  PRESENCE_TTL: '1500',
  LISTENER_PROBE_INTERVAL: '500',
}

const cluster = (t: Test) => startCluster(t, ENV)

const seqs = (frames: Frame[], conv: string) => frames.filter((f) => f.conversation_id === conv && f.seq !== undefined).map((f) => f.seq!)

t.test('a change made on instance A reaches sockets on instance B as its frame, in seq order', async (t) => {
  const { a, b, open, user, url } = await cluster(t)
  const alice = await user(a.base, 'alice')
  const bob = await user(a.base, 'bob')
  const carol = await user(b.base, 'carol')
  const stranger = await user(b.base, 'stranger')
  const wb = await open(b.base, bob.token)
  const wc = await open(b.base, carol.token)
  const ws = await open(b.base, stranger.token)
  const wa = await open(a.base, alice.token)

  const group = (await call(a.base, 'POST', '/conversations', alice.token, { is_group: true, name: 'Across', participant_ids: [bob.id] })).body
  const g = group.id
  const msg = (await call(a.base, 'POST', '/messages', alice.token, { conversation_id: g, content: 'from A' })).body
  t.same((await wb.next((f) => f.type === 'new_message' && f.data.id === msg.id)).data, msg, 'posted on A, framed on B, equal to the REST answer')
  await call(a.base, 'PATCH', `/messages/${msg.id}`, alice.token, { content: 'edited on A' })
  await call(a.base, 'POST', `/messages/${msg.id}/reactions`, alice.token, { emoji: '👍' })
  t.match((await wb.next((f) => f.type === 'reaction_added')).data, { message_id: msg.id, user_id: alice.id, emoji: '👍', reactions: [{ emoji: '👍', count: 1, user_ids: [alice.id] }] }, 'a reaction on A, framed on B')
  await call(a.base, 'DELETE', `/messages/${msg.id}/reactions/${encodeURIComponent('👍')}`, alice.token)
  await call(a.base, 'POST', '/messages', alice.token, { conversation_id: g, content: 'in the thread', thread_id: msg.id })
  await call(a.base, 'POST', `/messages/${msg.id}/pin`, alice.token)
  await call(b.base, 'POST', `/messages/${msg.id}/read`, bob.token)
  await call(a.base, 'POST', `/conversations/${g}/participants`, alice.token, { user_ids: [carol.id] })
  await call(a.base, 'PATCH', `/conversations/${g}`, alice.token, { name: 'Across 2' })
  await call(a.base, 'DELETE', `/conversations/${g}/participants/${carol.id}`, alice.token)
  await call(a.base, 'DELETE', `/messages/${msg.id}`, alice.token)

  await wb.next((f) => f.type === 'message_deleted' && f.data.id === msg.id)
  await wa.next((f) => f.type === 'message_deleted' && f.data.id === msg.id)
  const types = wb.frames.filter((f) => f.conversation_id === g && f.seq).map((f) => f.type)
  for (const type of ['new_message', 'message_edited', 'reaction_added', 'reaction_removed', 'thread_updated', 'message_pinned', 'message_read', 'participant_added', 'conversation_updated', 'participant_removed', 'message_deleted']) {
    t.ok(types.includes(type), `${type} reached B`)
  }
  t.match((await wc.next((f) => f.type === 'participant_added' && f.conversation_id === g)).data, { user_id: carol.id })
  t.match((await wc.next((f) => f.type === 'participant_removed' && f.conversation_id === g)).data, { user_id: carol.id })
  const all = seqs(wb.frames, g)
  t.same(all, Array.from({ length: all.length }, (_, i) => all[0] + i), 'contiguous seqs on B')
  t.same(seqs(wa.frames, g), Array.from({ length: seqs(wa.frames, g).length }, (_, i) => i + 1), 'the whole log, in order, on A')
  await ws.sync()
  t.same(ws.frames.filter((f) => f.type !== 'pong'), [], "the stranger's socket, open throughout, received nothing")

  // SIGTERM: A tells its clients to go elsewhere, clears its presence and exits cleanly.
  const exited = stopServer(a.proc)
  t.equal((await wa.closedWith()).code, 1001, 'going away')
  t.equal(await exited, 0, 'clean exit')
  t.match((await wb.next((f) => f.type === 'presence' && f.data.user_id === alice.id && !f.data.is_online)).data, { is_online: false }, "A's users go offline")
  t.notOk(a.logs.some((l) => /could not clear presence/.test(l)), 'A cleared its presence before closing its pool')
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  const { rows } = await db.query('SELECT count(*)::int AS n FROM instances')
  await db.end()
  t.equal(rows[0].n, 1, "only B's heartbeat row is left: A removed its own instead of waiting to be reaped")
})

t.test('an instance killed with SIGKILL: its users go offline, and a client that resumes on the other loses nothing', async (t) => {
  const { a, b, open, user } = await cluster(t)
  const alice = await user(b.base, 'alice')
  const bob = await user(b.base, 'bob')
  const conv = (await call(b.base, 'POST', '/conversations', alice.token, { participant_ids: [bob.id] })).body.id
  const wa = await open(b.base, alice.token)
  const onA = await open(a.base, bob.token)
  await wa.next((f) => f.type === 'presence' && f.data.user_id === bob.id && f.data.is_online)

  const sent: any[] = []
  for (let i = 0; i < 3; i++) sent.push((await call(b.base, 'POST', '/messages', alice.token, { conversation_id: conv, content: `before ${i}` })).body)
  await onA.next((f) => f.data?.id === sent[2].id)
  const lastSeen = Math.max(...seqs(onA.frames, conv))

  await stopServer(a.proc, 'SIGKILL')
  await onA.closedWith()
  const offline = await wa.next((f) => f.type === 'presence' && f.data.user_id === bob.id && !f.data.is_online)
  t.ok(offline, "the killed instance's user went offline through the heartbeat")
  for (let i = 0; i < 5; i++) sent.push((await call(b.base, 'POST', '/messages', alice.token, { conversation_id: conv, content: `while away ${i}` })).body)

  const back = await open(b.base, bob.token)
  back.send({ type: 'resume', conversations: { [conv]: lastSeen } })
  await back.next((f) => f.type === 'resumed')
  const more = (await call(b.base, 'POST', '/messages', alice.token, { conversation_id: conv, content: 'after' })).body
  await back.next((f) => f.data?.id === more.id)
  const before = onA.frames.filter((f) => f.type === 'new_message').map((f) => f.data.id)
  const after = back.frames.filter((f) => f.type === 'new_message').map((f) => f.data.id)
  t.same([...before, ...after], [...sent, more].map((m) => m.id), 'every message once, in order, across the two sockets')
  t.equal((await call(b.base, 'GET', `/users/${bob.id}`, alice.token)).body.is_online, true, 'online again on B')
})
