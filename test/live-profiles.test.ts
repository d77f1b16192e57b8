// Live profiles (issue 15, point 6): user_updated to everyone who shares a conversation, and to the user's own
// sockets, on a new display name or avatar and on deletion. Across instances: cluster-controls.test.ts.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { buildLiveApp, client, groupOf, register, type Session, type TestApp } from './helper.ts'
import type { Frame } from './ws-client.ts'

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64')

function setAvatar(app: TestApp, who: Session) {
  const boundary = `----parley${randomBytes(8).toString('hex')}`
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="me.png"\r\nContent-Type: image/png\r\n\r\n`
  return app.inject({
    method: 'POST',
    url: '/users/me/avatar',
    payload: Buffer.concat([Buffer.from(head), PNG, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, authorization: `Bearer ${who.token}` },
  })
}

const updated = (userId: string, test: (data: any) => boolean = () => true) => (f: Frame) => f.type === 'user_updated' && f.data.id === userId && test(f.data)

t.test('a new display name or avatar reaches those who share a conversation and the user\'s own sockets, nobody else', async (t) => {
  const { app, open } = await buildLiveApp(t)
  const [alice, bob, carol, stranger] = [await register(app), await register(app), await register(app), await register(app)]
  await groupOf(app, alice, [bob])
  await client(app, alice).post('/conversations', { participant_ids: [carol.user.id] })
  const [wb, wc, ws, mine] = [await open(bob), await open(carol), await open(stranger), await open(alice)]
  // Alice online first, so that every view below was read with her presence settled.
  await wb.next((f) => f.type === 'presence' && f.data.user_id === alice.user.id && f.data.is_online)

  const answer = (await client(app, alice).patch('/users/me', { display_name: 'Alice Liddell' })).json()
  for (const [who, ws] of [['bob (a group)', wb], ['carol (a direct conversation)', wc], ['alice herself', mine]] as const) {
    const frame = await ws.next(updated(alice.user.id, (u) => u.display_name === 'Alice Liddell'))
    t.same(frame.data, { ...(({ email: _, ...rest }) => rest)(answer), is_blocked: false, is_deleted: false }, `${who}: the public User, as GET /users/{id} gives it`)
    t.equal(frame.seq, undefined, 'without seq')
  }
  const avatar = (await setAvatar(app, alice)).json().avatar_url
  t.match((await wb.next(updated(alice.user.id, (u) => u.avatar_url !== null))).data, { avatar_url: avatar }, 'a new avatar too')
  await ws.sync()
  t.notOk(ws.frames.some((f) => f.type === 'user_updated'), 'the stranger hears nothing')
  const before = wb.count((f) => f.type === 'user_updated')
  await client(app, alice).patch('/users/me', { display_name: 'Alice Liddell' })
  await client(app, alice).patch('/users/me', { display_name: 'Alice L.' })
  await wb.next(updated(alice.user.id, (u) => u.display_name === 'Alice L.'))
  t.equal(wb.count((f) => f.type === 'user_updated'), before + 1, 'a change that changes nothing is not announced')
})

t.test('each recipient sees the user as they may: is_blocked for the blocker, no presence for the blocked', async (t) => {
  const { app, open } = await buildLiveApp(t)
  const [alice, bob, carol] = [await register(app), await register(app), await register(app)]
  await groupOf(app, alice, [bob, carol])
  await client(app, carol).post(`/users/${alice.user.id}/block`)
  await client(app, alice).post(`/users/${bob.user.id}/block`)
  const [wb, wc] = [await open(bob), await open(carol)]
  const wa = await open(alice)
  await wc.next((f) => f.type === 'presence' && f.data.user_id === alice.user.id)
  await client(app, alice).patch('/users/me', { display_name: 'Renamed' })
  // The blocks' own user_updated may come first, when the sockets open before the block is announced.
  const renamed = updated(alice.user.id, (d) => d.display_name === 'Renamed')
  t.match((await wc.next(renamed)).data, { display_name: 'Renamed', is_blocked: true, is_online: true }, 'carol blocks alice: is_blocked')
  t.match((await wb.next(renamed)).data, { display_name: 'Renamed', is_blocked: false, is_online: false, last_seen: null }, 'alice blocks bob: he gets her name, not her presence')
  t.match((await wa.next(renamed)).data, { is_blocked: false, is_online: true }, 'alice sees herself')
})

t.test('a deleted account is announced as deleted to those who share a conversation', async (t) => {
  const { app, open } = await buildLiveApp(t)
  const [alice, bob] = [await register(app), await register(app)]
  await groupOf(app, alice, [bob])
  const wb = await open(bob)
  await client(app, alice).delete('/users/me')
  t.match((await wb.next(updated(alice.user.id))).data, { id: alice.user.id, is_deleted: true }, 'is_deleted')
  t.equal((await client(app, bob).get(`/users/${alice.user.id}`)).json().is_deleted, true, 'as GET /users/{id} says')
})
