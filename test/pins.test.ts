// Pins and forwarding (issue 14, points 5 and 6).
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { assertError, buildLiveApp, client, groupOf, register, sendAs, type Session } from './helper.ts'

const { app, db, open } = await buildLiveApp(t, { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', UPLOAD_RATE_MAX: '100000' })
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64')

const group = (admin: Session, members: Session[]) => groupOf(app, admin, members)
async function direct(a: Session, b: Session): Promise<string> {
  return (await client(app, a).post('/conversations', { participant_ids: [b.user.id], is_group: false })).json().id
}
const send = (who: Session, conversationId: string, content: string, extra: Record<string, unknown> = {}) => sendAs(app, who, conversationId, content, extra)
async function upload(who: Session, conversationId: string) {
  const boundary = `----parley${randomBytes(8).toString('hex')}`
  const payload = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="pic.png"\r\nContent-Type: image/png\r\n\r\n`), PNG, Buffer.from(`\r\n--${boundary}--\r\n`),
  ])
  const res = await app.inject({ method: 'POST', url: `/messages/upload?conversation_id=${conversationId}`, payload, headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, authorization: `Bearer ${who.token}` } })
  if (res.statusCode !== 201) throw new Error(`upload failed: ${res.statusCode} ${res.body}`)
  return res.json()
}
const users = (n: number) => Promise.all(Array.from({ length: n }, () => register(app)))
const pins = async (who: Session, id: string) => (await client(app, who).get(`/conversations/${id}/pins`)).json().map((m: { id: string }) => m.id)

t.test('pins: group admins or anyone in a direct conversation; events, a system message, the list, at most 50', async (t) => {
  const [a, b, s] = await users(3)
  const g = await group(a, [b])
  const m1 = await send(b, g, 'pin me')
  const m2 = await send(b, g, 'and me')
  const wb = await open(b)

  assertError(t, await client(app, b).post(`/messages/${m1.id}/pin`), 403, 'NOT_ADMIN')
  assertError(t, await client(app, s).post(`/messages/${m1.id}/pin`), 404, 'MESSAGE_NOT_FOUND')
  const pinned = (await client(app, a).post(`/messages/${m1.id}/pin`)).json()
  t.match(pinned, { id: m1.id, pinned_by: a.user.id })
  t.type(pinned.pinned_at, 'string')
  t.same((await wb.next((f) => f.type === 'message_pinned')).data, pinned, 'message_pinned carries the Message')
  const notice = await wb.next((f) => f.type === 'new_message' && f.data.message_type === 'system' && f.data.system?.action === 'message_pinned')
  t.match(notice.data.system, { action: 'message_pinned', actor_id: a.user.id, message_id: m1.id }, 'a group pin says so')
  t.equal((await client(app, a).post(`/messages/${m1.id}/pin`)).json().pinned_at, pinned.pinned_at, 'pinning again changes nothing')
  await client(app, a).post(`/messages/${m2.id}/pin`)
  t.same(await pins(b, g), [m2.id, m1.id], 'most recently pinned first')
  t.equal((await client(app, b).get(`/conversations/${g}`)).json().pinned_count, 2)
  assertError(t, await client(app, s).get(`/conversations/${g}/pins`), 404, 'CONVERSATION_NOT_FOUND')

  const unpinned = (await client(app, a).delete(`/messages/${m2.id}/pin`)).json()
  t.match(unpinned, { pinned_at: null, pinned_by: null })
  t.equal((await wb.next((f) => f.type === 'message_unpinned')).data.id, m2.id)
  await client(app, b).delete(`/messages/${m1.id}`)
  t.same(await pins(b, g), [], 'a deleted message is no longer pinned')
  assertError(t, await client(app, a).post(`/messages/${m1.id}/pin`), 409, 'MESSAGE_DELETED')

  const d = await direct(a, b)
  const dm = await send(a, d, 'direct')
  t.equal((await client(app, b).post(`/messages/${dm.id}/pin`)).statusCode, 200, 'any member of a direct conversation may pin')
  const before = (await db.selectFrom('messages').select('id').where('conversation_id', '=', d).execute()).length
  t.equal(before, 1, 'no system message in a direct conversation')

  const many = await group(a, [])
  const sent = []
  for (let i = 0; i < 51; i++) sent.push(await send(a, many, `m${i}`))
  const answers = await Promise.all(sent.map((m) => client(app, a).post(`/messages/${m.id}/pin`)))
  t.equal(answers.filter((r) => r.statusCode === 200).length, 50, 'fifty pinned, though all were asked at once')
  assertError(t, answers.find((r) => r.statusCode !== 200)!, 409, 'TOO_MANY_PINS')
})

t.test('forwarding: a copy in the target with forwarded_from, nothing of the source; files live while referred to', async (t) => {
  const [a, b, c, s] = await users(4)
  const source = await group(a, [b])
  const target = await group(b, [c])
  const original = await send(a, source, 'worth sharing')
  const wc = await open(c)

  const res = await client(app, b).post(`/messages/${original.id}/forward`, { conversation_id: target, client_id: 'fw-1' })
  t.equal(res.statusCode, 201)
  const copy = res.json()
  t.match(copy, { conversation_id: target, sender_id: b.user.id, content: 'worth sharing', forwarded_from: { sender_id: a.user.id, created_at: original.created_at } })
  t.notOk(JSON.stringify(copy).includes(source), "the source conversation's id is nowhere in the copy")
  t.same((await wc.next((f) => f.type === 'new_message' && f.data.id === copy.id)).data, copy, 'delivered as any message')
  t.equal((await client(app, b).post(`/messages/${original.id}/forward`, { conversation_id: target, client_id: 'fw-1' })).statusCode, 200, 'a retry with its client_id')
  const again = (await client(app, c).post(`/messages/${copy.id}/forward`, { recipient_id: a.user.id })).json()
  t.same(again.forwarded_from, copy.forwarded_from, 'a forward of a forward names the original sender')

  assertError(t, await client(app, s).post(`/messages/${original.id}/forward`, { conversation_id: target }), 404, 'MESSAGE_NOT_FOUND')
  assertError(t, await client(app, c).post(`/messages/${original.id}/forward`, { conversation_id: target }), 404, 'MESSAGE_NOT_FOUND')
  assertError(t, await client(app, a).post(`/messages/${original.id}/forward`, { conversation_id: target }), 404, 'CONVERSATION_NOT_FOUND')
  assertError(t, await client(app, b).post(`/messages/${original.id}/forward`, { conversation_id: target, recipient_id: c.user.id }), 400, 'VALIDATION_ERROR')

  // A file: readable by the target's members; its bytes go with the last message that refers to it.
  const pic = await upload(a, source)
  const fileId = pic.file_url.replace('/files/', '')
  const fcopy = (await client(app, b).post(`/messages/${pic.id}/forward`, { conversation_id: target })).json()
  t.equal(fcopy.file_url, pic.file_url)
  t.equal((await client(app, c).get(pic.file_url)).statusCode, 200, "the target's member reads it")
  await client(app, a).delete(`/messages/${pic.id}`)
  t.equal((await client(app, c).get(pic.file_url)).statusCode, 200, 'the original deleted: the copy still shows it')
  const file = await db.selectFrom('files').select('storage_name').where('id', '=', fileId).executeTakeFirst()
  t.ok(file, 'its row is kept')
  const chunks = () => db.selectFrom('file_chunks').select('n').where('storage_name', '=', file!.storage_name).execute()
  t.ok((await chunks()).length > 0, 'and its bytes')
  await client(app, b).delete(`/messages/${fcopy.id}`)
  assertError(t, await client(app, c).get(pic.file_url), 404, 'FILE_NOT_FOUND')
  t.equal(await db.selectFrom('files').select('id').where('id', '=', fileId).executeTakeFirst(), undefined, 'the last one deleted: the file goes')
  t.same(await chunks(), [], 'its bytes with it')
  assertError(t, await client(app, c).post(`/messages/${pic.id}/forward`, { conversation_id: target }), 404, 'MESSAGE_NOT_FOUND')
  assertError(t, await client(app, a).post(`/messages/${pic.id}/forward`, { conversation_id: source }), 409, 'MESSAGE_DELETED')
})
