// Blocking (issue 15, point 3): the list, `is_blocked`, and what a block refuses or hides, over REST and sockets.
import { randomBytes, randomUUID } from 'node:crypto'
import t from 'tap'
import { assertError, buildLiveApp, buildTestApp, client, groupOf, register, sendAs, type Session, type TestApp } from './helper.ts'

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64')

function upload(app: TestApp, who: Session, conversationId: string) {
  const boundary = `----parley${randomBytes(8).toString('hex')}`
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="pic.png"\r\nContent-Type: image/png\r\n\r\n`
  return app.inject({
    method: 'POST',
    url: `/messages/upload?conversation_id=${conversationId}`,
    payload: Buffer.concat([Buffer.from(head), PNG, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, authorization: `Bearer ${who.token}` },
  })
}

t.test('block, list, unblock; is_blocked on the public views; yourself 400, unknown or deleted 404', async (t) => {
  const { app } = await buildTestApp(t)
  const [alice, bob, carol, gone] = [await register(app), await register(app), await register(app), await register(app)]
  const as = client(app, alice)
  await groupOf(app, alice, [bob, carol])
  t.equal((await as.post(`/users/${bob.user.id}/block`)).statusCode, 204)
  t.equal((await as.post(`/users/${bob.user.id}/block`)).statusCode, 204, 'blocking twice is blocking once')
  t.equal((await as.post(`/users/${carol.user.id}/block`)).statusCode, 204)
  const list = (await as.get('/users/me/blocks')).json()
  t.same(list.map((u: { id: string }) => u.id).sort(), [bob.user.id, carol.user.id].sort(), 'both, once each')
  t.ok(list.every((u: { is_blocked: boolean; email?: string }) => u.is_blocked && !('email' in u)), 'public views, is_blocked')

  t.equal((await as.get(`/users/${bob.user.id}`)).json().is_blocked, true, 'GET /users/{id}')
  t.equal((await client(app, bob).get(`/users/${alice.user.id}`)).json().is_blocked, false, 'one way: bob does not block alice')
  const found = (await as.get(`/users?query=${bob.user.username}`)).json()
  t.equal(found[0].is_blocked, true, 'GET /users (search)')
  const convs = (await as.get('/conversations')).json()
  const members = convs[0].participants.map((p: { user: { id: string; is_blocked: boolean } }) => [p.user.id, p.user.is_blocked])
  t.same(Object.fromEntries(members), { [alice.user.id]: false, [bob.user.id]: true, [carol.user.id]: true }, "a conversation's participants")

  t.equal((await as.delete(`/users/${carol.user.id}/block`)).statusCode, 204)
  t.equal((await as.delete(`/users/${carol.user.id}/block`)).statusCode, 204, 'unblocking twice changes nothing')
  t.same((await as.get('/users/me/blocks')).json().map((u: { id: string }) => u.id), [bob.user.id])
  t.equal((await as.get(`/users/${carol.user.id}`)).json().is_blocked, false)

  assertError(t, await as.post(`/users/${alice.user.id}/block`), 400, 'CANNOT_BLOCK_SELF')
  assertError(t, await as.post(`/users/${randomUUID()}/block`), 404, 'USER_NOT_FOUND')
  await client(app, gone).delete('/users/me')
  assertError(t, await as.post(`/users/${gone.user.id}/block`), 404, 'USER_NOT_FOUND')
  assertError(t, await as.post('/users/not-a-uuid/block'), 400, 'VALIDATION_ERROR')
})

t.test('a block refuses the direct conversation either way, by every path; groups are untouched', async (t) => {
  const { app, open } = await buildLiveApp(t)
  const [alice, bob, carol] = [await register(app), await register(app), await register(app)]
  const dm = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id
  const group = await groupOf(app, alice, [bob, carol])
  const earlier = await sendAs(app, alice, group, 'to forward')
  await client(app, alice).post(`/users/${bob.user.id}/block`)

  for (const [who, other] of [[bob, alice], [alice, bob]] as const) {
    const role = who === alice ? 'the blocker' : 'the blocked'
    const as = client(app, who)
    assertError(t, await as.post('/messages', { conversation_id: dm, content: 'hi' }), 403, 'BLOCKED')
    assertError(t, await as.post('/messages', { recipient_id: other.user.id, content: 'hi' }), 403, 'BLOCKED')
    assertError(t, await as.post('/conversations', { participant_ids: [other.user.id] }), 403, 'BLOCKED')
    assertError(t, await upload(app, who, dm), 403, 'BLOCKED')
    assertError(t, await as.post(`/messages/${earlier.id}/forward`, { conversation_id: dm }), 403, 'BLOCKED')
    assertError(t, await as.post(`/messages/${earlier.id}/forward`, { recipient_id: other.user.id }), 403, 'BLOCKED')
    const ws = await open(who)
    ws.send({ type: 'send', ref: 'r1', conversation_id: dm, content: 'over the socket' })
    t.match(await ws.next((f) => f.ref === 'r1'), { type: 'error', code: 'BLOCKED' }, `${role}: the send frame too`)
    t.equal((await as.post('/messages', { conversation_id: group, content: `${role} in the group` })).statusCode, 201, `${role} still writes to the group`)
    t.equal((await as.get(`/conversations/${dm}`)).statusCode, 200, `${role} still reads the direct conversation`)
  }
  const history = (await client(app, alice).get(`/conversations/${dm}/messages`)).json()
  t.same(history, [], 'nothing was written to the direct conversation, no file either')
  const { n } = await app.db.selectFrom('files').select(app.db.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
  t.equal(Number(n), 0, 'a refused upload stored nothing')
  t.equal((await client(app, carol).post('/messages', { recipient_id: bob.user.id, content: 'others are free' })).statusCode, 201)

  await client(app, alice).delete(`/users/${bob.user.id}/block`)
  t.equal((await client(app, bob).post('/messages', { conversation_id: dm, content: 'after the unblock' })).statusCode, 201, 'unblocked: the pair writes again')
  t.equal((await client(app, alice).post('/messages', { recipient_id: bob.user.id, content: 'and back' })).statusCode, 201)
})

t.test('the blocked user gets neither the presence nor the typing of the blocker; others still do', async (t) => {
  const { app, open } = await buildLiveApp(t, { TYPING_TTL: '60000' })
  const [alice, bob, carol] = [await register(app), await register(app), await register(app)]
  const group = await groupOf(app, alice, [bob, carol])
  await client(app, alice).post(`/users/${bob.user.id}/block`)
  const [wb, wc] = [await open(bob), await open(carol)]
  const wa = await open(alice)
  await wc.next((f) => f.type === 'presence' && f.data.user_id === alice.user.id && f.data.is_online)
  await wb.sync()
  t.notOk(wb.frames.some((f) => f.type === 'presence' && f.data.user_id === alice.user.id), "bob's socket had no presence of alice")
  const seen = (await client(app, bob).get(`/users/${alice.user.id}`)).json()
  t.match(seen, { is_online: false, last_seen: null }, 'nor does GET /users/{id} show it to him')
  const member = (await client(app, bob).get(`/conversations/${group}`)).json().participants.find((p: { user: { id: string } }) => p.user.id === alice.user.id)
  t.match(member.user, { is_online: false, last_seen: null }, "nor the group's participants")
  t.equal((await client(app, carol).get(`/users/${alice.user.id}`)).json().is_online, true, 'carol sees alice online')

  wa.send({ type: 'typing', conversation_id: group, is_typing: true })
  await wc.next((f) => f.type === 'typing_indicator' && f.data.user_id === alice.user.id)
  await wb.sync()
  t.notOk(wb.frames.some((f) => f.type === 'typing_indicator'), 'bob was not told alice types')
  await client(app, alice).post(`/conversations/${group}/typing`, { is_typing: false })
  await wc.next((f) => f.type === 'typing_indicator' && f.data.user_id === alice.user.id && !f.data.is_typing)
  await wb.sync()
  t.notOk(wb.frames.some((f) => f.type === 'typing_indicator'), 'nor over REST')
  wb.send({ type: 'typing', conversation_id: group, is_typing: true })
  await wa.next((f) => f.type === 'typing_indicator' && f.data.user_id === bob.user.id)
  t.pass("the blocked user's typing still reaches the blocker")

  wb.close()
  await wa.next((f) => f.type === 'presence' && f.data.user_id === bob.user.id && !f.data.is_online)
  t.pass("the blocker still sees the blocked user's presence (a block hides the blocker only)")

  await client(app, alice).delete(`/users/${bob.user.id}/block`)
  const again = await open(bob)
  wa.send({ type: 'typing', conversation_id: group, is_typing: true })
  await again.next((f) => f.type === 'typing_indicator' && f.data.user_id === alice.user.id)
  t.pass('unblocked: typing reaches him again')
})

t.test('a block made or lifted while both are online: each side is told at once, the blocked one sees the blocker go offline', async (t) => {
  const { app, open } = await buildLiveApp(t)
  const [alice, bob, carol] = [await register(app), await register(app), await register(app)]
  await groupOf(app, alice, [bob, carol])
  const [wb, wc] = [await open(bob), await open(carol)]
  const [wa, wa2] = [await open(alice), await open(alice)]
  await wb.next((f) => f.type === 'presence' && f.data.user_id === alice.user.id && f.data.is_online)
  const profileOf = (userId: string) => (f: any) => f.type === 'user_updated' && f.data.id === userId

  t.equal((await client(app, alice).post(`/users/${bob.user.id}/block`)).statusCode, 204)
  t.match((await wb.next(profileOf(alice.user.id))).data, { id: alice.user.id, is_online: false, last_seen: null, is_blocked: false },
    'bob is told alice is offline to him (his view of her: no presence)')
  for (const [name, ws] of [['the device that blocked', wa], ['her other device', wa2]] as const) {
    t.match((await ws.next(profileOf(bob.user.id))).data, { id: bob.user.id, is_blocked: true, is_online: true }, `${name} learns is_blocked`)
  }
  await wc.sync()
  t.notOk(wc.frames.some((f) => f.type === 'user_updated'), 'carol, who is in neither side, hears nothing')

  t.equal((await client(app, alice).delete(`/users/${bob.user.id}/block`)).statusCode, 204)
  // (next() finds the first frame that matches: these look for the second one.)
  t.match((await wb.next((f) => profileOf(alice.user.id)(f) && f.data.is_online)).data, { is_online: true, is_blocked: false }, 'unblocked: bob sees her online again, at once')
  t.match((await wa2.next((f) => profileOf(bob.user.id)(f) && !f.data.is_blocked)).data, { id: bob.user.id, is_online: true }, "and alice's devices see the block lifted")
  t.equal(wb.count(profileOf(alice.user.id)), 2, 'one frame to bob for each change')
})
