import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { assertError, buildTestApp, client, register, uniqueName, type Session, type TestApp } from './helper.ts'

type DB = Awaited<ReturnType<typeof buildTestApp>>['db']

const as = (app: TestApp, s: Session) => client(app, s)
const ids = (list: { id: string }[]) => list.map((x) => x.id)
const memberIds = (conv: { participants: { user: { id: string } }[] }) => conv.participants.map((p) => p.user.id).sort()
const roleOf = (conv: { participants: { user: { id: string }; role: string }[] }, userId: string) => conv.participants.find((p) => p.user.id === userId)?.role

async function createGroup(t: Test, app: TestApp, creator: Session, others: Session[], name = uniqueName('group')) {
  const res = await as(app, creator).post('/conversations', { participant_ids: others.map((o) => o.user.id), is_group: true, name })
  t.equal(res.statusCode, 201, `group "${name}" created`)
  return res.json()
}

async function openDirect(t: Test, app: TestApp, a: Session, b: Session) {
  const res = await as(app, a).post('/conversations', { participant_ids: [b.user.id], is_group: false })
  t.ok([200, 201].includes(res.statusCode), 'direct conversation opened')
  return res.json()
}

async function send(t: Test, app: TestApp, s: Session, conversationId: string, content = uniqueName('msg')) {
  const res = await as(app, s).post('/messages', { conversation_id: conversationId, content })
  t.equal(res.statusCode, 201, 'message sent')
  return res.json()
}

async function messagesOf(t: Test, app: TestApp, s: Session, conversationId: string) {
  const res = await as(app, s).get(`/conversations/${conversationId}/messages?limit=100`)
  t.equal(res.statusCode, 200, 'history readable')
  return res.json() as { id: string; seq: number; message_type: string; content: string; sender_id: string; is_deleted: boolean }[]
}

async function conversationOf(t: Test, app: TestApp, s: Session, conversationId: string) {
  const res = await as(app, s).get(`/conversations/${conversationId}`)
  t.equal(res.statusCode, 200, 'conversation readable')
  return res.json()
}

async function unread(t: Test, app: TestApp, s: Session, conversationId: string): Promise<number> {
  return (await conversationOf(t, app, s, conversationId)).unread_count
}

/** The conversation's event log as a replay serves it, checked to be exactly seqs 1..last_seq. */
async function eventLog(t: Test, db: DB, conversationId: string) {
  const { last_seq } = await db.selectFrom('conversations').select('last_seq').where('id', '=', conversationId).executeTakeFirstOrThrow()
  const events = await db
    .selectFrom('parley_served_events')
    .select(['seq', 'type', 'payload'])
    .where('conversation_id', '=', conversationId)
    .orderBy('seq')
    .execute()
  t.same(
    events.map((e) => Number(e.seq)),
    Array.from({ length: Number(last_seq) }, (_, i) => i + 1),
    'event seqs are contiguous 1..last_seq',
  )
  return { lastSeq: Number(last_seq), events: events as { seq: number; type: string; payload: any }[] }
}

/** The log's entries after a given seq. */
async function eventsSince(t: Test, db: DB, conversationId: string, since: number) {
  const log = await eventLog(t, db, conversationId)
  return log.events.filter((e) => Number(e.seq) > since)
}

t.test('direct conversations', async (t) => {
  const { app, db } = await buildTestApp(t)
  const a = await register(app)
  const b = await register(app)

  let directId = ''
  t.test('creating one gives both users as members and nothing read or sent yet', async (t) => {
    const res = await as(app, a).post('/conversations', { participant_ids: [b.user.id], is_group: false })
    t.equal(res.statusCode, 201)
    const conv = res.json()
    directId = conv.id
    t.equal(conv.is_group, false)
    t.equal(conv.name, null)
    t.equal(conv.created_by, a.user.id)
    t.same(memberIds(conv), [a.user.id, b.user.id].sort())
    t.ok(conv.participants.every((p: { role: string }) => p.role === 'member'), 'both are plain members')
    t.equal(conv.last_message, null)
    t.equal(conv.unread_count, 0)

    const log = await eventLog(t, db, conv.id)
    t.same(log.events.map((e) => e.type), ['participant_added', 'participant_added'])
    t.same(log.events.map((e) => e.payload.user_id).sort(), [a.user.id, b.user.id].sort())
    t.ok(log.events.every((e) => e.payload.by === a.user.id), 'added by the creator')
    t.equal(conv.last_seq, log.lastSeq)
  })

  t.test('creating it again, from either side, answers 200 with the same conversation', async (t) => {
    const again = await as(app, a).post('/conversations', { participant_ids: [b.user.id], is_group: false })
    t.equal(again.statusCode, 200)
    t.equal(again.json().id, directId)
    const fromB = await as(app, b).post('/conversations', { participant_ids: [a.user.id], is_group: false })
    t.equal(fromB.statusCode, 200)
    t.equal(fromB.json().id, directId)
    t.same(memberIds(fromB.json()), [a.user.id, b.user.id].sort())
    const listA = (await as(app, a).get('/conversations')).json()
    t.same(ids(listA), [directId], 'still one conversation')
  })

  t.test('10 concurrent creates of one pair make one conversation', async (t) => {
    const c = await register(app)
    const d = await register(app)
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        i % 2 === 0
          ? as(app, c).post('/conversations', { participant_ids: [d.user.id], is_group: false })
          : as(app, d).post('/conversations', { participant_ids: [c.user.id], is_group: false }),
      ),
    )
    t.same([...new Set(results.map((r) => r.statusCode))].sort(), [200, 201], 'only 200s and 201s')
    t.equal(results.filter((r) => r.statusCode === 201).length, 1, 'exactly one 201')
    t.equal(new Set(results.map((r) => r.json().id)).size, 1, 'one id')
    const listC = (await as(app, c).get('/conversations')).json()
    t.equal(listC.length, 1)
    t.same(memberIds(listC[0]), [c.user.id, d.user.id].sort())
    await eventLog(t, db, listC[0].id)
  })

  t.test('a direct conversation with yourself or with two others is refused', async (t) => {
    const c = await register(app)
    assertError(t, await as(app, a).post('/conversations', { participant_ids: [a.user.id], is_group: false }), 400)
    assertError(t, await as(app, a).post('/conversations', { participant_ids: [], is_group: false }), 400)
    assertError(t, await as(app, a).post('/conversations', { participant_ids: [b.user.id, c.user.id], is_group: false }), 400)
    const listC = (await as(app, c).get('/conversations')).json()
    t.same(listC, [], 'nothing was created')
  })

  t.test('a direct conversation with an unknown user is 404', async (t) => {
    const before = (await as(app, a).get('/conversations')).json().length
    assertError(t, await as(app, a).post('/conversations', { participant_ids: [randomUUID()], is_group: false }), 404, 'USER_NOT_FOUND')
    t.equal((await as(app, a).get('/conversations')).json().length, before, 'nothing was created')
  })

  t.test('the body is validated', async (t) => {
    assertError(t, await as(app, a).post('/conversations', { participant_ids: ['not-a-uuid'], is_group: false }), 400, 'VALIDATION_ERROR')
    assertError(t, await as(app, a).post('/conversations', { is_group: false }), 400, 'VALIDATION_ERROR')
    assertError(t, await client(app).post('/conversations', { participant_ids: [b.user.id], is_group: false }), 401)
  })
})

t.test('creating groups', async (t) => {
  const { app, db } = await buildTestApp(t, { MAX_GROUP_SIZE: '3' })
  const a = await register(app)
  const b = await register(app)
  const c = await register(app)
  const d = await register(app)

  t.test('the creator is admin, the others members, and a system message says so', async (t) => {
    const name = 'Weekend plans'
    const res = await as(app, a).post('/conversations', { participant_ids: [b.user.id, c.user.id], is_group: true, name })
    t.equal(res.statusCode, 201)
    const conv = res.json()
    t.equal(conv.is_group, true)
    t.equal(conv.name, name)
    t.equal(conv.created_by, a.user.id)
    t.same(memberIds(conv), [a.user.id, b.user.id, c.user.id].sort())
    t.equal(roleOf(conv, a.user.id), 'admin')
    t.equal(roleOf(conv, b.user.id), 'member')
    t.equal(roleOf(conv, c.user.id), 'member')
    t.equal(conv.last_message.message_type, 'system')
    t.equal(conv.last_message.content, `${a.user.display_name} created the group "${name}"`)
    t.equal(conv.last_message.sender_id, a.user.id)

    const seenByB = await messagesOf(t, app, b, conv.id)
    t.same(seenByB.map((m) => [m.message_type, m.content]), [['system', `${a.user.display_name} created the group "${name}"`]])
    t.equal((await conversationOf(t, app, b, conv.id)).name, name, 'members see it')

    const log = await eventLog(t, db, conv.id)
    t.same(log.events.map((e) => e.type), ['participant_added', 'participant_added', 'participant_added', 'new_message'])
    const added = log.events.filter((e) => e.type === 'participant_added')
    t.same(added.map((e) => e.payload.user_id).sort(), [a.user.id, b.user.id, c.user.id].sort())
    t.equal(added.find((e) => e.payload.user_id === a.user.id)!.payload.role, 'admin')
    t.ok(added.every((e) => e.payload.by === a.user.id), 'by is the creator')
    t.equal(log.events[3].payload.id, conv.last_message.id)
    t.equal(log.events[3].payload.message_type, 'system')
    t.equal(conv.last_seq, log.lastSeq)
  })

  t.test('a group needs a valid name', async (t) => {
    const before = (await as(app, b).get('/conversations')).json().length
    assertError(t, await as(app, a).post('/conversations', { participant_ids: [b.user.id], is_group: true }), 400)
    assertError(t, await as(app, a).post('/conversations', { participant_ids: [b.user.id], is_group: true, name: '' }), 400)
    assertError(t, await as(app, a).post('/conversations', { participant_ids: [b.user.id], is_group: true, name: 'x'.repeat(256) }), 400)
    t.equal((await as(app, b).get('/conversations')).json().length, before, 'no group was created')
    const longest = await as(app, a).post('/conversations', { participant_ids: [b.user.id], is_group: true, name: 'x'.repeat(255) })
    t.equal(longest.statusCode, 201, '255 characters is fine')
    t.equal(longest.json().name, 'x'.repeat(255))
  })

  t.test('a group with an unknown user is 404 and is not created', async (t) => {
    const before = (await as(app, b).get('/conversations')).json().length
    assertError(t, await as(app, a).post('/conversations', { participant_ids: [b.user.id, randomUUID()], is_group: true, name: 'ghosts' }), 404, 'USER_NOT_FOUND')
    t.equal((await as(app, b).get('/conversations')).json().length, before)
  })

  t.test('groups larger than MAX_GROUP_SIZE are refused, on creation and on adding', async (t) => {
    const before = (await as(app, d).get('/conversations')).json().length
    assertError(
      t,
      await as(app, a).post('/conversations', { participant_ids: [b.user.id, c.user.id, d.user.id], is_group: true, name: 'too many' }),
      400,
      'GROUP_TOO_LARGE',
    )
    t.equal((await as(app, d).get('/conversations')).json().length, before, 'no group was created')

    const full = await createGroup(t, app, a, [b, c])
    t.equal(full.participants.length, 3, 'exactly MAX_GROUP_SIZE is fine')
    assertError(t, await as(app, a).post(`/conversations/${full.id}/participants`, { user_ids: [d.user.id] }), 400, 'GROUP_TOO_LARGE')
    t.same(memberIds(await conversationOf(t, app, a, full.id)), [a.user.id, b.user.id, c.user.id].sort(), 'nobody was added')
    assertError(t, await as(app, d).get(`/conversations/${full.id}`), 404)

    const small = await createGroup(t, app, a, [b])
    assertError(t, await as(app, a).post(`/conversations/${small.id}/participants`, { user_ids: [c.user.id, d.user.id] }), 400, 'GROUP_TOO_LARGE')
    const added = await as(app, a).post(`/conversations/${small.id}/participants`, { user_ids: [c.user.id] })
    t.equal(added.statusCode, 200, 'filling up to the limit is fine')
    assertError(t, await as(app, a).post(`/conversations/${small.id}/participants`, { user_ids: [d.user.id] }), 400, 'GROUP_TOO_LARGE')
    t.same(memberIds(await conversationOf(t, app, a, small.id)), [a.user.id, b.user.id, c.user.id].sort())
    await eventLog(t, db, small.id)
  })
})

t.test('listing conversations', async (t) => {
  const { app } = await buildTestApp(t)
  const me = await register(app)
  const x = await register(app)
  const y = await register(app)
  const z = await register(app)

  t.test('most recent activity first, with last_message and unread_count per caller', async (t) => {
    const c1 = await openDirect(t, app, me, x)
    const c2 = await openDirect(t, app, me, y)
    const c3 = await openDirect(t, app, me, z)
    let list = (await as(app, me).get('/conversations')).json()
    t.same(ids(list), [c3.id, c2.id, c1.id], 'newest first')

    const m1 = await send(t, app, x, c1.id, 'hello from x')
    list = (await as(app, me).get('/conversations')).json()
    t.same(ids(list), [c1.id, c3.id, c2.id], 'a message moves the conversation to the top')
    t.equal(list[0].last_message.id, m1.id)
    t.equal(list[0].last_message.content, 'hello from x')
    t.equal(list[0].unread_count, 1, 'unread for the recipient')
    t.equal(list[1].last_message, null)
    t.equal(list[1].unread_count, 0)

    const ofX = (await as(app, x).get('/conversations')).json()
    t.same(ids(ofX), [c1.id], 'x sees only their own')
    t.equal(ofX[0].last_message.id, m1.id)
    t.equal(ofX[0].unread_count, 0, 'own message is not unread')

    await send(t, app, me, c2.id, 'to y')
    list = (await as(app, me).get('/conversations')).json()
    t.same(ids(list), [c2.id, c1.id, c3.id])
    t.equal(list[0].last_message.content, 'to y')
    t.equal(list[0].unread_count, 0)
    t.equal(list[1].unread_count, 1)
  })

  t.test('limit and before page through without overlap or gaps', async (t) => {
    const p = await register(app)
    const others = await Promise.all(Array.from({ length: 7 }, () => register(app)))
    for (const o of others) await openDirect(t, app, p, o)
    const all = ids((await as(app, p).get('/conversations')).json())
    t.equal(all.length, 7)

    const pages: string[][] = []
    let before: string | undefined
    for (let i = 0; i < 5; i++) {
      const res = await as(app, p).get(`/conversations?limit=3${before ? `&before=${before}` : ''}`)
      t.equal(res.statusCode, 200)
      const page = ids(res.json())
      pages.push(page)
      if (page.length === 0) break
      before = page[page.length - 1]
    }
    t.same(pages.map((pg) => pg.length), [3, 3, 1, 0])
    t.same(pages.flat(), all, 'pages concatenate to the full list in order')
    t.equal(new Set(pages.flat()).size, 7, 'no overlap')

    assertError(t, await as(app, p).get('/conversations?limit=0'), 400, 'VALIDATION_ERROR')
    assertError(t, await as(app, p).get('/conversations?limit=101'), 400, 'VALIDATION_ERROR')
    assertError(t, await as(app, p).get('/conversations?before=nope'), 400, 'VALIDATION_ERROR')
  })
})

t.test('group administration', async (t) => {
  const { app, db } = await buildTestApp(t)
  const a = await register(app)
  const b = await register(app)
  const c = await register(app)
  const d = await register(app)
  const group = await createGroup(t, app, a, [b, c], 'Original')
  const direct = await openDirect(t, app, a, b)

  t.test('rename: admins only, appends a system message and a conversation_updated event', async (t) => {
    const seq0 = (await eventLog(t, db, group.id)).lastSeq
    assertError(t, await as(app, b).patch(`/conversations/${group.id}`, { name: 'By b' }), 403, 'NOT_ADMIN')
    t.equal((await conversationOf(t, app, b, group.id)).name, 'Original', 'a member cannot rename')
    t.equal((await eventLog(t, db, group.id)).lastSeq, seq0, 'a refused rename logs nothing')

    const res = await as(app, a).patch(`/conversations/${group.id}`, { name: 'Renamed' })
    t.equal(res.statusCode, 200)
    t.equal(res.json().name, 'Renamed')
    t.equal((await conversationOf(t, app, b, group.id)).name, 'Renamed', 'members see the new name')
    const [last] = await messagesOf(t, app, b, group.id)
    t.equal(last.message_type, 'system')
    t.equal(last.content, `${a.user.display_name} renamed the group to "Renamed"`)

    const fresh = await eventsSince(t, db, group.id, seq0)
    t.same(fresh.map((e) => e.type), ['conversation_updated', 'new_message'])
    t.equal(fresh[0].payload.name, 'Renamed')
    t.equal(fresh[0].payload.by, a.user.id)
    t.equal(fresh[1].payload.id, last.id)

    assertError(t, await as(app, a).patch(`/conversations/${group.id}`, { name: '' }), 400)
    assertError(t, await as(app, a).patch(`/conversations/${group.id}`, { name: 'y'.repeat(256) }), 400)
    assertError(t, await as(app, a).patch(`/conversations/${direct.id}`, { name: 'Direct' }), 400, 'NOT_A_GROUP')
    t.equal((await conversationOf(t, app, a, direct.id)).name, null)
  })

  t.test('participants: list, and add (admins only; existing members are a no-op)', async (t) => {
    const list = await as(app, b).get(`/conversations/${group.id}/participants`)
    t.equal(list.statusCode, 200)
    t.same(list.json().map((p: { user: { id: string } }) => p.user.id).sort(), [a.user.id, b.user.id, c.user.id].sort())
    t.equal(list.json().find((p: { user: { id: string } }) => p.user.id === a.user.id).role, 'admin')
    t.notOk('email' in list.json()[0].user, 'public user views omit email')

    const seq0 = (await eventLog(t, db, group.id)).lastSeq
    assertError(t, await as(app, b).post(`/conversations/${group.id}/participants`, { user_ids: [d.user.id] }), 403, 'NOT_ADMIN')
    assertError(t, await as(app, d).get(`/conversations/${group.id}`), 404, 'CONVERSATION_NOT_FOUND')

    const res = await as(app, a).post(`/conversations/${group.id}/participants`, { user_ids: [d.user.id] })
    t.equal(res.statusCode, 200)
    const members = res.json()
    t.same(members.map((p: { user: { id: string } }) => p.user.id).sort(), [a.user.id, b.user.id, c.user.id, d.user.id].sort())
    t.equal(members.find((p: { user: { id: string } }) => p.user.id === d.user.id).role, 'member')
    t.equal((await conversationOf(t, app, d, group.id)).name, 'Renamed', 'the new member can read the group')

    const [last] = await messagesOf(t, app, c, group.id)
    t.equal(last.message_type, 'system')
    t.equal(last.content, `${a.user.display_name} added ${d.user.display_name}`)
    const fresh = await eventsSince(t, db, group.id, seq0)
    t.same(fresh.map((e) => e.type), ['participant_added', 'new_message'])
    t.same(fresh[0].payload, { conversation_id: group.id, user_id: d.user.id, role: 'member', by: a.user.id })

    const seq1 = (await eventLog(t, db, group.id)).lastSeq
    const again = await as(app, a).post(`/conversations/${group.id}/participants`, { user_ids: [d.user.id, b.user.id] })
    t.equal(again.statusCode, 200, 'adding members again is fine')
    t.equal(again.json().length, 4, 'and changes nothing')
    t.equal((await eventLog(t, db, group.id)).lastSeq, seq1, 'no event')
    t.equal((await messagesOf(t, app, a, group.id))[0].id, last.id, 'no system message')

    assertError(t, await as(app, a).post(`/conversations/${group.id}/participants`, { user_ids: [randomUUID()] }), 404, 'USER_NOT_FOUND')
    assertError(t, await as(app, a).post(`/conversations/${direct.id}/participants`, { user_ids: [c.user.id] }), 400, 'NOT_A_GROUP')
    t.equal((await conversationOf(t, app, a, direct.id)).participants.length, 2)
  })

  t.test('remove: admins only; the removed user loses access', async (t) => {
    const seq0 = (await eventLog(t, db, group.id)).lastSeq
    assertError(t, await as(app, b).delete(`/conversations/${group.id}/participants/${c.user.id}`), 403, 'NOT_ADMIN')
    t.equal((await conversationOf(t, app, c, group.id)).id, group.id, 'still a member')

    const res = await as(app, a).delete(`/conversations/${group.id}/participants/${c.user.id}`)
    t.equal(res.statusCode, 204)
    t.equal(res.body, '')
    assertError(t, await as(app, c).get(`/conversations/${group.id}`), 404, 'CONVERSATION_NOT_FOUND')
    assertError(t, await as(app, c).get(`/conversations/${group.id}/messages`), 404, 'CONVERSATION_NOT_FOUND')
    assertError(t, await as(app, c).post('/messages', { conversation_id: group.id, content: 'still here?' }), 404)
    t.notOk(ids((await as(app, c).get('/conversations')).json()).includes(group.id), 'gone from their list')
    t.notOk(memberIds(await conversationOf(t, app, a, group.id)).includes(c.user.id))

    const [last] = await messagesOf(t, app, b, group.id)
    t.equal(last.message_type, 'system')
    t.equal(last.content, `${a.user.display_name} removed ${c.user.display_name}`)
    const fresh = await eventsSince(t, db, group.id, seq0)
    t.same(fresh.map((e) => e.type), ['participant_removed', 'new_message'])
    t.same(fresh[0].payload, { conversation_id: group.id, user_id: c.user.id, role: 'member', by: a.user.id })

    assertError(t, await as(app, a).delete(`/conversations/${group.id}/participants/${c.user.id}`), 404, 'PARTICIPANT_NOT_FOUND')
    assertError(t, await as(app, a).delete(`/conversations/${direct.id}/participants/${b.user.id}`), 400, 'NOT_A_GROUP')
  })

  t.test('roles: promote and demote, with system messages; the last admin cannot be demoted', async (t) => {
    const seq0 = (await eventLog(t, db, group.id)).lastSeq
    assertError(t, await as(app, b).patch(`/conversations/${group.id}/participants/${d.user.id}`, { role: 'admin' }), 403, 'NOT_ADMIN')

    const promoted = await as(app, a).patch(`/conversations/${group.id}/participants/${b.user.id}`, { role: 'admin' })
    t.equal(promoted.statusCode, 200)
    t.equal(promoted.json().user.id, b.user.id)
    t.equal(promoted.json().role, 'admin')
    t.equal(roleOf(await conversationOf(t, app, d, group.id), b.user.id), 'admin')
    let [last] = await messagesOf(t, app, d, group.id)
    t.equal(last.message_type, 'system')
    t.equal(last.content, `${a.user.display_name} made ${b.user.display_name} an admin`)

    const demoted = await as(app, b).patch(`/conversations/${group.id}/participants/${a.user.id}`, { role: 'member' })
    t.equal(demoted.statusCode, 200, 'the new admin can demote the old one')
    t.equal(demoted.json().role, 'member')
    ;[last] = await messagesOf(t, app, d, group.id)
    t.equal(last.content, `${b.user.display_name} made ${a.user.display_name} a member`)

    const fresh = await eventsSince(t, db, group.id, seq0)
    t.same(fresh.map((e) => e.type), ['participant_role_changed', 'new_message', 'participant_role_changed', 'new_message'])
    t.same(fresh[0].payload, { conversation_id: group.id, user_id: b.user.id, role: 'admin', by: a.user.id })
    t.same(fresh[2].payload, { conversation_id: group.id, user_id: a.user.id, role: 'member', by: b.user.id })

    const seq1 = (await eventLog(t, db, group.id)).lastSeq
    assertError(t, await as(app, b).patch(`/conversations/${group.id}/participants/${b.user.id}`, { role: 'member' }), 409, 'LAST_ADMIN')
    t.equal(roleOf(await conversationOf(t, app, b, group.id), b.user.id), 'admin', 'still admin')
    assertError(t, await as(app, a).patch(`/conversations/${group.id}/participants/${d.user.id}`, { role: 'admin' }), 403, 'NOT_ADMIN')
    const noop = await as(app, b).patch(`/conversations/${group.id}/participants/${d.user.id}`, { role: 'member' })
    t.equal(noop.statusCode, 200, 'setting the current role is fine')
    t.equal((await eventLog(t, db, group.id)).lastSeq, seq1, 'refusals and no-ops log nothing')
    assertError(t, await as(app, b).patch(`/conversations/${group.id}/participants/${d.user.id}`, { role: 'owner' }), 400, 'VALIDATION_ERROR')
    assertError(t, await as(app, b).patch(`/conversations/${group.id}/participants/${c.user.id}`, { role: 'admin' }), 404, 'PARTICIPANT_NOT_FOUND')
  })

  t.test('leave: the longest-standing member inherits admin when the last admin leaves', async (t) => {
    const admin = await register(app)
    // Make the earliest joiner the one with the largest id, so "first by id" cannot pass for "first to join".
    const [first, second, third] = (await Promise.all([register(app), register(app), register(app)])).sort((p, q) => (p.user.id < q.user.id ? 1 : -1))
    const g = await createGroup(t, app, admin, [first])
    for (const s of [second, third]) {
      t.equal((await as(app, admin).post(`/conversations/${g.id}/participants`, { user_ids: [s.user.id] })).statusCode, 200)
    }
    const seq0 = (await eventLog(t, db, g.id)).lastSeq

    const res = await as(app, admin).post(`/conversations/${g.id}/leave`)
    t.equal(res.statusCode, 204)
    assertError(t, await as(app, admin).get(`/conversations/${g.id}`), 404, 'CONVERSATION_NOT_FOUND')

    const conv = await conversationOf(t, app, third, g.id)
    t.same(memberIds(conv), [first.user.id, second.user.id, third.user.id].sort())
    t.equal(roleOf(conv, first.user.id), 'admin', 'the longest-standing member is admin')
    t.equal(roleOf(conv, second.user.id), 'member')
    t.equal(roleOf(conv, third.user.id), 'member')
    const history = await messagesOf(t, app, second, g.id)
    t.same(
      history.slice(0, 2).map((m) => [m.message_type, m.content]),
      [
        ['system', `${first.user.display_name} is now an admin`],
        ['system', `${admin.user.display_name} left`],
      ],
    )
    t.same(
      history.slice(0, 2).map((m) => (m as unknown as { system: unknown }).system),
      [
        { action: 'admin_inherited', actor_id: admin.user.id, user_ids: [first.user.id] },
        { action: 'member_left', actor_id: admin.user.id },
      ],
      'by ids too',
    )

    const fresh = await eventsSince(t, db, g.id, seq0)
    t.same(fresh.map((e) => e.type), ['participant_removed', 'new_message', 'participant_role_changed', 'new_message'])
    t.same(fresh[0].payload, { conversation_id: g.id, user_id: admin.user.id, role: 'admin', by: admin.user.id })
    t.same(fresh[2].payload, { conversation_id: g.id, user_id: first.user.id, role: 'admin', by: admin.user.id })

    // A member leaving while an admin remains changes no roles.
    const seq1 = (await eventLog(t, db, g.id)).lastSeq
    t.equal((await as(app, third).post(`/conversations/${g.id}/leave`)).statusCode, 204)
    const after = await conversationOf(t, app, first, g.id)
    t.same(memberIds(after), [first.user.id, second.user.id].sort())
    t.equal(roleOf(after, second.user.id), 'member')
    t.equal((await messagesOf(t, app, first, g.id))[0].content, `${third.user.display_name} left`)
    t.same((await eventsSince(t, db, g.id, seq1)).map((e) => e.type), ['participant_removed', 'new_message'])

    // Removing yourself is leaving.
    t.equal((await as(app, second).delete(`/conversations/${g.id}/participants/${second.user.id}`)).statusCode, 204)
    assertError(t, await as(app, second).get(`/conversations/${g.id}`), 404)
    t.equal((await messagesOf(t, app, first, g.id))[0].content, `${second.user.display_name} left`)
    await eventLog(t, db, g.id)
  })

  t.test('leaving a direct conversation is refused', async (t) => {
    assertError(t, await as(app, a).post(`/conversations/${direct.id}/leave`), 400, 'NOT_A_GROUP')
    t.same(memberIds(await conversationOf(t, app, b, direct.id)), [a.user.id, b.user.id].sort())
  })

  t.test('every group event is a system message and an event, in one contiguous log', async (t) => {
    const log = await eventLog(t, db, group.id)
    const conv = await conversationOf(t, app, a, group.id)
    t.equal(conv.last_seq, log.lastSeq, 'the API reports the same last_seq')
    const system = (await messagesOf(t, app, a, group.id)).filter((m) => m.message_type === 'system').reverse()
    t.same(
      system.map((m) => m.content),
      [
        `${a.user.display_name} created the group "Original"`,
        `${a.user.display_name} renamed the group to "Renamed"`,
        `${a.user.display_name} added ${d.user.display_name}`,
        `${a.user.display_name} removed ${c.user.display_name}`,
        `${a.user.display_name} made ${b.user.display_name} an admin`,
        `${b.user.display_name} made ${a.user.display_name} a member`,
      ],
    )
    // The same by ids, for clients to render with the names they know now (a name is never baked in).
    t.same(
      system.map((m) => (m as unknown as { system: unknown }).system),
      [
        { action: 'group_created', actor_id: a.user.id, name: 'Original' },
        { action: 'group_renamed', actor_id: a.user.id, name: 'Renamed' },
        { action: 'members_added', actor_id: a.user.id, user_ids: [d.user.id] },
        { action: 'member_removed', actor_id: a.user.id, user_ids: [c.user.id] },
        { action: 'role_changed', actor_id: a.user.id, user_ids: [b.user.id], role: 'admin' },
        { action: 'role_changed', actor_id: b.user.id, user_ids: [a.user.id], role: 'member' },
      ],
    )
    const logged = log.events.filter((e) => e.type === 'new_message').map((e) => e.payload)
    t.same(logged.map((m) => m.id), system.map((m) => m.id), 'each system message is a new_message event')
    t.same(logged.map((m) => m.seq), log.events.filter((e) => e.type === 'new_message').map((e) => Number(e.seq)), 'a message seq is its event seq')
  })
})

t.test('strangers get 404, exactly as for a conversation that does not exist', async (t) => {
  const { app, db } = await buildTestApp(t)
  const a = await register(app)
  const b = await register(app)
  const stranger = await register(app)
  const group = await createGroup(t, app, a, [b])
  const direct = await openDirect(t, app, a, b)
  await send(t, app, a, group.id)
  await send(t, app, b, direct.id)

  const calls: [string, (id: string) => ReturnType<ReturnType<typeof client>['get']>][] = [
    ['GET /conversations/{id}', (id) => as(app, stranger).get(`/conversations/${id}`)],
    ['PATCH /conversations/{id}', (id) => as(app, stranger).patch(`/conversations/${id}`, { name: 'mine now' })],
    ['GET participants', (id) => as(app, stranger).get(`/conversations/${id}/participants`)],
    ['POST participants', (id) => as(app, stranger).post(`/conversations/${id}/participants`, { user_ids: [stranger.user.id] })],
    ['DELETE a participant', (id) => as(app, stranger).delete(`/conversations/${id}/participants/${a.user.id}`)],
    ['DELETE self as participant', (id) => as(app, stranger).delete(`/conversations/${id}/participants/${stranger.user.id}`)],
    ['PATCH a participant', (id) => as(app, stranger).patch(`/conversations/${id}/participants/${a.user.id}`, { role: 'member' })],
    ['PATCH self as participant', (id) => as(app, stranger).patch(`/conversations/${id}/participants/${stranger.user.id}`, { role: 'admin' })],
    ['leave', (id) => as(app, stranger).post(`/conversations/${id}/leave`)],
    ['GET messages', (id) => as(app, stranger).get(`/conversations/${id}/messages`)],
    ['DELETE messages', (id) => as(app, stranger).delete(`/conversations/${id}/messages`)],
    ['typing', (id) => as(app, stranger).post(`/conversations/${id}/typing`, { is_typing: true })],
    ['POST /messages', (id) => as(app, stranger).post('/messages', { conversation_id: id, content: 'hi' })],
  ]

  const seqs = { group: (await eventLog(t, db, group.id)).lastSeq, direct: (await eventLog(t, db, direct.id)).lastSeq }
  for (const [label, call] of calls) {
    t.test(label, async (t) => {
      const missing = assertError(t, await call(randomUUID()), 404)
      t.same(assertError(t, await call(group.id), 404), missing, 'a group answers like nothing')
      t.same(assertError(t, await call(direct.id), 404), missing, 'a direct conversation answers like nothing')
    })
  }

  t.test('nothing changed for the members', async (t) => {
    t.equal((await eventLog(t, db, group.id)).lastSeq, seqs.group)
    t.equal((await eventLog(t, db, direct.id)).lastSeq, seqs.direct)
    const conv = await conversationOf(t, app, a, group.id)
    t.same(memberIds(conv), [a.user.id, b.user.id].sort())
    t.equal(conv.name, group.name)
    t.equal(roleOf(conv, a.user.id), 'admin')
    t.equal((await messagesOf(t, app, a, group.id)).length, 2)
    t.same((await as(app, stranger).get('/conversations')).json(), [], 'the stranger lists nothing')
  })
})

t.test('unread counts', async (t) => {
  const { app } = await buildTestApp(t)
  const a = await register(app)
  const b = await register(app)
  const c = await register(app)
  const group = await createGroup(t, app, a, [b])
  const base = { a: await unread(t, app, a, group.id), b: await unread(t, app, b, group.id) }

  t.test('messages from others count, own messages never do', async (t) => {
    t.equal(base.a, 0, 'nothing unread for the creator')
    t.equal(base.b, 0, 'nothing unread for a member who was just put in the group')
    await send(t, app, a, group.id)
    await send(t, app, a, group.id)
    await send(t, app, a, group.id)
    t.equal(await unread(t, app, b, group.id), base.b + 3)
    t.equal(await unread(t, app, a, group.id), 0)
    await send(t, app, b, group.id)
    t.equal(await unread(t, app, b, group.id), base.b + 3, 'b sending does not change b’s count')
    t.equal(await unread(t, app, a, group.id), 1)
  })

  t.test('reading message k leaves only the later ones unread', async (t) => {
    const direct = await openDirect(t, app, a, c)
    const sent = []
    for (let i = 0; i < 5; i++) sent.push(await send(t, app, a, direct.id, `m${i}`))
    await send(t, app, c, direct.id, 'own')
    t.equal(await unread(t, app, c, direct.id), 5)
    t.equal((await as(app, c).post(`/messages/${sent[1].id}/read`)).statusCode, 204)
    t.equal(await unread(t, app, c, direct.id), 3, 'm2..m4 are left')
    t.equal((await as(app, c).post(`/messages/${sent[0].id}/read`)).statusCode, 204, 'reading an earlier one is fine')
    t.equal(await unread(t, app, c, direct.id), 3, 'and never moves the pointer back')
    t.equal((await as(app, c).post(`/messages/${sent[4].id}/read`)).statusCode, 204)
    t.equal(await unread(t, app, c, direct.id), 0)
    t.equal(await unread(t, app, a, direct.id), 1, 'the other side is unaffected')
    const listed = (await as(app, c).get('/conversations')).json().find((x: { id: string }) => x.id === direct.id)
    t.equal(listed.unread_count, 0, 'the list agrees')
  })

  t.test('a deleted unread message stops counting', async (t) => {
    const before = await unread(t, app, b, group.id)
    const m = await send(t, app, a, group.id, 'oops')
    t.equal(await unread(t, app, b, group.id), before + 1)
    t.equal((await as(app, a).delete(`/messages/${m.id}`)).statusCode, 200)
    t.equal(await unread(t, app, b, group.id), before, 'the count drops back')
  })

  t.test('a newly added member starts at 0 and counts what follows', async (t) => {
    const res = await as(app, a).post(`/conversations/${group.id}/participants`, { user_ids: [c.user.id] })
    t.equal(res.statusCode, 200)
    t.equal(await unread(t, app, c, group.id), 0)
    const listed = (await as(app, c).get('/conversations')).json().find((x: { id: string }) => x.id === group.id)
    t.equal(listed.unread_count, 0)
    await send(t, app, b, group.id)
    t.equal(await unread(t, app, c, group.id), 1)
  })
})

t.test('clearing history is for the caller only', async (t) => {
  const { app } = await buildTestApp(t)
  const a = await register(app)
  const b = await register(app)
  const conv = await openDirect(t, app, a, b)
  const m1 = await send(t, app, a, conv.id, 'one')
  await send(t, app, b, conv.id, 'two')
  const m3 = await send(t, app, b, conv.id, 'three')
  t.equal(await unread(t, app, a, conv.id), 2)
  t.equal(await unread(t, app, b, conv.id), 1)

  const res = await as(app, a).delete(`/conversations/${conv.id}/messages`)
  t.equal(res.statusCode, 204)
  t.same(await messagesOf(t, app, a, conv.id), [], 'the caller sees no history')
  const mine = await conversationOf(t, app, a, conv.id)
  t.equal(mine.last_message, null)
  t.equal(mine.unread_count, 0)
  const listed = (await as(app, a).get('/conversations')).json().find((x: { id: string }) => x.id === conv.id)
  t.equal(listed.last_message, null, 'the list agrees')
  assertError(t, await as(app, a).get(`/messages/${m1.id}`), 404)

  t.same((await messagesOf(t, app, b, conv.id)).map((m) => m.content), ['three', 'two', 'one'], 'the other member still sees everything')
  const theirs = await conversationOf(t, app, b, conv.id)
  t.equal(theirs.last_message.id, m3.id)
  t.equal(theirs.unread_count, 1, 'their unread count is unchanged')
  t.equal((await as(app, b).get(`/messages/${m1.id}`)).statusCode, 200)

  await send(t, app, b, conv.id, 'four')
  await send(t, app, a, conv.id, 'five')
  t.same((await messagesOf(t, app, a, conv.id)).map((m) => m.content), ['five', 'four'], 'new messages show for the caller')
  t.same((await messagesOf(t, app, b, conv.id)).map((m) => m.content), ['five', 'four', 'three', 'two', 'one'])
  t.equal((await conversationOf(t, app, a, conv.id)).last_message.content, 'five')
  t.equal(await unread(t, app, a, conv.id), 1, 'only "four" is unread for the caller')
})

t.test('typing is announced, never stored', async (t) => {
  const { app, db } = await buildTestApp(t)
  const a = await register(app)
  const b = await register(app)
  const conv = await openDirect(t, app, a, b)
  await send(t, app, a, conv.id)
  const count = async () => Number((await db.selectFrom('conversation_events').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)
  const events0 = await count()
  const seq0 = (await eventLog(t, db, conv.id)).lastSeq

  const on = await as(app, b).post(`/conversations/${conv.id}/typing`, { is_typing: true })
  t.equal(on.statusCode, 204)
  t.equal(on.body, '')
  t.equal((await as(app, b).post(`/conversations/${conv.id}/typing`, { is_typing: false })).statusCode, 204)
  t.equal(await count(), events0, 'no event stored')
  t.equal((await eventLog(t, db, conv.id)).lastSeq, seq0, 'no seq taken')
  t.equal((await messagesOf(t, app, a, conv.id)).length, 1, 'no message')
  t.equal(await unread(t, app, a, conv.id), 0)
  assertError(t, await as(app, b).post(`/conversations/${conv.id}/typing`, {}), 400, 'VALIDATION_ERROR')
  assertError(t, await as(app, b).post(`/conversations/${conv.id}/typing`, { is_typing: 'yes' }), 400, 'VALIDATION_ERROR')
})
