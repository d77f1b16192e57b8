import { randomBytes, randomUUID } from 'node:crypto'
import { crc32, deflateSync } from 'node:zlib'
import { sql } from 'kysely'
import sharp from 'sharp'
import t, { type Test } from 'tap'
import { assertError, buildLiveApp, buildTestApp, client, groupOf, register, sendAs, type Session, type TestApp } from './helper.ts'
import { Message } from '../src/schemas/messages.ts'
import { definitionOf } from '../src/schemas/named.ts'
import { startS3 } from './s3.ts'

// Image previews, avatars at a fixed size, metadata stripped, decompression bombs refused (issue 15, point 7).
// The images are made here with sharp and checked, as downloaded, with sharp's metadata().

function multipart(content: Buffer, filename = 'image.bin') {
  const boundary = `----parley${randomBytes(8).toString('hex')}`
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`
  return {
    payload: Buffer.concat([Buffer.from(head), content, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  }
}

const upload = (app: TestApp, who: Session, url: string, content: Buffer, filename?: string) => {
  const body = multipart(content, filename)
  return app.inject({ method: 'POST', url, payload: body.payload, headers: { ...body.headers, authorization: `Bearer ${who.token}` } })
}
const toGroup = (app: TestApp, who: Session, group: string, content: Buffer, filename?: string) => upload(app, who, `/messages/upload?conversation_id=${group}`, content, filename)

/** A picture with something in it (a gradient), so that its encodings are not trivially small. */
async function picture(width: number, height: number, format: 'png' | 'jpeg' = 'png') {
  const pixels = Buffer.alloc(width * height * 3)
  for (let i = 0; i < pixels.length; i += 3) {
    const p = i / 3
    pixels[i] = (p % width) % 256
    pixels[i + 1] = Math.floor(p / width) % 256
    pixels[i + 2] = 128
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } })[format]().toBuffer()
}

// What a phone writes into a photo: who, with what, and where (GPS, EXIF's IFD3), turned a quarter (orientation 6).
const SECRET = 'parley-secret-owner'
async function phonePhoto() {
  return sharp(await picture(600, 400, 'jpeg'))
    .withExif({ IFD0: { Artist: SECRET, Make: 'PhoneCo' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 24/1', GPSLongitudeRef: 'E', GPSLongitude: '2/1 21/1 3/1' } })
    .withMetadata({ orientation: 6 })
    .jpeg()
    .toBuffer()
}

/** A PNG chunk: length, type, data, CRC of type and data. */
function chunk(type: string, data: Buffer) {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(data.length)
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(body))
  return Buffer.concat([length, body, crc])
}
const PNG_SIGNATURE = Buffer.from('89504e470d0a1a0a', 'hex')
function ihdr(width: number, height: number) {
  const data = Buffer.alloc(13)
  data.writeUInt32BE(width, 0)
  data.writeUInt32BE(height, 4)
  data.set([8, 2, 0, 0, 0], 8) // 8 bits, RGB, deflate, no filter, no interlace
  return chunk('IHDR', data)
}
/** A valid PNG header claiming width × height, then a tiny zlib stream: a decompression bomb of a few hundred bytes. */
const bomb = (width: number, height: number) => Buffer.concat([PNG_SIGNATURE, ihdr(width, height), chunk('IDAT', deflateSync(Buffer.alloc(1000))), chunk('IEND', Buffer.alloc(0))])

const storedNames = async (db: TestApp['db']) => (await db.selectFrom('file_chunks').select('storage_name').distinct().execute()).length
const fileIdOf = (url: string) => url.split('/')[2]

async function setup(t: Test, env: Record<string, string> = {}) {
  const ctx = await buildLiveApp(t, env)
  const [alice, bob, stranger] = [await register(ctx.app), await register(ctx.app), await register(ctx.app)]
  const group = await groupOf(ctx.app, alice, [bob])
  return { ...ctx, alice, bob, stranger, group }
}

t.test('an image gets a WebP preview within 480×480, its aspect kept; the Message carries it in REST and live', async (t) => {
  const { app, alice, bob, group, open } = await setup(t)
  const socket = await open(bob)
  const res = await toGroup(app, alice, group, await picture(2000, 1000), 'wide.png')
  t.equal(res.statusCode, 201)
  const message = res.json()
  const id = fileIdOf(message.file_url)
  t.match(message, { message_type: 'image', mime_type: 'image/png', thumbnail_url: `/files/${id}/thumbnail`, width: 2000, height: 1000 }, "the original's size")

  const live = await socket.next((f) => f.type === 'new_message' && f.data.id === message.id)
  t.match(live.data, { thumbnail_url: message.thumbnail_url, width: 2000, height: 1000 }, 'the same fields in the new_message frame')
  const page = (await client(app, bob).get(`/conversations/${group}/messages`)).json()
  t.match(page.find((m: { id: string }) => m.id === message.id), { thumbnail_url: message.thumbnail_url, width: 2000, height: 1000 }, 'and in a page of history')
  t.match((await client(app, bob).get(`/messages/${message.id}`)).json(), { thumbnail_url: message.thumbnail_url, width: 2000 })
  // A replay from the log (another device catching up) serves the same Message.
  const later = await open(bob)
  later.send({ type: 'resume', conversations: { [group]: 0 } })
  const replayed = await later.next((f) => f.type === 'new_message' && f.data.id === message.id)
  t.match(replayed.data, { thumbnail_url: message.thumbnail_url, width: 2000, height: 1000 }, 'and in a resume')

  const thumb = await client(app, bob).get(message.thumbnail_url)
  t.equal(thumb.statusCode, 200)
  t.match(thumb.headers, { 'content-type': 'image/webp', 'cache-control': /max-age=\d+/, etag: /^"[0-9a-f-]{36}"$/, 'x-content-type-options': 'nosniff' })
  t.match(thumb.headers['content-disposition'], /^inline; filename="wide.webp"/)
  t.match(await sharp(thumb.rawPayload).metadata(), { format: 'webp', width: 480, height: 240 }, '2000×1000 → 480×240')
  const again = await app.inject({ method: 'GET', url: message.thumbnail_url, headers: { authorization: `Bearer ${bob.token}`, 'if-none-match': thumb.headers.etag as string } })
  t.equal(again.statusCode, 304, 'cacheable like the file')

  const tall = (await toGroup(app, alice, group, await picture(1000, 3000))).json()
  t.match(await sharp((await client(app, bob).get(tall.thumbnail_url)).rawPayload).metadata(), { width: 160, height: 480 }, '1000×3000 → 160×480')
  const small = (await toGroup(app, alice, group, await picture(100, 50))).json()
  t.match(small, { width: 100, height: 50 })
  t.match(await sharp((await client(app, bob).get(small.thumbnail_url)).rawPayload).metadata(), { format: 'webp', width: 100, height: 50 }, 'never enlarged')

  const text = await sendAs(app, alice, group, 'no picture')
  t.match(text, { thumbnail_url: null, width: null, height: null }, 'null on other messages')
})

t.test('EXIF, its GPS position and the rest of the metadata never reach a preview or an avatar', async (t) => {
  const { app, alice, bob, group } = await setup(t)
  const photo = await phonePhoto()
  const original = await sharp(photo).metadata()
  t.match(original, { width: 600, height: 400, orientation: 6 }, 'the upload says who and where')
  t.ok(original.exif?.includes(SECRET) && original.exif.includes('PhoneCo'), "its EXIF names the owner and the phone")
  // The GPS IFD's pointer (tag 0x8825), in either byte order.
  t.ok(original.exif!.includes(Buffer.from([0x88, 0x25])) || original.exif!.includes(Buffer.from([0x25, 0x88])), 'and has a GPS block')

  const message = (await toGroup(app, alice, group, photo, 'IMG_0001.jpg')).json()
  t.match(message, { width: 400, height: 600 }, 'as shown: turned by its orientation')
  const thumb = (await client(app, bob).get(message.thumbnail_url)).rawPayload
  const meta = await sharp(thumb).metadata()
  t.match(meta, { format: 'webp', width: 320, height: 480 }, 'the preview stands as the photo was taken')
  t.same([meta.exif, meta.xmp, meta.iptc, meta.orientation], [undefined, undefined, undefined, undefined], 'no EXIF, XMP, IPTC or orientation')
  t.notOk(thumb.includes(SECRET) || thumb.includes('PhoneCo'), 'nothing of it in the bytes')
  t.equal((await client(app, bob).get(message.file_url)).rawPayload.length, photo.length, 'the file itself is what was sent')

  const avatarUrl = (await upload(app, alice, '/users/me/avatar', photo, 'me.jpg')).json().avatar_url
  const avatar = await client(app, bob).get(avatarUrl)
  t.equal(avatar.headers['content-type'], 'image/webp')
  const avatarMeta = await sharp(avatar.rawPayload).metadata()
  t.match(avatarMeta, { format: 'webp', width: 256, height: 256 }, 'an avatar is a 256×256 square')
  t.same([avatarMeta.exif, avatarMeta.xmp, avatarMeta.orientation], [undefined, undefined, undefined])
  t.notOk(avatar.rawPayload.includes(SECRET), "the owner's name is not in what others download")

  const groupAvatar = (await upload(app, alice, `/conversations/${group}/avatar`, photo)).json().avatar_url
  const groupMeta = await sharp((await client(app, bob).get(groupAvatar)).rawPayload).metadata()
  t.match(groupMeta, { format: 'webp', width: 256, height: 256 })
  t.equal(groupMeta.exif, undefined, "and a group's avatar the same")
})

t.test('an avatar is the middle square of the picture', async (t) => {
  const { app, alice, bob } = await setup(t)
  // 300×100: red, green, blue thirds. The middle square is the green one.
  const thirds = Buffer.alloc(300 * 100 * 3)
  for (let p = 0; p < 300 * 100; p++) thirds[p * 3 + Math.floor((p % 300) / 100)] = 255
  const png = await sharp(thirds, { raw: { width: 300, height: 100, channels: 3 } }).png().toBuffer()
  const url = (await upload(app, alice, '/users/me/avatar', png)).json().avatar_url
  const { data } = await sharp((await client(app, bob).get(url)).rawPayload).removeAlpha().raw().toBuffer({ resolveWithObject: true })
  const middle = (128 * 256 + 128) * 3
  const [r, g, b] = data.subarray(middle, middle + 3)
  t.ok(g > 200 && r < 50 && b < 50, `the centre is green (${r},${g},${b})`)
  // Near the left and right edges (at the very edge the resampling blends in a neighbour): green too.
  const near = (x: number) => data.subarray((128 * 256 + x) * 3, (128 * 256 + x) * 3 + 3)
  t.ok([4, 251].every((x) => near(x)[1] > 200 && near(x)[0] < 50 && near(x)[2] < 50), 'the red and blue sides were cut off')
})

t.test('the preview has the readers of its image, and goes with the last message that refers to it', async (t) => {
  const { app, db, alice, bob, stranger, group } = await setup(t)
  const message = (await toGroup(app, alice, group, await picture(800, 600))).json()
  t.equal((await client(app, bob).get(message.thumbnail_url)).statusCode, 200, 'a member')
  const strangers = assertError(t, await client(app, stranger).get(message.thumbnail_url), 404, 'FILE_NOT_FOUND')
  t.same(strangers, assertError(t, await client(app, stranger).get(`/files/${randomUUID()}/thumbnail`), 404), 'a stranger cannot tell it exists')
  assertError(t, await client(app).get(message.thumbnail_url), 401)
  const [preview] = await db.selectFrom('files').select('id').where('preview_of', '=', fileIdOf(message.file_url)).execute()
  assertError(t, await client(app, bob).get(`/files/${preview.id}`), 404, 'FILE_NOT_FOUND')

  // A signed URL of the image opens its preview too (for <img src>); a stranger's signature opens nothing.
  const link = (await client(app, bob).get(`${message.file_url}/url`)).json()
  const signed = await app.inject({ method: 'GET', url: link.url.replace(message.file_url, message.thumbnail_url) })
  t.same([signed.statusCode, signed.headers['content-type']], [200, 'image/webp'])

  const pdf = (await toGroup(app, alice, group, Buffer.from('%PDF-1.4\n%âãÏÓ\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n'))).json()
  t.match(pdf, { message_type: 'file', thumbnail_url: null, width: null, height: null })
  assertError(t, await client(app, bob).get(`${pdf.file_url}/thumbnail`), 404, 'PREVIEW_NOT_FOUND')

  // Forwarded: the copy shares the file, and so the preview; each deletion lets go, the last one deletes.
  const other = await groupOf(app, bob, [stranger])
  const copy = (await client(app, bob).post(`/messages/${message.id}/forward`, { conversation_id: other })).json()
  t.match(copy, { thumbnail_url: message.thumbnail_url, width: 800, height: 600 }, 'a forwarded copy has the preview')
  const before = await storedNames(db)
  await client(app, alice).delete(`/messages/${message.id}`)
  t.equal((await client(app, stranger).get(copy.thumbnail_url)).statusCode, 200, 'still there for the copy')
  assertError(t, await client(app, alice).get(message.thumbnail_url), 404, 'FILE_NOT_FOUND')
  const deleted = (await client(app, bob).delete(`/messages/${copy.id}`)).json()
  t.match(deleted, { thumbnail_url: null, width: null, height: null }, 'the deleted form has none')
  assertError(t, await client(app, stranger).get(copy.thumbnail_url), 404, 'FILE_NOT_FOUND')
  t.equal(await storedNames(db), before - 2, "the image's bytes and its preview's are gone")
  t.same(await db.selectFrom('files').select('id').where('id', '=', preview.id).execute(), [], 'and its row')
})

t.test('a decompression bomb is refused before it is decoded', async (t) => {
  const { app, db, alice, group } = await setup(t)
  const png = bomb(50_000, 50_000)
  t.ok(png.length < 500, `a ${png.length}-byte PNG`)
  t.match(await sharp(png, { limitInputPixels: false }).metadata(), { width: 50_000, height: 50_000 }, 'whose header claims 2.5 billion pixels')
  const rss = process.memoryUsage().rss
  const refused = assertError(t, await toGroup(app, alice, group, png, 'bomb.png'), 413, 'IMAGE_TOO_LARGE')
  t.match(refused.error, /50000×50000/)
  assertError(t, await upload(app, alice, '/users/me/avatar', png), 413, 'IMAGE_TOO_LARGE')
  const grown = process.memoryUsage().rss - rss
  t.ok(grown < 100 * 2 ** 20, `the process grew by ${(grown / 2 ** 20).toFixed(1)} MB (decoded, it would be 7.5 GB)`)
  t.equal(await storedNames(db), 0, 'nothing stored')
  t.equal(await db.selectFrom('messages').select('id').where('message_type', '=', 'image').executeTakeFirst(), undefined, 'no message')
})

t.test('IMAGE_MAX_PIXELS bounds real images too', async (t) => {
  const { app, db, alice, group } = await setup(t, { IMAGE_MAX_PIXELS: String(1000 * 1000) })
  assertError(t, await toGroup(app, alice, group, await picture(1001, 1000)), 413, 'IMAGE_TOO_LARGE')
  t.equal(await storedNames(db), 0)
  t.equal((await toGroup(app, alice, group, await picture(1000, 1000))).statusCode, 201, 'at the limit it passes')
})

t.test('a corrupt image is refused with 415 INVALID_IMAGE; an image sharp cannot read is kept without a preview', async (t) => {
  const { app, db, alice, group } = await setup(t)
  // A PNG's signature and header, then pixels that are not a zlib stream.
  const corrupt = Buffer.concat([PNG_SIGNATURE, ihdr(64, 64), chunk('IDAT', randomBytes(300)), chunk('IEND', Buffer.alloc(0))])
  const refused = assertError(t, await toGroup(app, alice, group, corrupt, 'broken.png'), 415, 'INVALID_IMAGE')
  t.match(refused.error, /image\/png/)
  assertError(t, await upload(app, alice, '/users/me/avatar', corrupt), 415, 'INVALID_IMAGE')
  t.equal(await storedNames(db), 0, 'nothing stored')
  // A PNG's signature and noise: not sniffed as an image at all (file-type reads the chunks), so a plain file.
  t.match((await toGroup(app, alice, group, Buffer.concat([PNG_SIGNATURE, randomBytes(200)]))).json(), { message_type: 'file', mime_type: 'application/octet-stream', thumbnail_url: null })

  // A BMP: an image (file-type knows it), not one libvips decodes.
  const bmp = Buffer.alloc(54 + 4 * 4 * 3)
  bmp.write('BM', 0, 'latin1')
  bmp.writeUInt32LE(bmp.length, 2)
  bmp.writeUInt32LE(54, 10)
  bmp.writeUInt32LE(40, 14)
  bmp.writeInt32LE(4, 18)
  bmp.writeInt32LE(4, 22)
  bmp.writeUInt16LE(1, 26)
  bmp.writeUInt16LE(24, 28)
  const kept = (await toGroup(app, alice, group, bmp, 'old.bmp')).json()
  t.match(kept, { message_type: 'image', mime_type: 'image/bmp', thumbnail_url: null, width: null, height: null })
})

t.test('an animated GIF gets a still preview of its first frame', async (t) => {
  const { app, alice, bob, group } = await setup(t)
  const frames = await Promise.all([[255, 0, 0], [0, 0, 255]].map(([r, g, b]) => sharp({ create: { width: 200, height: 100, channels: 3, background: { r, g, b } } }).png().toBuffer()))
  const gif = await sharp(frames, { join: { animated: true } }).gif().toBuffer()
  t.match(await sharp(gif).metadata(), { format: 'gif', pages: 2, width: 200, height: 100 }, 'two frames of 200×100')
  const message = (await toGroup(app, alice, group, gif, 'wave.gif')).json()
  t.match(message, { mime_type: 'image/gif', width: 200, height: 100 }, "a frame's size")
  const thumb = (await client(app, bob).get(message.thumbnail_url)).rawPayload
  const meta = await sharp(thumb).metadata()
  t.match(meta, { format: 'webp', width: 200, height: 100 })
  t.notOk((meta.pages ?? 1) > 1, 'one frame')
  const { data } = await sharp(thumb).removeAlpha().raw().toBuffer({ resolveWithObject: true })
  t.ok(data[0] > 200 && data[2] < 50, 'the first (red) frame')
})

t.test('s3: the preview is an object beside its image, and leaves the bucket with it', async (t) => {
  const s3 = await startS3(t)
  const { app, db } = await buildTestApp(t, s3.env)
  const [alice, bob] = [await register(app), await register(app)]
  const group = await groupOf(app, alice, [bob])
  const message = (await toGroup(app, alice, group, await picture(1200, 900))).json()
  t.equal((await s3.objects()).length, 2, 'the image and its preview')
  t.match(await sharp((await client(app, bob).get(message.thumbnail_url)).rawPayload).metadata(), { format: 'webp', width: 480, height: 360 })
  assertError(t, await toGroup(app, alice, group, bomb(50_000, 50_000)), 413, 'IMAGE_TOO_LARGE')
  t.equal((await s3.objects()).length, 2, 'a bomb leaves nothing')
  await client(app, alice).delete(`/messages/${message.id}`)
  t.same(await s3.objects(), [], 'both gone')
  t.same(await db.selectFrom('file_objects_pending').selectAll().execute(), [], 'and no marks left')
})

t.test("the SQL function's Message has exactly the schema's keys, with and without a preview", async (t) => {
  const { app, db, alice, group } = await setup(t)
  const image = (await toGroup(app, alice, group, await picture(10, 10))).json()
  const text = await sendAs(app, alice, group, 'words')
  for (const id of [image.id, text.id]) {
    const { rows } = await sql<{ message: Record<string, unknown> }>`SELECT parley_message_json(m) AS message FROM messages m WHERE id = ${id}`.execute(db)
    t.same(Object.keys(rows[0].message).sort(), Object.keys(definitionOf(Message).properties ?? {}).sort(), id === image.id ? 'an image' : 'a text')
  }
})
