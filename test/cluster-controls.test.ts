import t from 'tap'
import { call, startCluster } from './processes.ts'

// Issue 15 across two real instances on one database: a member's own frames (conversation_updated for their
// settings, read_state) and user_updated reach their sockets on the other instance; blocks hold there too.

const ENV = {
  JWT_SECRET: 'cluster-secret-that-is-at-least-32-chars',
  LOG_LEVEL: 'info',
  PRESENCE_HEARTBEAT: '200',
  PRESENCE_TTL: '1500',
  TYPING_TTL: '60000',
}

t.test('settings, read positions, profiles and blocks made on instance A reach sockets on instance B as they should', async (t) => {
  const { a, b, open, user } = await startCluster(t, ENV)
  const [alice, bob, carol, stranger] = [await user(a.base, 'alice'), await user(a.base, 'bob'), await user(a.base, 'carol'), await user(a.base, 'stranger')]
  const g = (await call(a.base, 'POST', '/conversations', alice.token, { is_group: true, name: 'Across', participant_ids: [bob.id, carol.id] })).body.id
  const msg = (await call(a.base, 'POST', '/messages', alice.token, { conversation_id: g, content: 'hello' })).body
  const [bobOnB, aliceOnB, carolOnB, strangerOnB] = [await open(b.base, bob.token), await open(b.base, alice.token), await open(b.base, carol.token), await open(b.base, stranger.token)]

  await call(a.base, 'PATCH', `/conversations/${g}/settings`, bob.token, { is_archived: true })
  t.match((await bobOnB.next((f) => f.type === 'conversation_updated' && f.conversation_id === g)).data, { id: g, is_archived: true }, "archived on A: bob's socket on B gets his own view")

  await call(a.base, 'POST', `/messages/${msg.id}/read`, bob.token)
  t.same((await bobOnB.next((f) => f.type === 'read_state')).data, { conversation_id: g, last_read_message_id: msg.id, unread_count: 0, unread_mention_count: 0 }, 'read on A: read_state on B')
  await call(a.base, 'POST', `/messages/${msg.id}/unread`, bob.token)
  t.match((await bobOnB.next((f) => f.type === 'read_state' && f.data.unread_count === 1)).data, { conversation_id: g, unread_count: 1 }, 'marked unread on A: read_state on B')

  await call(a.base, 'PATCH', '/users/me', alice.token, { display_name: 'Alice Across' })
  for (const [who, ws] of [['bob', bobOnB], ['carol', carolOnB], ['alice herself', aliceOnB]] as const) {
    t.match((await ws.next((f) => f.type === 'user_updated' && f.data.id === alice.id)).data, { display_name: 'Alice Across' }, `renamed on A: ${who} on B is told`)
  }

  // Carol blocks alice on A; on B, alice no longer hears carol type or come and go.
  await call(a.base, 'POST', `/users/${alice.id}/block`, carol.token)
  t.match((await aliceOnB.next((f) => f.type === 'user_updated' && f.data.id === carol.id)).data, { is_online: false, last_seen: null },
    'blocked on A: alice on B is told at once that she no longer sees carol online')
  carolOnB.send({ type: 'typing', conversation_id: g, is_typing: true })
  await bobOnB.next((f) => f.type === 'typing_indicator' && f.data.user_id === carol.id)
  await aliceOnB.sync()
  t.notOk(aliceOnB.frames.some((f) => f.type === 'typing_indicator'), 'blocked on A: no typing of the blocker on B')
  const carolsPresence = () => aliceOnB.count((f) => f.type === 'presence' && f.data.user_id === carol.id)
  const before = carolsPresence()
  carolOnB.close()
  await bobOnB.next((f) => f.type === 'presence' && f.data.user_id === carol.id && !f.data.is_online)
  await aliceOnB.sync()
  t.equal(carolsPresence(), before, 'nor her presence')

  await strangerOnB.sync()
  t.same(strangerOnB.frames.filter((f) => f.type !== 'pong'), [], 'the stranger on B heard nothing of all this')
  t.notOk(aliceOnB.frames.some((f) => f.type === 'conversation_updated' || f.type === 'read_state'), "nor alice of bob's own settings and reads")
})
