import { randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import t from 'tap'
import { assertError, buildTestApp, client, register, type Session, tempDir, type TestApp } from './helper.ts'

// Real files on disk, sniffed by their bytes.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64')
const MP4 = Buffer.concat([Buffer.from('000000186674797069736f6d0000020069736f6d69736f32', 'hex'), randomBytes(100_000)])
const PDF = Buffer.from('%PDF-1.4\n%âãÏÓ\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n')
const HTML = Buffer.from('<html><body><script>alert(document.cookie)</script></body></html>')

function multipart(content: Buffer, filename = 'file.bin', contentType = 'application/octet-stream', field = 'file') {
  const boundary = `----parley${randomBytes(8).toString('hex')}`
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: ${contentType}\r\n\r\n`
  return {
    payload: Buffer.concat([Buffer.from(head), content, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  }
}

async function setup(t: Parameters<typeof buildTestApp>[0], env: Record<string, string> = {}) {
  const uploads = await tempDir(t, 'parley-uploads-')
  const ctx = await buildTestApp(t, { UPLOAD_DIR: uploads, ...env })
  const [alice, bob, stranger] = [await register(ctx.app), await register(ctx.app), await register(ctx.app)]
  const group = (await client(ctx.app, alice).post('/conversations', { is_group: true, name: 'Files', participant_ids: [bob.user.id] })).json()
  const onDisk = async () => (await readdir(uploads)).sort()
  return { ...ctx, uploads, alice, bob, stranger, group, onDisk }
}

const upload = (app: TestApp, who: Session, url: string, body: ReturnType<typeof multipart>) =>
  app.inject({ method: 'POST', url, payload: body.payload, headers: { ...body.headers, authorization: `Bearer ${who.token}` } })

const get = (app: TestApp, who: Session | undefined, url: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'GET', url, headers: { ...headers, ...(who && { authorization: `Bearer ${who.token}` }) } })

t.test('the message type comes from the bytes, never from the name or Content-Type', async (t) => {
  const { app, alice, group } = await setup(t)
  const cases = [
    { raw: PNG, body: multipart(PNG, 'holiday.jpg', 'video/mp4'), type: 'image', mime: 'image/png' },
    { raw: MP4, body: multipart(MP4, 'clip.txt', 'text/plain'), type: 'video', mime: 'video/mp4' },
    { raw: PDF, body: multipart(PDF, 'report.png', 'image/png'), type: 'file', mime: 'application/pdf' },
    { raw: HTML, body: multipart(HTML, 'cat.png', 'image/png'), type: 'file', mime: 'application/octet-stream' },
  ]
  for (const c of cases) {
    const res = await upload(app, alice, `/messages/upload?conversation_id=${group.id}&caption=look`, c.body)
    t.equal(res.statusCode, 201)
    const msg = res.json()
    t.match(msg, { message_type: c.type, mime_type: c.mime, content: 'look', file_size: c.raw.length, file_url: /^\/files\/[0-9a-f-]{36}$/ })
  }
  const noCaption = (await upload(app, alice, `/messages/upload?conversation_id=${group.id}`, multipart(PNG, '../../etc/passwd'))).json()
  t.equal(noCaption.content, null, 'the caption is optional')
  t.equal(noCaption.file_name, 'passwd', 'the client name is kept for display only, without its path')
})

t.test('files are served to members only, safely, with ranges; deleting the message removes the file', async (t) => {
  const { app, alice, bob, stranger, group, onDisk } = await setup(t)
  const html = (await upload(app, alice, `/messages/upload?conversation_id=${group.id}`, multipart(HTML, 'cat.png', 'image/png'))).json()
  const video = (await upload(app, alice, `/messages/upload?conversation_id=${group.id}`, multipart(MP4, 'clip.mp4'))).json()

  const res = await get(app, bob, html.file_url)
  t.equal(res.statusCode, 200)
  t.equal(res.body, HTML.toString(), 'the bytes as uploaded')
  t.equal(res.headers['content-type'], 'application/octet-stream', 'the sniffed type, not what the client claimed')
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.match(res.headers['content-disposition'], /^attachment; filename="cat.png"/, 'anything a browser could run is a download')
  t.match(res.headers['content-security-policy'], /sandbox/)

  const whole = await get(app, bob, video.file_url)
  t.match(whole.headers, { 'content-type': 'video/mp4', 'accept-ranges': 'bytes' })
  t.match(whole.headers['content-disposition'], /^inline/)
  const part = await get(app, bob, video.file_url, { range: 'bytes=100-199' })
  t.equal(part.statusCode, 206)
  t.equal(part.headers['content-range'], `bytes 100-199/${MP4.length}`)
  t.same(part.rawPayload, MP4.subarray(100, 200), 'exactly the requested bytes')
  assertError(t, await get(app, bob, video.file_url, { range: `bytes=${MP4.length + 10}-` }), 416, 'RANGE_NOT_SATISFIABLE')

  t.equal((await get(app, undefined, `${video.file_url}?token=${bob.token}`)).statusCode, 200, 'the token may come in the query, for <video src>')
  const strangers = assertError(t, await get(app, stranger, video.file_url), 404, 'FILE_NOT_FOUND')
  t.same(strangers, assertError(t, await get(app, stranger, `/files/${crypto.randomUUID()}`), 404), 'a stranger cannot tell it exists')
  assertError(t, await get(app, undefined, video.file_url), 401)

  const filesBefore = await onDisk()
  t.equal((await client(app, alice).delete(`/messages/${video.id}`)).statusCode, 200)
  assertError(t, await get(app, bob, video.file_url), 404, 'FILE_NOT_FOUND')
  t.equal((await onDisk()).length, filesBefore.length - 1, 'the bytes are gone from disk')

  await client(app, bob).post(`/conversations/${group.id}/leave`)
  assertError(t, await get(app, bob, html.file_url), 404, 'FILE_NOT_FOUND')
  t.equal((await get(app, alice, html.file_url)).statusCode, 200, 'still there for members')
})

t.test('failed uploads leave no file and no message', async (t) => {
  const { app, alice, stranger, group, onDisk, db } = await setup(t, { MAX_UPLOAD_BYTES: '50000' })
  const count = async () => Number((await db.selectFrom('messages').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)
  const before = await count()
  assertError(t, await upload(app, alice, `/messages/upload?conversation_id=${group.id}`, multipart(MP4)), 413, 'PAYLOAD_TOO_LARGE')
  assertError(t, await upload(app, stranger, `/messages/upload?conversation_id=${group.id}`, multipart(PNG)), 404, 'CONVERSATION_NOT_FOUND')
  assertError(t, await upload(app, alice, `/messages/upload?conversation_id=${group.id}`, multipart(Buffer.alloc(0))), 400, 'FILE_EMPTY')
  assertError(t, await upload(app, alice, `/messages/upload?conversation_id=${group.id}`, multipart(PNG, 'a.png', 'image/png', 'other')), 400)
  assertError(t, await upload(app, alice, `/messages/upload?conversation_id=not-a-uuid`, multipart(PNG)), 400)
  assertError(t, await upload(app, alice, `/messages/upload?conversation_id=${group.id}&caption=${'x'.repeat(5001)}`, multipart(PNG)), 400)
  const json = await app.inject({ method: 'POST', url: `/messages/upload?conversation_id=${group.id}`, payload: { file: 'x' }, headers: { authorization: `Bearer ${alice.token}` } })
  assertError(t, json, 415, 'UNSUPPORTED_MEDIA_TYPE')
  t.same(await onDisk(), [], 'nothing on disk, not even a partial file')
  t.equal(await count(), before, 'no message rows')
})

t.test('avatars: images only, public to signed-in users, the old one removed', async (t) => {
  const { app, alice, bob, stranger, group, onDisk } = await setup(t)
  assertError(t, await upload(app, alice, '/users/me/avatar', multipart(PDF, 'me.png', 'image/png')), 415, 'UNSUPPORTED_MEDIA_TYPE')
  assertError(t, await upload(app, alice, '/users/me/avatar', multipart(HTML, 'me.png', 'image/png')), 415)
  t.same(await onDisk(), [], 'refused files are not kept')
  const first = (await upload(app, alice, '/users/me/avatar', multipart(PNG, 'me.png'))).json()
  t.match(first.avatar_url, /^\/files\//)
  t.equal((await get(app, stranger, first.avatar_url)).statusCode, 200, 'any signed-in user sees avatars')
  t.equal((await get(app, stranger, first.avatar_url)).headers['content-type'], 'image/png')
  const second = (await upload(app, alice, '/users/me/avatar', multipart(PNG, 'me2.png'))).json()
  t.not(second.avatar_url, first.avatar_url)
  assertError(t, await get(app, stranger, first.avatar_url), 404)
  t.equal((await onDisk()).length, 1, 'one avatar file on disk')
  t.equal((await client(app, bob).get(`/users/${alice.user.id}`)).json().avatar_url, second.avatar_url)

  const set = await upload(app, alice, `/conversations/${group.id}/avatar`, multipart(PNG))
  t.equal(set.statusCode, 200)
  t.match(set.json().avatar_url, /^\/files\//)
  t.equal(set.json().last_message.content.endsWith('changed the group photo'), true, 'a system message says so')
  assertError(t, await upload(app, bob, `/conversations/${group.id}/avatar`, multipart(PNG)), 403, 'NOT_ADMIN')
  assertError(t, await upload(app, stranger, `/conversations/${group.id}/avatar`, multipart(PNG)), 404)
  const direct = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json()
  assertError(t, await upload(app, alice, `/conversations/${direct.id}/avatar`, multipart(PNG)), 400, 'NOT_A_GROUP')
  assertError(t, await upload(app, alice, `/conversations/${group.id}/avatar`, multipart(MP4)), 415)
  t.equal((await onDisk()).length, 2, 'only the two current avatars are kept')
})
