import { randomBytes } from 'node:crypto'
import t from 'tap'
import { assertError, buildTestApp, client, register, type Session, type TestApp } from './helper.ts'

// Signed file URLs (issue 11): what <img src> and <video src> load instead of a URL with the access token.

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64')
const TTL = 300

function multipart(content: Buffer, filename = 'file.bin') {
  const boundary = `----parley${randomBytes(8).toString('hex')}`
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`
  return {
    payload: Buffer.concat([Buffer.from(head), content, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  }
}

const upload = async (app: TestApp, who: Session, url: string, content = PNG) => {
  const body = multipart(content, 'pic.png')
  const res = await app.inject({ method: 'POST', url, payload: body.payload, headers: { ...body.headers, authorization: `Bearer ${who.token}` } })
  if (res.statusCode >= 300) throw new Error(`upload: ${res.statusCode} ${res.body}`)
  return res.json()
}

/** A GET with no token at all: what a browser's <img src> sends. */
const open = (app: TestApp, url: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, headers })

/** The signed URL of a file for this user, as GET /files/{id}/url gives it. */
async function signed(t: Parameters<typeof assertError>[0], app: TestApp, who: Session, fileUrl: string) {
  const res = await client(app, who).get(`${fileUrl}/url`)
  t.equal(res.statusCode, 200, 'a URL for a reader')
  return res.json() as { url: string; expires_at: string }
}

const withParam = (url: string, key: string, value: string) => {
  const u = new URL(url, 'http://x')
  u.searchParams.set(key, value)
  return `${u.pathname}${u.search}`
}

async function setup(t: Parameters<typeof buildTestApp>[0]) {
  const ctx = await buildTestApp(t, { FILE_URL_TTL: String(TTL) })
  const [alice, bob, stranger] = [await register(ctx.app), await register(ctx.app), await register(ctx.app)]
  const group = (await client(ctx.app, alice).post('/conversations', { is_group: true, name: 'Pics', participant_ids: [bob.user.id] })).json()
  const photo = await upload(ctx.app, alice, `/messages/upload?conversation_id=${group.id}`)
  return { ...ctx, alice, bob, stranger, group, photo }
}

t.test('a signed URL opens one file without a token, for a while, and the same URL is given meanwhile', async (t) => {
  const { app, bob, photo } = await setup(t)
  const link = await signed(t, app, bob, photo.file_url)
  t.match(link.url, new RegExp(`^${photo.file_url}\\?expires=\\d+&u=${bob.user.id}&s=[0-9a-f-]{36}&sig=[\\w-]{43}$`))
  t.notMatch(link.url, bob.token, 'no access token in it')
  const left = (Date.parse(link.expires_at) - Date.now()) / 1000
  t.ok(left > TTL - 5 && left <= 2 * TTL, `it lives between one and two TTLs (${left} s)`)

  const res = await open(app, link.url)
  t.equal(res.statusCode, 200)
  t.same(res.rawPayload, PNG, 'the file')
  t.equal(res.headers['content-type'], 'image/png')
  const maxAge = Number(/max-age=(\d+)/.exec(String(res.headers['cache-control']))?.[1])
  t.ok(maxAge <= 2 * TTL && maxAge > 0, 'a browser keeps it no longer than the URL works')
  t.equal((await open(app, link.url, { range: 'bytes=0-7' })).statusCode, 206, 'ranges work too (video)')
  // Unless a step of the expiry grid ended between the two asks (a few ms in 300 s).
  const again = await signed(t, app, bob, photo.file_url)
  const crossed = Date.parse(again.expires_at) === Date.parse(link.expires_at) + TTL * 1000
  t.ok(again.url === link.url || crossed, 'asked again, the same URL: the browser cache serves it')
})

t.test('the access token is not taken from the URL any more', async (t) => {
  const { app, bob, photo } = await setup(t)
  assertError(t, await open(app, `${photo.file_url}?token=${bob.token}`), 401, 'UNAUTHORIZED')
  assertError(t, await open(app, photo.file_url), 401)
  t.equal((await client(app, bob).get(photo.file_url)).statusCode, 200, 'the bearer header still works')
})

t.test('an expired, tampered or borrowed signature opens nothing', async (t) => {
  const { app, alice, bob, stranger, group, photo } = await setup(t)
  const link = await signed(t, app, bob, photo.file_url)
  const { urls } = app.services.files
  const id = photo.file_url.replace('/files/', '')
  const sessionOf = (url: string) => new URL(url, 'http://x').searchParams.get('s')!

  // Signed by the server, but as if asked for three TTLs ago.
  const old = urls.sign(id, { userId: bob.user.id, sessionId: sessionOf(link.url) }, Date.now() - 3 * TTL * 1000)
  assertError(t, await open(app, old.url), 401, 'FILE_URL_EXPIRED')

  const sig = new URL(link.url, 'http://x').searchParams.get('sig')!
  const flipped = `${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`
  assertError(t, await open(app, withParam(link.url, 'sig', flipped)), 401, 'FILE_URL_INVALID')
  assertError(t, await open(app, withParam(link.url, 'sig', sig.slice(0, 20))), 401, 'FILE_URL_INVALID')
  const later = String(Number(new URL(link.url, 'http://x').searchParams.get('expires')) + 86_400)
  assertError(t, await open(app, withParam(link.url, 'expires', later)), 401, 'FILE_URL_INVALID')
  assertError(t, await open(app, withParam(link.url, 'u', stranger.user.id)), 401, 'FILE_URL_INVALID')
  assertError(t, await open(app, withParam(link.url, 's', crypto.randomUUID())), 401, 'FILE_URL_INVALID')

  // Bob's signature on another file (one he may read too) opens nothing.
  const other = await upload(app, alice, `/messages/upload?conversation_id=${group.id}`)
  assertError(t, await open(app, link.url.replace(photo.file_url, other.file_url)), 401, 'FILE_URL_INVALID')

  // A stranger gets no URL, and cannot tell the file exists.
  const refused = assertError(t, await client(app, stranger).get(`${photo.file_url}/url`), 404, 'FILE_NOT_FOUND')
  t.same(refused, assertError(t, await client(app, stranger).get(`/files/${crypto.randomUUID()}/url`), 404), 'the same as for no file')
  assertError(t, await open(app, `${photo.file_url}/url`), 401)
})

t.test('a signed URL stops when its reader may no longer read: left, logged out, deleted', async (t) => {
  const { app, alice, bob, stranger, group, photo } = await setup(t)
  const bobs = await signed(t, app, bob, photo.file_url)
  t.equal((await open(app, bobs.url)).statusCode, 200)
  await client(app, bob).post(`/conversations/${group.id}/leave`)
  assertError(t, await open(app, bobs.url), 404, 'FILE_NOT_FOUND')

  const alices = await signed(t, app, alice, photo.file_url)
  const logout = await client(app, alice).post('/auth/logout', { refresh_token: alice.refresh })
  t.equal(logout.statusCode, 204)
  assertError(t, await open(app, alices.url), 404, 'FILE_NOT_FOUND')

  // Avatars: any signed-in user may read them, by the same kind of URL; not once their account is gone.
  const avatar = (await upload(app, bob, '/users/me/avatar')).avatar_url as string
  const strangers = await signed(t, app, stranger, avatar)
  t.equal((await open(app, strangers.url)).statusCode, 200, "a stranger's signed URL for an avatar")
  await client(app, stranger).delete('/users/me')
  assertError(t, await open(app, strangers.url), 404, 'FILE_NOT_FOUND')
})
