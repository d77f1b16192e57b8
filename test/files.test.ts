import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { sql } from 'kysely'
import t from 'tap'
import { assertError, buildTestApp, client, register, type Session, type TestApp } from './helper.ts'

// Real files, sniffed by their bytes, stored in the default storage (PostgreSQL); test/file-storage.test.ts
// runs both storages across instances.
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
  const ctx = await buildTestApp(t, env)
  const [alice, bob, stranger] = [await register(ctx.app), await register(ctx.app), await register(ctx.app)]
  const group = (await client(ctx.app, alice).post('/conversations', { is_group: true, name: 'Files', participant_ids: [bob.user.id] })).json()
  // The files whose bytes are stored.
  const onDisk = async () => (await ctx.db.selectFrom('file_chunks').select('storage_name').distinct().orderBy('storage_name').execute()).map((r) => r.storage_name)
  return { ...ctx, alice, bob, stranger, group, onDisk }
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

  // Issue 11: an access token in a URL ends up in logs; <video src> uses a signed URL (test/file-urls.test.ts).
  assertError(t, await get(app, undefined, `${video.file_url}?token=${bob.token}`), 401, 'UNAUTHORIZED')
  const strangers = assertError(t, await get(app, stranger, video.file_url), 404, 'FILE_NOT_FOUND')
  t.same(strangers, assertError(t, await get(app, stranger, `/files/${crypto.randomUUID()}`), 404), 'a stranger cannot tell it exists')
  assertError(t, await get(app, undefined, video.file_url), 401)

  const filesBefore = await onDisk()
  t.equal((await client(app, alice).delete(`/messages/${video.id}`)).statusCode, 200)
  assertError(t, await get(app, bob, video.file_url), 404, 'FILE_NOT_FOUND')
  t.equal((await onDisk()).length, filesBefore.length - 1, 'the bytes are gone from the storage')

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
  t.same(await onDisk(), [], 'nothing stored, not even a partial file')
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
  t.equal((await get(app, stranger, first.avatar_url)).headers['content-type'], 'image/webp', 'stored remade at its fixed size (test/previews.test.ts)')
  const second = (await upload(app, alice, '/users/me/avatar', multipart(PNG, 'me2.png'))).json()
  t.not(second.avatar_url, first.avatar_url)
  assertError(t, await get(app, stranger, first.avatar_url), 404)
  t.equal((await onDisk()).length, 1, 'one avatar file stored')
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

// ---- issue 11: the quota, the upload rate, the free-space floor, clean names ------------------------------

/** A video of exactly `bytes` bytes (an ftyp box, then noise). */
const videoOf = (bytes: number) => Buffer.concat([MP4.subarray(0, 24), randomBytes(bytes - 24)])

/**
 * An upload of `file` whose body goes out in two steps: the part's head at once, the file only when the
 * server reads on. Answers with whether the file was asked for: a refusal made before any of it was read
 * leaves `read` false.
 */
async function uploadWatched(app: TestApp, who: Session, url: string, file: Buffer) {
  const { headers, payload } = multipart(file, 'big.mp4')
  const split = payload.indexOf('\r\n\r\n') + 4
  let read = false
  const chunks = [payload.subarray(0, split), payload.subarray(split)]
  const body = new Readable({
    read() {
      if (chunks.length === 1) read = true
      this.push(chunks.shift() ?? null)
    },
  })
  const res = await app.inject({ method: 'POST', url, payload: body, headers: { ...headers, 'content-length': String(payload.length), authorization: `Bearer ${who.token}` } })
  return Object.assign(res, { read })
}

// What the quota counts: the user's uploads, not the previews the server made of them.
const storedBy = async (db: Awaited<ReturnType<typeof setup>>['db'], who: Session) =>
  Number((await db.selectFrom('files').select((eb) => eb.fn.coalesce(eb.fn.sum<string>('size'), sql<string>`0`).as('n'))
    .where('uploaded_by', '=', who.user.id).where('purpose', '<>', 'preview').executeTakeFirstOrThrow()).n)

t.test('a per-user byte quota: refused before the bytes when they cannot fit, with the numbers; deleting frees room', async (t) => {
  const { app, alice, bob, group, onDisk, db } = await setup(t, { UPLOAD_QUOTA_BYTES: '1000000' })
  const to = `/messages/upload?conversation_id=${group.id}`
  const first = await upload(app, alice, to, multipart(videoOf(600_000)))
  t.equal(first.statusCode, 201)

  // 400,000 bytes left: a 600,000-byte upload is refused on its Content-Length, without being read.
  const announced = await uploadWatched(app, alice, to, videoOf(600_000))
  t.match(assertError(t, announced, 413, 'QUOTA_EXCEEDED').details, ['600000 of 1000000 bytes in use'], 'the numbers, for the client to show')
  t.notOk(announced.read, 'answered before the file was read')
  // Announced small enough to be read: stopped where the room ends.
  assertError(t, await upload(app, alice, to, multipart(videoOf(450_000))), 413, 'QUOTA_EXCEEDED')
  assertError(t, await upload(app, alice, '/users/me/avatar', multipart(videoOf(450_000))), 413, 'QUOTA_EXCEEDED')
  t.equal((await onDisk()).length, 1, 'nothing of the refused uploads stays stored')
  t.equal(await storedBy(db, alice), 600_000, 'and no row')

  t.equal((await upload(app, alice, to, multipart(videoOf(300_000)))).statusCode, 201, 'what fits still goes')
  t.equal((await upload(app, bob, to, multipart(videoOf(450_000)))).statusCode, 201, "one user's quota is theirs alone")
  assertError(t, await upload(app, alice, to, multipart(videoOf(100_001))), 413, 'QUOTA_EXCEEDED')
  t.equal((await upload(app, alice, to, multipart(videoOf(100_000)))).statusCode, 201, 'up to the last byte')
  assertError(t, await upload(app, alice, to, multipart(PNG)), 413, 'QUOTA_EXCEEDED')
  t.equal((await client(app, alice).delete(`/messages/${first.json().id}`)).statusCode, 200)
  t.equal((await upload(app, alice, to, multipart(videoOf(600_000)))).statusCode, 201, 'a deleted file gives its room back')
  t.equal(await storedBy(db, alice), 1_000_000)
})

t.test('concurrent uploads of one user cannot pass the quota together', async (t) => {
  // Six at once on one instance: room for all of them there (UPLOAD_MAX_CONCURRENT), not in the quota.
  const { app, alice, group, onDisk, db } = await setup(t, { UPLOAD_QUOTA_BYTES: '1000000', UPLOAD_MAX_CONCURRENT: '6' })
  // Six at once, each checked before its bytes came while none was stored yet: only three can fit.
  const answers = await Promise.all(Array.from({ length: 6 }, () => upload(app, alice, `/messages/upload?conversation_id=${group.id}`, multipart(videoOf(300_000)))))
  t.same(answers.map((r) => r.statusCode).sort(), [201, 201, 201, 413, 413, 413])
  for (const r of answers.filter((a) => a.statusCode === 413)) assertError(t, r, 413, 'QUOTA_EXCEEDED')
  t.equal(await storedBy(db, alice), 900_000, 'within the quota')
  t.equal((await onDisk()).length, 3, 'the refused ones left nothing stored')
})

t.test('an upload rate per user: 429 with Retry-After, before the bytes', async (t) => {
  const { app, alice, bob, group, onDisk } = await setup(t, { UPLOAD_RATE_MAX: '3', UPLOAD_RATE_WINDOW_MS: '3600000' })
  const to = `/messages/upload?conversation_id=${group.id}`
  t.equal((await upload(app, alice, to, multipart(PNG))).statusCode, 201)
  t.equal((await upload(app, alice, '/users/me/avatar', multipart(PNG))).statusCode, 200)
  assertError(t, await upload(app, alice, to, multipart(Buffer.alloc(0))), 400, 'FILE_EMPTY')
  // Every attempt counted, the failed one too: the fourth is refused without being read.
  const limited = await uploadWatched(app, alice, to, videoOf(500_000))
  assertError(t, limited, 429, 'RATE_LIMITED')
  t.notOk(limited.read, 'answered before the file was read')
  const wait = Number(limited.headers['retry-after'])
  t.ok(wait >= 1 && wait <= 3600, `Retry-After: ${wait} s`)
  assertError(t, await upload(app, alice, '/users/me/avatar', multipart(PNG)), 429, 'RATE_LIMITED')
  t.equal((await client(app, alice).post('/messages', { conversation_id: group.id, content: 'text still goes' })).statusCode, 201)
  t.equal((await upload(app, bob, to, multipart(PNG))).statusCode, 201, "another user's rate is their own")
  t.equal((await onDisk()).length, 5, 'two of Alice, one of Bob, and the previews of the two images')
})

t.test('past the storage cap uploads stop with 507, before the bytes', async (t) => {
  const { app, alice, group, onDisk, db } = await setup(t, { FILE_STORAGE_MAX_BYTES: '700000' })
  const to = `/messages/upload?conversation_id=${group.id}`
  t.equal((await upload(app, alice, to, multipart(videoOf(600_000)))).statusCode, 201, 'what fits goes')
  // 100,000 bytes left: announced larger, refused unread.
  const low = await uploadWatched(app, alice, to, videoOf(500_000))
  assertError(t, low, 507, 'INSUFFICIENT_STORAGE')
  t.notOk(low.read, 'answered before the file was read')
  t.equal((await upload(app, alice, to, multipart(PNG))).statusCode, 201, 'a small file still fits')
  const full = await setup(t, { FILE_STORAGE_MAX_BYTES: '0' })
  assertError(t, await upload(full.app, full.alice, `/messages/upload?conversation_id=${full.group.id}`, multipart(PNG)), 507, 'INSUFFICIENT_STORAGE')
  assertError(t, await upload(full.app, full.alice, '/users/me/avatar', multipart(PNG)), 507, 'INSUFFICIENT_STORAGE')
  assertError(t, await upload(full.app, full.alice, `/conversations/${full.group.id}/avatar`, multipart(PNG)), 507, 'INSUFFICIENT_STORAGE')
  t.same(await full.onDisk(), [], 'nothing stored')
  t.equal(await storedBy(full.db, full.alice), 0, 'no rows')
  t.equal((await onDisk()).length, 3, 'the video, the image and its preview')
  t.equal(await storedBy(db, alice), 600_000 + PNG.length)
})

t.test('file names are stored clean: no bidi overrides, controls or invisible characters, NFC', async (t) => {
  const { app, alice, bob, group } = await setup(t)
  const cases = [
    // Shown as "invoiceexe.pdf" with the override: an .exe dressed as a PDF.
    ['invoice\u202Efdp.exe', 'invoicefdp.exe'],
    ['re\u200Bport\u2066\u0007.pdf', 'report.pdf'],
    ['cafe\u0301.pdf', 'caf\u00e9.pdf'],
  ]
  for (const [given, stored] of cases) {
    const msg = (await upload(app, alice, `/messages/upload?conversation_id=${group.id}`, multipart(PDF, given))).json()
    t.equal(msg.file_name, stored, JSON.stringify(given))
    const res = await get(app, bob, msg.file_url)
    t.equal(res.headers['content-disposition'], `attachment; filename="${encodeURIComponent(stored)}"; filename*=UTF-8''${encodeURIComponent(stored)}`, 'and served under it')
  }
})

t.test('caching and ranges as for files on disk: ETag, 304, If-Range, HEAD, several ranges', async (t) => {
  const { app, alice, group } = await setup(t)
  const video = (await upload(app, alice, `/messages/upload?conversation_id=${group.id}`, multipart(MP4, 'clip.mp4'))).json()
  const first = await get(app, alice, video.file_url)
  const etag = first.headers.etag as string
  t.match(etag, /^"[0-9a-f-]{36}"$/, 'a strong ETag')
  t.ok(first.headers['last-modified'])
  const cached = await get(app, alice, video.file_url, { 'if-none-match': etag })
  t.same([cached.statusCode, cached.rawPayload.length], [304, 0], 'a cache that has it gets 304, no bytes')
  t.equal((await get(app, alice, video.file_url, { 'if-none-match': '"other"' })).statusCode, 200)
  const same = await get(app, alice, video.file_url, { range: 'bytes=0-9', 'if-range': etag })
  t.same([same.statusCode, same.rawPayload], [206, MP4.subarray(0, 10)], 'If-Range naming this file: the range')
  const changed = await get(app, alice, video.file_url, { range: 'bytes=0-9', 'if-range': '"another"' })
  t.same([changed.statusCode, changed.rawPayload.length], [200, MP4.length], 'If-Range naming another version: the whole file')
  const several = await get(app, alice, video.file_url, { range: 'bytes=0-9,100-199' })
  t.same([several.statusCode, several.rawPayload.length], [200, MP4.length], 'several ranges: the whole file, as send did')
  const malformed = await get(app, alice, video.file_url, { range: 'bytes=x-y' })
  t.equal(malformed.statusCode, 200, 'a malformed Range is ignored')
  const head = await app.inject({ method: 'HEAD', url: video.file_url, headers: { authorization: `Bearer ${alice.token}` } })
  t.same([head.statusCode, head.headers['content-length'], head.rawPayload.length], [200, String(MP4.length), 0], 'HEAD: the length, no bytes')
})
