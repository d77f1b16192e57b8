import { randomUUID } from 'node:crypto'
import t from 'tap'
import { buildLiveApp, client, groupOf, register, sendAs } from './helper.ts'
import { checkServerFrame, serverFrameNames } from './frame-check.ts'
import type { Frame } from './ws-client.ts'

// What the server really sends, checked against the server-frame schemas of src/realtime/protocol.ts (the ones
// asyncapi.yaml is made from): every frame of a session that goes through every kind of frame, live and replayed.

t.test('the checker refuses an unknown type, a missing, wrong or extra field', async (t) => {
  const id = randomUUID()
  t.same(checkServerFrame({ type: 'pong' }), { name: 'pong' })
  t.same(checkServerFrame({ type: 'presence', data: { user_id: id, is_online: true, last_seen: null } }), { name: 'presence' })
  t.ok('error' in checkServerFrame({ type: 'conversation_updated', conversation_id: id, data: {} }), 'a Conversation that is not one')
  for (const [why, frame] of [
    ['unknown type', { type: 'message_exploded', conversation_id: id, seq: 1, data: {} }],
    ['no type', { data: {} }],
    ['missing field', { type: 'presence', data: { user_id: id, is_online: true } }],
    ['wrong type of field', { type: 'presence', data: { user_id: id, is_online: 'yes', last_seen: null } }],
    ['not a uuid', { type: 'presence', data: { user_id: 'bob', is_online: true, last_seen: null } }],
    ['extra field in data', { type: 'presence', data: { user_id: id, is_online: true, last_seen: null, mood: 'happy' } }],
    ['extra field in the frame', { type: 'pong', seq: 3 }],
    ['an event without its seq', { type: 'message_read', conversation_id: id, data: { conversation_id: id, message_id: id, user_id: id, read_at: new Date().toISOString() } }],
  ] as const) t.ok('error' in checkServerFrame(frame), why)
})

t.test('every frame a session receives, live and replayed, is one of the server frames', async (t) => {
  const { app, open } = await buildLiveApp(t, { TYPING_TTL: '60000' })
  const [alice, bob, carol] = [await register(app), await register(app), await register(app)]
  const [asAlice, asBob] = [client(app, alice), client(app, bob)]
  const wa = await open(alice)
  const g = await groupOf(app, alice, [bob], 'Frames')
  const wb = await open(bob)
  await wa.next((f) => f.type === 'presence' && f.data.user_id === bob.user.id)
  const is = (type: string, ref?: string) => (f: Frame) => f.type === type && (ref === undefined || f.ref === ref)

  // Client frames and their answers.
  wa.send({ type: 'send', ref: 's1', conversation_id: g, content: 'hello @' + bob.user.username })
  const m = (await wa.next(is('ack', 's1'))).data
  await wb.next((f) => f.type === 'new_message' && f.data.id === m.id)
  wa.send({ type: 'edit', ref: 'e1', message_id: m.id, content: 'hello, edited' })
  await wa.next(is('ack', 'e1'))
  await wb.next(is('message_edited'))
  wb.send({ type: 'react', ref: 'r1', message_id: m.id, emoji: '👍' })
  await wb.next(is('ack', 'r1'))
  wb.send({ type: 'unreact', ref: 'r2', message_id: m.id, emoji: '👍' })
  await wb.next(is('ack', 'r2'))
  await wa.next(is('reaction_removed'))
  wb.send({ type: 'typing', conversation_id: g, is_typing: true })
  await wa.next(is('typing_indicator'))
  wa.send({ type: 'auth', ref: 'a1', token: alice.token })
  await wa.next(is('ack', 'a1'))
  wa.send({ type: 'send', ref: 'x1', conversation_id: randomUUID(), content: 'nobody' })
  t.equal((await wa.next(is('error', 'x1'))).code, 'CONVERSATION_NOT_FOUND')
  wa.send('not json')
  await wa.next((f) => f.type === 'error' && f.code === 'BAD_FRAME')

  // Events of the log, made by REST.
  const reply = await sendAs(app, bob, g, 'in a thread', { thread_id: m.id })
  await wa.next(is('thread_updated'))
  await asAlice.post(`/messages/${m.id}/pin`)
  await wb.next(is('message_pinned'))
  await asAlice.delete(`/messages/${m.id}/pin`)
  await wb.next(is('message_unpinned'))
  wb.send({ type: 'read', ref: 'rd', message_id: reply.id })
  await wb.next(is('ack', 'rd'))
  await wa.next(is('message_read'))
  await wb.next(is('read_state'))
  await asAlice.patch(`/conversations/${g}`, { name: 'Frames 2' })
  await wb.next((f) => f.type === 'conversation_updated' && f.seq !== undefined)
  await asBob.patch(`/conversations/${g}/settings`, { is_archived: true })
  await wb.next((f) => f.type === 'conversation_updated' && f.seq === undefined)
  await asBob.patch('/users/me', { display_name: 'Bobby' })
  await wa.next((f) => f.type === 'user_updated' && f.data.display_name === 'Bobby')

  // Someone else comes and goes.
  await asAlice.post(`/conversations/${g}/participants`, { user_ids: [carol.user.id] })
  const wc = await open(carol)
  await wa.next((f) => f.type === 'presence' && f.data.user_id === carol.user.id && f.data.is_online)
  wc.close()
  await wa.next((f) => f.type === 'presence' && f.data.user_id === carol.user.id && !f.data.is_online)
  await asAlice.delete(`/conversations/${g}/participants/${carol.user.id}`)
  await wb.next(is('participant_removed'))
  wa.send({ type: 'delete', ref: 'd1', message_id: m.id })
  await wa.next(is('ack', 'd1'))
  await wb.next(is('message_deleted'))

  // The whole log again, as a resume replays it (another path: frames spliced from the log's text).
  const wr = await open(bob)
  wr.send({ type: 'resume', conversations: { [g]: 0 } })
  await wr.next(is('resumed'))
  await Promise.all([wa.sync(), wb.sync(), wr.sync()])
  t.ok(wr.count((f) => f.seq !== undefined) >= 20, 'the replay sent the log')

  const seen = new Map<string, number>()
  for (const [who, frames] of [['alice', wa.frames], ['bob', wb.frames], ['carol', wc.frames], ['bob, resuming', wr.frames]] as const) {
    for (const frame of frames) {
      const found = checkServerFrame(frame)
      if ('error' in found) t.fail(`${who} got a frame that is none of the server frames: ${found.error}`)
      else seen.set(found.name, (seen.get(found.name) ?? 0) + 1)
    }
  }
  t.same(serverFrameNames.filter((name) => !seen.has(name)), [], 'the session went through every server frame')
})
