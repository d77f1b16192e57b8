import t from 'tap'
import { buildLiveApp, dropListener, client, JWT_SECRET, register, sessionIdOf, type Session } from './helper.ts'
import { UserFanout } from '../src/realtime/user-fanout.ts'
import type { Frame } from './ws-client.ts'

// Real sockets against a listening app on a real database. Multi-instance behaviour is in cluster.test.ts.

const live = buildLiveApp

const ofType = (type: string, conv?: string) => (f: Frame) => f.type === type && (conv === undefined || f.conversation_id === conv)
const seqsOf = (frames: Frame[], conv: string) => frames.filter((f) => f.conversation_id === conv && f.seq !== undefined).map((f) => f.seq!)

t.test('a missing, bad or expired token closes with 4401', async (t) => {
  const { app, open } = await live(t)
  const alice = await register(app)
  t.equal((await (await open()).closedWith()).code, 4401, 'no token')
  t.equal((await (await open({ token: 'garbage' } as Session)).closedWith()).code, 4401, 'garbage token')
  const expired = app.jwt.sign({ sub: alice.user.id, sid: sessionIdOf(alice.token) }, { expiresIn: 1, clockTimestamp: Date.now() - 10_000 } as never)
  t.equal((await (await open({ token: expired } as Session)).closedWith()).code, 4401, 'expired token')
  const ok = await open(alice, { protocol: true })
  t.equal(ok.socket.protocol, `bearer.${alice.token}`, 'the bearer subprotocol is accepted and echoed')
  await ok.sync()
  t.equal(ok.closed, undefined)
})

t.test('every event of a conversation arrives as its frame, to members only, with contiguous seqs', async (t) => {
  const { app, open } = await live(t, { TYPING_TTL: '60000' })
  const [alice, bob, carol, stranger] = [await register(app), await register(app), await register(app), await register(app)]
  const [wa, wb, wc, ws] = [await open(alice), await open(bob), await open(carol), await open(stranger)]
  const as = client(app, alice)
  const group = (await as.post('/conversations', { is_group: true, name: 'Live', participant_ids: [bob.user.id] })).json()
  const g = group.id
  const created = await wb.next(ofType('new_message', g))
  t.match(created.data, { message_type: 'system', content: /created the group/ })

  const msg = (await as.post('/messages', { conversation_id: g, content: 'hello' })).json()
  const frame = await wb.next((f) => f.type === 'new_message' && f.data.id === msg.id)
  t.same(frame.data, msg, 'the frame carries the same Message as the REST answer')
  t.equal(frame.seq, msg.seq)

  await as.patch(`/messages/${msg.id}`, { content: 'hello, edited' })
  t.equal((await wb.next(ofType('message_edited', g))).data.content, 'hello, edited')
  await client(app, bob).post(`/messages/${msg.id}/read`)
  t.match((await wa.next(ofType('message_read', g))).data, { conversation_id: g, message_id: msg.id, user_id: bob.user.id })

  await as.post(`/conversations/${g}/participants`, { user_ids: [carol.user.id] })
  t.match((await wc.next(ofType('participant_added', g))).data, { user_id: carol.user.id, role: 'member', by: alice.user.id }, 'the user concerned hears of it')
  t.match((await wb.next((f) => f.type === 'participant_added' && f.data.user_id === carol.user.id)).data, { role: 'member', by: alice.user.id }, 'and so do the members')
  const m2 = (await as.post('/messages', { conversation_id: g, content: 'welcome carol' })).json()
  t.equal((await wc.next((f) => f.type === 'new_message' && f.data.id === m2.id)).data.content, 'welcome carol', 'an added member receives on the socket already open')

  await as.patch(`/conversations/${g}`, { name: 'Live 2' })
  const renamed = await wb.next((f) => f.type === 'conversation_updated' && f.data.name === 'Live 2')
  t.equal(renamed.data.participants.length, 3, 'conversation_updated carries the Conversation')
  await as.patch(`/conversations/${g}/participants/${bob.user.id}`, { role: 'admin' })
  const promoted = await wb.next((f) => f.type === 'conversation_updated' && f.data.participants.some((p: any) => p.user.id === bob.user.id && p.role === 'admin'))
  t.ok(promoted.seq! > renamed.seq!)

  await client(app, bob).post(`/conversations/${g}/typing`, { is_typing: true })
  t.match((await wa.next(ofType('typing_indicator', g))).data, { conversation_id: g, user_id: bob.user.id, is_typing: true })
  t.notOk('seq' in (await wa.next(ofType('typing_indicator', g))), 'typing carries no seq')

  await as.delete(`/conversations/${g}/participants/${carol.user.id}`)
  t.match((await wc.next(ofType('participant_removed', g))).data, { user_id: carol.user.id, by: alice.user.id }, 'the removed user hears of it')
  await as.delete(`/messages/${msg.id}`)
  t.match((await wb.next(ofType('message_deleted', g))).data, { id: msg.id, is_deleted: true, content: 'This message was deleted' })

  await Promise.all([wa.sync(), wb.sync(), wc.sync(), ws.sync()])
  t.notOk(wc.frames.some((f) => f.type === 'message_deleted'), 'a removed member stops receiving at once')
  t.notOk(wb.frames.some((f) => f.type === 'typing_indicator'), 'the typist never hears their own typing')
  t.same(ws.frames.filter((f) => f.type !== 'pong'), [], 'the stranger received nothing')

  const events = await app.db.selectFrom('conversation_events').select('seq').where('conversation_id', '=', g).orderBy('seq').execute()
  t.same(seqsOf(wa.frames, g), events.map((e) => e.seq), "alice saw the whole log, in order, once")
  t.same(new Set(wb.frames.filter((f) => f.seq).map((f) => f.type)), new Set(['new_message', 'message_edited', 'message_read', 'participant_added', 'conversation_updated', 'participant_removed', 'message_deleted']))
})

t.test('client frames: ping, send, read, typing, and errors that keep the socket open', async (t) => {
  const { app, open } = await live(t, { WS_MAX_PAYLOAD: '8192' })
  const [alice, bob, stranger] = [await register(app), await register(app), await register(app)]
  const conv = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id
  const [wa, wb] = [await open(alice), await open(bob)]

  wa.send({ type: 'ping' })
  await wa.next(ofType('pong'))
  wa.send({ type: 'send', ref: 'r1', conversation_id: conv, content: 'over the socket', client_id: 'c-1' })
  const ack = await wa.next((f) => f.type === 'ack' && f.ref === 'r1')
  t.match(ack.data, { conversation_id: conv, content: 'over the socket', sender_id: alice.user.id })
  t.same((await wb.next(ofType('new_message', conv))).data, ack.data)
  wa.send({ type: 'send', ref: 'r2', conversation_id: conv, content: 'retry', client_id: 'c-1' })
  t.equal((await wa.next((f) => f.type === 'ack' && f.ref === 'r2')).data.id, ack.data.id, 'client_id makes it idempotent here too')

  wb.send({ type: 'read', ref: 'r3', message_id: ack.data.id })
  await wb.next((f) => f.type === 'ack' && f.ref === 'r3')
  t.match((await wa.next(ofType('message_read', conv))).data, { user_id: bob.user.id, message_id: ack.data.id })

  wb.send({ type: 'typing', conversation_id: conv, is_typing: true })
  t.match((await wa.next(ofType('typing_indicator', conv))).data, { user_id: bob.user.id, is_typing: true })

  const ws = await open(stranger)
  ws.send({ type: 'send', ref: 's1', conversation_id: conv, content: 'let me in' })
  t.match(await ws.next((f) => f.ref === 's1'), { type: 'error', code: 'CONVERSATION_NOT_FOUND' }, 'a stranger gets the 404 error')

  wa.send('not json')
  t.match(await wa.next((f) => f.type === 'error' && f.code === 'BAD_FRAME'), { error: /JSON/ })
  wa.send({ type: 'send', ref: 'bad1', conversation_id: conv, content: '' })
  t.match(await wa.next((f) => f.ref === 'bad1'), { type: 'error', code: 'BAD_FRAME' })
  wa.send({ type: 'explode' })
  wa.send({ type: 'send', ref: 'r4', conversation_id: conv, content: 'x'.repeat(5001) })
  t.match(await wa.next((f) => f.ref === 'r4'), { type: 'error', code: 'BAD_FRAME' })
  await wa.sync()
  t.equal(wa.closed, undefined, 'malformed frames do not close the socket')

  wa.send('x'.repeat(10_000))
  t.equal((await wa.closedWith()).code, 1009, 'a frame over WS_MAX_PAYLOAD closes with 1009')
  await wb.sync()
  t.equal(wb.closed, undefined, 'other sockets are untouched')
})

t.test('typing expires by itself when no stop comes', async (t) => {
  const { app, open } = await live(t, { TYPING_TTL: '300' })
  const [alice, bob] = [await register(app), await register(app)]
  const conv = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id
  const wa = await open(alice)
  await client(app, bob).post(`/conversations/${conv}/typing`, { is_typing: true })
  await wa.next((f) => f.type === 'typing_indicator' && f.data.is_typing === true)
  const stop = await wa.next((f) => f.type === 'typing_indicator' && f.data.is_typing === false)
  t.match(stop.data, { conversation_id: conv, user_id: bob.user.id })
  t.equal(await app.db.selectFrom('conversation_events').select('seq').where('type', 'like', 'typing%').executeTakeFirst(), undefined, 'never stored')
})

t.test('resume replays what a client missed, including conversations it joined meanwhile, then says resumed', async (t) => {
  const { app, open } = await live(t)
  const [alice, bob] = [await register(app), await register(app)]
  const as = client(app, alice)
  const conv = (await as.post('/conversations', { participant_ids: [bob.user.id] })).json().id
  const first = await open(bob)
  const m1 = (await as.post('/messages', { conversation_id: conv, content: 'one' })).json()
  await first.next((f) => f.data?.id === m1.id)
  const lastSeen = Math.max(...seqsOf(first.frames, conv))
  first.close()
  await first.closedWith()

  const missed = []
  for (let i = 0; i < 5; i++) missed.push((await as.post('/messages', { conversation_id: conv, content: `missed ${i}` })).json())
  const group = (await as.post('/conversations', { is_group: true, name: 'joined meanwhile', participant_ids: [bob.user.id] })).json()
  await as.post('/messages', { conversation_id: group.id, content: 'in the new group' })

  const again = await open(bob)
  again.send({ type: 'resume', conversations: { [conv]: lastSeen } })
  await again.next(ofType('resumed'))
  const got = again.frames.filter((f) => f.type === 'new_message' && f.conversation_id === conv).map((f) => f.data.content)
  t.same(got, missed.map((m) => m.content), 'every missed message, in order, once')
  t.same(seqsOf(again.frames, conv), Array.from({ length: 5 }, (_, i) => lastSeen + 1 + i), 'contiguous seqs after the last seen')
  const inGroup = again.frames.filter((f) => f.conversation_id === group.id)
  t.same(inGroup.map((f) => f.type), ['participant_added', 'new_message', 'new_message'], 'the joined group from their joining')
  t.equal(inGroup[0].data.user_id, bob.user.id)

  // Resuming again from the same point sends nothing twice on this socket.
  const before = again.frames.length
  again.send({ type: 'resume', conversations: { [conv]: lastSeen } })
  await again.until((fs) => fs.filter((f) => f.type === 'resumed').length === 2)
  t.same(again.frames.slice(before).map((f) => f.type), ['resumed'])
})

t.test('a dropped listener reconnects and replays: sockets still get every event, in order, once', async (t) => {
  const { app, url, open } = await live(t, { LISTENER_PROBE_INTERVAL: '200' })
  const [alice, bob] = [await register(app), await register(app)]
  const as = client(app, alice)
  const conv = (await as.post('/conversations', { participant_ids: [bob.user.id] })).json().id
  const wb = await open(bob)
  const m0 = (await as.post('/messages', { conversation_id: conv, content: 'before' })).json()
  await wb.next((f) => f.data?.id === m0.id)

  await dropListener(t, app, url)
  t.equal((await app.inject('/health/ready')).statusCode, 503, 'not ready while the listener is down')
  const sent: any[] = []
  for (let i = 0; i < 10; i++) sent.push((await as.post('/messages', { conversation_id: conv, content: `during ${i}` })).json())
  await wb.next((f) => f.data?.id === sent[9].id)
  t.equal((await app.inject('/health/ready')).statusCode, 200, 'ready again')
  const received = wb.frames.filter((f) => f.type === 'new_message').map((f) => f.data.content)
  t.same(received, ['before', ...sent.map((m) => m.content)], 'each once, in order')
  t.ok(app.realtime.listener.replays >= 1, 'the reconnect replayed from the log')
})

t.test('a reader that stops reading is closed, and others are not held up', async (t) => {
  const { app, open } = await live(t, { WS_MAX_BUFFERED: '65536' })
  const [alice, bob, carol] = [await register(app), await register(app), await register(app)]
  const as = client(app, alice)
  const group = (await as.post('/conversations', { is_group: true, name: 'firehose', participant_ids: [bob.user.id, carol.user.id] })).json()
  const slow = await open(bob)
  const fast = await open(carol)
  // Stop reading at the TCP level: the server's buffer for this socket can only grow.
  ;(slow.socket as unknown as { _socket: { pause(): void } })._socket.pause()
  const big = '€'.repeat(4990) // 15 kB a frame: the kernel's socket buffers fill quickly
  let last: any
  for (let i = 0; i < 3000 && app.realtime.hub.tooSlow === 0; i++) {
    last = (await as.post('/messages', { conversation_id: group.id, content: `${i} ${big}` })).json()
  }
  t.equal(app.realtime.hub.tooSlow, 1, 'the server gave up on the slow socket')
  ;(slow.socket as unknown as { _socket: { resume(): void } })._socket.resume()
  t.equal((await slow.closedWith()).code, 4008, 'closed as too slow')
  await fast.next((f) => f.data?.id === last.id)
  t.equal(fast.closed, undefined, 'the reading client got everything and stays')
})

t.test('presence: online with a first socket, offline with the last, told to those who share a conversation', async (t) => {
  const { app, open } = await live(t)
  const [alice, bob, stranger] = [await register(app), await register(app), await register(app)]
  await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })
  const wa = await open(alice)
  const ws = await open(stranger)
  t.equal((await client(app, alice).get(`/users/${bob.user.id}`)).json().is_online, false)

  const wb1 = await open(bob)
  const wb2 = await open(bob)
  t.match((await wa.next((f) => f.type === 'presence' && f.data.user_id === bob.user.id)).data, { is_online: true })
  t.equal((await client(app, alice).get(`/users/${bob.user.id}`)).json().is_online, true, 'the User shows it too')
  wb1.close()
  await wb1.closedWith()
  await wb2.sync()
  t.equal((await client(app, alice).get(`/users/${bob.user.id}`)).json().is_online, true, 'still online with one socket left')
  wb2.close()
  const offline = await wa.next((f) => f.type === 'presence' && f.data.is_online === false)
  t.equal(offline.data.user_id, bob.user.id)
  t.ok(Date.parse(offline.data.last_seen) > 0, 'last_seen is set')
  const bobNow = (await client(app, alice).get(`/users/${bob.user.id}`)).json()
  t.match(bobNow, { is_online: false, last_seen: offline.data.last_seen })
  await ws.sync()
  t.notOk(ws.frames.some((f) => f.type === 'presence' && f.data.user_id === bob.user.id), 'a stranger is not told')
  t.equal(wa.count((f) => f.type === 'presence' && f.data.user_id === bob.user.id), 2, 'one online, one offline: no flapping')
})

t.test('presence in a storm: many users coming online at once, each told only to those who share a conversation', async (t) => {
  const { app, open } = await live(t)
  // Three groups of four, and a watcher in each; a user in two groups is told to both watchers.
  const watchers = [await register(app), await register(app), await register(app)]
  const people = await Promise.all(Array.from({ length: 9 }, () => register(app)))
  const inGroup = (g: number) => [...people.slice(g * 3, g * 3 + 3), ...(g === 1 ? [people[0]] : [])]
  for (let g = 0; g < 3; g++) await client(app, watchers[g]).post('/conversations', { is_group: true, name: `g${g}`, participant_ids: inGroup(g).map((p) => p.user.id) })
  const ws = await Promise.all(watchers.map((w) => open(w)))
  await Promise.all(people.map((p) => open(p)))
  for (let g = 0; g < 3; g++) {
    const want = inGroup(g).map((p) => p.user.id).sort()
    const seen = await ws[g].until((frames) => {
      const online = [...new Set(frames.filter((f) => f.type === 'presence' && f.data.is_online).map((f) => f.data.user_id as string))].sort()
      return online.length >= want.length && online
    })
    t.same(seen, want, `watcher ${g} is told of its group's members coming online`)
  }
  for (const w of ws) await w.sync()
  for (let g = 0; g < 3; g++) {
    const members = new Set(inGroup(g).map((p) => p.user.id))
    const told = ws[g].frames.filter((f) => f.type === 'presence').map((f) => f.data.user_id as string)
    t.ok(told.every((id) => members.has(id)), `watcher ${g} hears of nobody outside its group`)
    t.equal(told.length, members.size, `watcher ${g} is told once per member`)
  }
})

t.test('presence changes of one turn are routed together, each to whom it concerns', async (t) => {
  const { app } = await live(t)
  const [alice, bob, carol, dan] = [await register(app), await register(app), await register(app), await register(app)]
  const ab = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id
  const cd = (await client(app, carol).post('/conversations', { participant_ids: [dan.user.id] })).json().id
  // Alice and Carol are the local users here; Bob and Dan change.
  const local = new Map([[ab, new Set([alice.user.id, bob.user.id])], [cd, new Set([carol.user.id])]])
  const sent: Array<[string, unknown]> = []
  const fanout = new UserFanout(app.db, { members: (c) => local.get(c), sendToUser: (u, f) => sent.push([u, 'data' in f ? f.data : undefined]) })
  const change = (user: Session, online: boolean) => ({ type: 'presence' as const, user_id: user.user.id, is_online: online, last_seen: null })
  fanout.push(change(bob, true))
  fanout.push(change(dan, true))
  fanout.push(change(bob, false))
  await fanout.delivered()
  t.same(sent, [
    [alice.user.id, { user_id: bob.user.id, is_online: true, last_seen: null }],
    [carol.user.id, { user_id: dan.user.id, is_online: true, last_seen: null }],
    [alice.user.id, { user_id: bob.user.id, is_online: false, last_seen: null }],
  ], 'in order, each to the local users who share a conversation with the one who changed, never to that user')
})

t.test('no subscribe race: an event committed right after the socket opens reaches it', async (t) => {
  const { app, open } = await live(t)
  const [alice, bob] = [await register(app), await register(app)]
  const conv = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id
  for (let i = 0; i < 15; i++) {
    const wb = await open(bob)
    const msg = (await client(app, alice).post('/messages', { conversation_id: conv, content: `right after open ${i}` })).json()
    await wb.next((f) => f.data?.id === msg.id)
    wb.close()
  }
  t.pass('all 15 arrived')
})

t.test('a peer that stops answering pings is closed', async (t) => {
  const { app, open } = await live(t, { WS_PING_INTERVAL: '150' })
  const alice = await register(app)
  const wa = await open(alice)
  await wa.sync()
  t.equal(app.realtime.hub.socketCount, 1)
  // The client's TCP socket stops reading: pings go unanswered, as with a dead peer.
  ;(wa.socket as unknown as { _socket: { pause(): void } })._socket.pause()
  while (app.realtime.hub.socketCount > 0) await new Promise((r) => setTimeout(r, 50))
  t.equal(app.realtime.hub.socketCount, 0, 'the server let go of it')
})

t.test("deleting an account closes that account's sockets with 4401", async (t) => {
  const { app, open } = await live(t)
  const [alice, bob] = [await register(app), await register(app)]
  const [wa, wb] = [await open(alice), await open(bob)]
  t.equal((await client(app, alice).delete('/users/me')).statusCode, 204)
  t.match(await wa.closedWith(), { code: 4401, reason: 'account deleted' })
  await wb.sync()
  t.equal(wb.closed, undefined, 'nobody else is affected')
})

t.test('shutdown closes sockets with 1001 so clients go elsewhere', async (t) => {
  const { app, open } = await live(t)
  const alice = await register(app)
  const wa = await open(alice)
  await wa.sync()
  await app.close()
  t.equal((await wa.closedWith()).code, 1001)
})

void JWT_SECRET
