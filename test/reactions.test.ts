// Reactions, edit history and quoted replies (issue 14, points 1, 2 and 7), over REST and WebSocket frames.
import t from 'tap'
import { assertError, buildLiveApp, client, groupOf, register, sendAs, type Session, type TestApp } from './helper.ts'
import type { Frame } from './ws-client.ts'

const ctx = await buildLiveApp(t, { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000' })
const { app, db, open } = ctx

const group = (admin: Session, members: Session[]) => groupOf(app, admin, members)

const send = (who: Session, conversationId: string, content: string, extra: Record<string, unknown> = {}) => sendAs(app, who, conversationId, content, extra)

const react = (who: Session, id: string, emoji: string) => client(app, who).post(`/messages/${id}/reactions`, { emoji })
const unreact = (who: Session, id: string, emoji: string) => client(app, who).delete(`/messages/${id}/reactions/${encodeURIComponent(emoji)}`)
const served = (conversationId: string) =>
  db.selectFrom('parley_served_events').select(['seq', 'type', 'payload']).where('conversation_id', '=', conversationId).orderBy('seq').execute()

// One after another: what is concurrent in these tests is the reacting, and 51 argon2 hashes at once on a busy
// box can keep a registration's queries waiting on the pool past its timeout (a 503).
async function users(n: number, app_: TestApp = app): Promise<Session[]> {
  const made: Session[] = []
  for (let i = 0; i < n; i++) made.push(await register(app_))
  return made
}

t.test('reactions: one of each emoji per user, counted, in order of first use, taken back', async (t) => {
  const [a, b, c] = await users(3)
  const g = await group(a, [b, c])
  const m = await send(a, g, 'react to me')
  t.same(m.reactions, [], 'a new message has none')

  let res = await react(b, m.id, '👍')
  t.equal(res.statusCode, 200)
  t.same(res.json().reactions, [{ emoji: '👍', count: 1, user_ids: [b.user.id] }])
  res = await react(b, m.id, '👍')
  t.equal(res.statusCode, 200, 'again: 200')
  t.same(res.json().reactions, [{ emoji: '👍', count: 1, user_ids: [b.user.id] }], 'again: nothing changes')
  await react(c, m.id, '🎉')
  res = await react(c, m.id, '👍')
  t.same(res.json().reactions, [
    { emoji: '👍', count: 2, user_ids: [b.user.id, c.user.id] },
    { emoji: '🎉', count: 1, user_ids: [c.user.id] },
  ], 'each emoji once, in order of first use, its users oldest first')

  res = await unreact(b, m.id, '👍')
  t.same(res.json().reactions, [{ emoji: '👍', count: 1, user_ids: [c.user.id] }, { emoji: '🎉', count: 1, user_ids: [c.user.id] }])
  res = await unreact(b, m.id, '👍')
  t.equal(res.statusCode, 200, 'taking back one not given: 200')
  res = await unreact(c, m.id, '👍')
  t.same(res.json().reactions, [{ emoji: '🎉', count: 1, user_ids: [c.user.id] }], 'the last one gone, the emoji goes')
  t.same((await client(app, a).get(`/messages/${m.id}`)).json().reactions, res.json().reactions, 'GET shows the same')
  const page = (await client(app, a).get(`/conversations/${g}/messages`)).json()
  t.same(page.find((x: { id: string }) => x.id === m.id).reactions, res.json().reactions, 'and a page of history')

  const log = (await served(g)).filter((e) => e.type.startsWith('reaction_'))
  t.same(log.map((e) => e.type), ['reaction_added', 'reaction_added', 'reaction_added', 'reaction_removed', 'reaction_removed'], 'each change is an event; a repeat is none')
  t.match(log[0].payload, { conversation_id: g, message_id: m.id, user_id: b.user.id, emoji: '👍' })
})

t.test('what a reaction may be: one emoji grapheme or a :short_code:', async (t) => {
  const [a] = await users(1)
  const g = await group(a, [])
  const m = await send(a, g, 'emoji')
  for (const emoji of ['🇫🇷', '👍🏽', '👨‍👩‍👧‍👦', '1️⃣', ':+1:', ':party_parrot:', ':a-b:']) {
    const res = await react(a, m.id, emoji)
    t.equal(res.statusCode, 200, `${emoji} is one reaction`)
  }
  for (const emoji of ['😀😀', 'a', 'ab', '1', ':no spaces:', ':', '::', `:${'x'.repeat(31)}:`, '👍 ', '🇫']) {
    assertError(t, await react(a, m.id, emoji), 400, 'INVALID_EMOJI')
  }
  assertError(t, await react(a, m.id, ''), 400, 'VALIDATION_ERROR')
  const heart = (await react(a, m.id, '\u2764')).json()
  t.ok(heart.reactions.some((r: { emoji: string }) => r.emoji === '\u2764\ufe0f'), '❤ without its selector is the same reaction as ❤️')
  t.equal((await react(a, m.id, '\u2764\ufe0f')).json().reactions.find((r: { emoji: string }) => r.emoji === '\u2764\ufe0f').count, 1)
  t.equal((await unreact(a, m.id, '👨‍👩‍👧‍👦')).statusCode, 200, 'a ZWJ sequence URL-encoded in the path')
})

t.test('at most 20 different emoji per message; deleted messages take none and lose theirs', async (t) => {
  const [a, b] = await users(2)
  const g = await group(a, [b])
  const m = await send(a, g, 'many')
  const twenty = ['😀', '😁', '😂', '🤣', '😃', '😄', '😅', '😆', '😉', '😊', '😋', '😎', '😍', '😘', '🥰', '😗', '😙', '😚', '🙂', '🤗']
  for (const e of twenty) await react(a, m.id, e)
  assertError(t, await react(b, m.id, '🤔'), 409, 'TOO_MANY_REACTIONS')
  t.equal((await react(b, m.id, '😀')).json().reactions[0].count, 2, 'one of the twenty is still open to others')

  const del = await client(app, a).delete(`/messages/${m.id}`)
  t.same(del.json().reactions, [], 'the deleted form has no reactions')
  assertError(t, await react(b, m.id, '😀'), 409, 'MESSAGE_DELETED')
  assertError(t, await unreact(b, m.id, '😀'), 409, 'MESSAGE_DELETED')
  const rows = await db.selectFrom('reactions').select('emoji').where('message_id', '=', m.id).execute()
  t.same(rows, [], 'their rows are gone')
  const log = await served(g)
  t.equal(log.at(-1)!.type, 'message_deleted', 'deleting makes one event, not one per reaction')
})

t.test('50 concurrent reactors on one message: none lost, every event in seq order', async (t) => {
  const [a, ...many] = await users(51)
  const g = await group(a, many)
  const m = await send(a, g, 'pile on')
  const before = (await served(g)).length
  const answers = await Promise.all(many.map((u, i) => react(u, m.id, i % 2 ? '🔥' : '❤️')))
  t.same(answers.map((r) => r.statusCode), many.map(() => 200))
  const final = (await client(app, a).get(`/messages/${m.id}`)).json().reactions
  t.same(final.map((r: { count: number }) => r.count).reduce((x: number, y: number) => x + y, 0), 50, 'all 50 counted')
  t.same(new Set(final.flatMap((r: { user_ids: string[] }) => r.user_ids)), new Set(many.map((u) => u.user.id)), 'every reactor listed')
  const log = await served(g)
  t.equal(log.length - before, 50, '50 events')
  t.same(log.map((e) => e.seq), log.map((_, i) => i + 1), 'seqs gapless')
})

t.test('over the socket: react, unreact, edit and delete frames with acks; live and replayed events', async (t) => {
  const [a, b] = await users(2)
  const g = await group(a, [b])
  const m = await send(a, g, 'first words')
  const wa = await open(a)
  const wb = await open(b)
  const ack = (ref: string) => (f: Frame) => f.ref === ref
  wa.send({ type: 'react', ref: 'r1', message_id: m.id, emoji: '👀' })
  t.same((await wa.next(ack('r1'))).data.reactions, [{ emoji: '👀', count: 1, user_ids: [a.user.id] }], 'react: ack with the Message')
  const live = await wb.next((f) => f.type === 'reaction_added')
  t.same(live.data, { conversation_id: g, message_id: m.id, user_id: a.user.id, emoji: '👀', reactions: [{ emoji: '👀', count: 1, user_ids: [a.user.id] }] })
  t.type(live.seq, 'number')
  wa.send({ type: 'unreact', ref: 'r2', message_id: m.id, emoji: '👀' })
  t.same((await wa.next(ack('r2'))).data.reactions, [])
  t.same((await wb.next((f) => f.type === 'reaction_removed')).data.reactions, [])
  wa.send({ type: 'react', ref: 'r3', message_id: m.id, emoji: 'two words' })
  t.match(await wa.next(ack('r3')), { type: 'error', code: 'INVALID_EMOJI' })
  wb.send({ type: 'edit', ref: 'e1', message_id: m.id, content: 'not mine' })
  t.match(await wb.next(ack('e1')), { type: 'error', code: 'NOT_SENDER' })
  wa.send({ type: 'edit', ref: 'e2', message_id: m.id, content: 'second words' })
  t.match((await wa.next(ack('e2'))).data, { id: m.id, content: 'second words', is_edited: true })
  t.equal((await wb.next((f) => f.type === 'message_edited')).data.content, 'second words')

  // Replayed: the reaction events with the message's reactions as they are now.
  await react(b, m.id, '✅')
  const wb2 = await open(b)
  wb2.send({ type: 'resume', conversations: { [g]: 0 } })
  await wb2.next((f) => f.type === 'resumed')
  const replayed = wb2.frames.filter((f) => f.type.startsWith('reaction_'))
  t.same(replayed.map((f) => f.type), ['reaction_added', 'reaction_removed', 'reaction_added'])
  t.same(replayed[0].data, { conversation_id: g, message_id: m.id, user_id: a.user.id, emoji: '👀', reactions: [{ emoji: '✅', count: 1, user_ids: [b.user.id] }] })

  wa.send({ type: 'delete', ref: 'd1', message_id: m.id })
  t.match((await wa.next(ack('d1'))).data, { id: m.id, is_deleted: true, reactions: [] })
  t.equal((await wb.next((f) => f.type === 'message_deleted')).data.id, m.id)
})

t.test('edit history: each edit keeps what it replaced; deleting deletes it', async (t) => {
  const [a, b, s] = await users(3)
  const g = await group(a, [b])
  const m = await send(a, g, 'v1')
  t.same((await client(app, b).get(`/messages/${m.id}/edits`)).json(), [], 'none before an edit')
  await client(app, a).patch(`/messages/${m.id}`, { content: 'v2' })
  await client(app, a).patch(`/messages/${m.id}`, { content: 'v2' })
  const third = (await client(app, a).patch(`/messages/${m.id}`, { content: 'v3' })).json()
  const edits = (await client(app, b).get(`/messages/${m.id}/edits`)).json()
  t.same(edits.map((e: { content: string }) => e.content), ['v1', 'v2'], 'oldest first; an edit that changes nothing keeps nothing')
  t.equal(edits[1].edited_at, third.updated_at, 'edited_at: when the edit replaced it')
  assertError(t, await client(app, s).get(`/messages/${m.id}/edits`), 404, 'MESSAGE_NOT_FOUND')
  await client(app, a).delete(`/messages/${m.id}`)
  t.same((await client(app, b).get(`/messages/${m.id}/edits`)).json(), [], 'deleted with the message')
  t.same(await db.selectFrom('message_edits').select('content').where('message_id', '=', m.id).execute(), [], 'gone from the database')
})

t.test('quoted replies: reply_to quotes the target as it is now, everywhere a Message goes', async (t) => {
  const [a, b] = await users(2)
  const g = await group(a, [b])
  const long = 'x'.repeat(250)
  const target = await send(a, g, long)
  const wb = await open(b)
  const reply = await send(b, g, 'answer', { reply_to_id: target.id })
  const quote = { id: target.id, sender_id: a.user.id, message_type: 'text', content: 'x'.repeat(200), is_deleted: false }
  t.same(reply.reply_to, quote, 'the REST answer quotes 200 characters')
  t.same((await wb.next((f) => f.type === 'new_message' && f.data.id === reply.id)).data.reply_to, quote, 'so does the event')
  t.equal(target.reply_to, null, 'not a reply: null')

  await client(app, a).patch(`/messages/${target.id}`, { content: 'short now' })
  await client(app, a).delete(`/messages/${target.id}`)
  const page = (await client(app, b).get(`/conversations/${g}/messages`)).json()
  t.same(page.find((x: { id: string }) => x.id === reply.id).reply_to, { ...quote, content: 'This message was deleted', is_deleted: true }, 'a page shows its deleted form')
  const wb2 = await open(b)
  wb2.send({ type: 'resume', conversations: { [g]: 0 } })
  const replayed = await wb2.next((f) => f.type === 'new_message' && f.data.id === reply.id)
  t.equal(replayed.data.reply_to.is_deleted, true, 'and a replay')
})
