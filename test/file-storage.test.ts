import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { sql } from 'kysely'
import pg from 'pg'
import t, { type Test } from 'tap'
import { migrateToLatest } from '../db/migrate.ts'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { createDatabase, type DB } from '../src/database.ts'
import { CHUNK_BYTES } from '../src/services/file-storage/postgres.ts'
import { assertError, buildTestApp, client, JWT_SECRET, register, testDatabase } from './helper.ts'
import { call, startServer } from './processes.ts'
import { startS3 } from './s3.ts'

// Issue 13, point 3: a file uploaded through one instance is served by every other, with no shared volume,
// from either storage; a crash mid-upload leaves nothing; deleting removes the bytes.

const MP4_HEAD = Buffer.from('000000186674797069736f6d0000020069736f6d69736f32', 'hex')
const video = (bytes: number) => Buffer.concat([MP4_HEAD, randomBytes(bytes - MP4_HEAD.length)])
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64')
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** Resolves once `check` holds, trying again every few milliseconds (a condition, not a guess at a duration). */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 10))
}

interface Storage {
  env: Record<string, string>
  s3?: Awaited<ReturnType<typeof startS3>>
  /** The keys whose bytes the storage holds. */
  stored(db: DB): Promise<string[]>
}

const storages: Record<string, (t: Test) => Promise<Storage>> = {
  postgres: async () => ({
    env: {},
    stored: async (db) => (await db.selectFrom('file_chunks').select('storage_name').distinct().execute()).map((r) => r.storage_name).sort(),
  }),
  s3: async (t) => {
    const s3 = await startS3(t)
    return { env: s3.env, s3, stored: () => s3.objects() }
  },
}

/** A database of its own, and a pool to look into it with. */
async function database(t: Test) {
  const url = await testDatabase(t)
  const { db } = createDatabase(url, 2)
  t.teardown(() => db.destroy())
  await migrateToLatest(db)
  return { url, db }
}

const multipart = (content: Buffer, filename = 'clip.mp4') => {
  const boundary = `----parley${randomBytes(8).toString('hex')}`
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`)
  return { head, tail: Buffer.from(`\r\n--${boundary}--\r\n`), type: `multipart/form-data; boundary=${boundary}` }
}

async function uploadTo(base: string, token: string, url: string, content: Buffer) {
  const form = new FormData()
  form.append('file', new Blob([new Uint8Array(content)]), 'clip.mp4')
  const res = await fetch(`${base}${url}`, { method: 'POST', body: form, headers: { authorization: `Bearer ${token}` } })
  return { status: res.status, body: await res.json() }
}

const download = async (base: string, token: string, url: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`${base}${url}`, { headers: { ...headers, authorization: `Bearer ${token}` } })
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) }
}

for (const [name, make] of Object.entries(storages)) {
  t.test(`${name}: uploaded through one instance, served byte for byte by another; ranges; deleted from both`, async (t) => {
    const storage = await make(t)
    const { url, db } = await database(t)
    // Two processes, nothing shared but the database (and the bucket): no upload folder at all.
    const env = { DATABASE_URL: url, JWT_SECRET, ...storage.env }
    const [a, b] = await Promise.all([startServer(t, env), startServer(t, env)])
    const reg = async (base: string, name: string) => (await call(base, 'POST', '/auth/register', undefined, { username: `${name}_${process.pid}`, password: 'Passw0rd' })).body
    const alice = await reg(a.base, 'alice')
    const bob = await reg(b.base, 'bob')
    const group = (await call(a.base, 'POST', '/conversations', alice.access_token, { is_group: true, name: 'Across', participant_ids: [bob.user.id] })).body

    // 12 MB: many chunks in PostgreSQL, a multipart upload in S3.
    const content = video(12 * 1024 * 1024 + 12345)
    const sent = await uploadTo(a.base, alice.access_token, `/messages/upload?conversation_id=${group.id}`, content)
    t.equal(sent.status, 201)
    t.match(sent.body, { message_type: 'video', mime_type: 'video/mp4', file_size: content.length })
    t.equal((await storage.stored(db)).length, 1, 'stored once')

    const whole = await download(b.base, bob.access_token, sent.body.file_url)
    t.equal(whole.status, 200)
    t.equal(whole.headers.get('content-length'), String(content.length))
    t.equal(sha(whole.bytes), sha(content), 'the other instance serves the very bytes')

    const from = CHUNK_BYTES * 3 - 100
    const across = await download(b.base, bob.access_token, sent.body.file_url, { range: `bytes=${from}-${from + CHUNK_BYTES + 199}` })
    t.equal(across.status, 206)
    t.equal(across.headers.get('content-range'), `bytes ${from}-${from + CHUNK_BYTES + 199}/${content.length}`)
    t.same(across.bytes, content.subarray(from, from + CHUNK_BYTES + 200), 'a range across chunk boundaries')
    const tail = await download(b.base, bob.access_token, sent.body.file_url, { range: 'bytes=-1000' })
    t.same([tail.status, tail.bytes], [206, content.subarray(-1000)], 'the last bytes')
    const outside = await download(b.base, bob.access_token, sent.body.file_url, { range: `bytes=${content.length}-` })
    t.same([outside.status, outside.headers.get('content-range')], [416, `bytes */${content.length}`])

    t.equal((await call(a.base, 'DELETE', `/messages/${sent.body.id}`, alice.access_token)).status, 200)
    t.equal((await download(b.base, bob.access_token, sent.body.file_url)).status, 404, 'gone on the other instance')
    t.same(await storage.stored(db), [], 'and its bytes with it')
  })

  t.test(`${name}: an instance killed mid-upload leaves no bytes and no row`, async (t) => {
    const storage = await make(t)
    const { url, db } = await database(t)
    const instance = await startServer(t, { DATABASE_URL: url, JWT_SECRET, ...storage.env })
    const alice = (await call(instance.base, 'POST', '/auth/register', undefined, { username: `crash_${process.pid}`, password: 'Passw0rd' })).body
    const group = (await call(instance.base, 'POST', '/conversations', alice.access_token, { is_group: true, name: 'Crash', participant_ids: [] })).body

    // 20 MB announced; 7 MB sent (past S3's first part), then nothing until the instance is gone.
    const content = video(20 * 1024 * 1024)
    const { head, tail, type } = multipart(content)
    const req = http.request(`${instance.base}/messages/upload?conversation_id=${group.id}`, {
      method: 'POST',
      headers: { 'content-type': type, 'content-length': String(head.length + content.length + tail.length), authorization: `Bearer ${alice.access_token}` },
    })
    req.on('error', () => {})
    req.write(head)
    req.write(content.subarray(0, 7 * 1024 * 1024))
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    t.teardown(() => admin.end())
    const others = `FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`
    // Storing has begun: a transaction that has written (PostgreSQL), or the object's pending mark (S3).
    const started = async () =>
      name === 'postgres'
        ? (await admin.query(`SELECT count(*)::int AS n ${others} AND backend_xid IS NOT NULL`)).rows[0].n > 0
        : (await db.selectFrom('file_objects_pending').select('storage_name').execute()).length > 0
    await until(started)
    instance.proc.kill('SIGKILL')
    // PostgreSQL notices that the killed instance's connections are gone and ends their sessions.
    await until(async () => (await admin.query(`SELECT count(*)::int AS n ${others}`)).rows[0].n === 0)
    req.destroy()

    t.same(await storage.stored(db), [], 'no bytes stored')
    t.equal(Number((await db.selectFrom('files').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n), 0, 'no files row')
    t.equal(Number((await db.selectFrom('messages').select((eb) => eb.fn.countAll().as('n')).where('message_type', '=', 'video').executeTakeFirstOrThrow()).n), 0, 'no message')
    if (name !== 's3') return

    // An instance that died after its object was complete but before its row was written leaves an object
    // that nothing names: its mark outlives the upload's deadline, and the next sweep deletes both.
    const [mark] = await db.selectFrom('file_objects_pending').select('storage_name').execute()
    t.ok(mark, 'the dead upload is still marked')
    const s3 = storage.s3!
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: mark.storage_name, Body: content.subarray(0, 1000) }))
    t.same(await storage.stored(db), [mark.storage_name])
    // As if the deadline had passed (it is the upload timeout and a minute from the mark).
    await db.updateTable('file_objects_pending').set({ expires_at: sql`now() - interval '1 second'` }).execute()
    const sweeper = await instanceOn(t, url, storage.env)
    await sweeper.ready()
    t.same(await storage.stored(db), [], 'the sweep at start-up deleted the object')
    t.same(await db.selectFrom('file_objects_pending').selectAll().execute(), [], 'and its mark')
  })
}

/** Another instance (in this process) on an existing database. */
async function instanceOn(t: Test, url: string, env: Record<string, string>) {
  const { db } = createDatabase(url, 5)
  const app = await buildApp({ config: loadConfig({ NODE_ENV: 'test', DATABASE_URL: url, JWT_SECRET, ...env }), db, jwtSecret: JWT_SECRET, databaseUrl: url })
  t.teardown(async () => {
    await app.close()
    await db.destroy()
  })
  return app
}

t.test('s3: refused and failed uploads leave no object; bytes missing behind a row are a 404', async (t) => {
  const s3 = await startS3(t)
  const { app, db } = await buildTestApp(t, { ...s3.env, UPLOAD_QUOTA_BYTES: String(3 * 1024 * 1024) })
  const [alice, bob] = [await register(app), await register(app)]
  const group = (await client(app, alice).post('/conversations', { is_group: true, name: 'S3', participant_ids: [bob.user.id] })).json()
  const inject = (url: string, content: Buffer) => {
    const { head, tail, type } = multipart(content)
    return app.inject({ method: 'POST', url, payload: Buffer.concat([head, content, tail]), headers: { 'content-type': type, authorization: `Bearer ${alice.token}` } })
  }
  assertError(t, await inject('/users/me/avatar', video(300_000)), 415, 'UNSUPPORTED_MEDIA_TYPE')
  assertError(t, await inject(`/messages/upload?conversation_id=${group.id}`, Buffer.alloc(0)), 400, 'FILE_EMPTY')
  // Past the quota only once its bytes have come: the Content-Length is small enough, the file is not.
  assertError(t, await inject(`/messages/upload?conversation_id=${group.id}`, video(3 * 1024 * 1024 + 1)), 413, 'QUOTA_EXCEEDED')
  t.same(await s3.objects(), [], 'nothing in the bucket')
  t.same(await db.selectFrom('file_objects_pending').selectAll().execute(), [], 'and no marks')

  const avatar = (await inject('/users/me/avatar', PNG)).json()
  const small = (await inject(`/messages/upload?conversation_id=${group.id}`, video(100_000))).json()
  t.equal((await s3.objects()).length, 2)
  const part = await client(app, bob).get(small.file_url)
  t.equal(part.rawPayload.length, 100_000)
  const ranged = await app.inject({ method: 'GET', url: small.file_url, headers: { range: 'bytes=10-19', authorization: `Bearer ${bob.token}` } })
  t.same([ranged.statusCode, ranged.headers['content-range']], [206, 'bytes 10-19/100000'])
  t.same(ranged.rawPayload, part.rawPayload.subarray(10, 20))

  const replaced = await inject('/users/me/avatar', PNG)
  t.equal(replaced.statusCode, 200)
  t.equal((await client(app, bob).get(avatar.avatar_url)).statusCode, 404)
  t.equal((await s3.objects()).length, 2, 'the old avatar left the bucket')

  const [row] = await db.selectFrom('files').select('storage_name').where('size', '=', 100_000).execute()
  await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: row.storage_name }))
  assertError(t, await client(app, bob).get(small.file_url), 404, 'FILE_NOT_FOUND')
})

t.test('postgres: bytes missing behind a row are a 404; uploads at once are bounded, and a stalled one is cut off', async (t) => {
  const { app, db, url } = await buildTestApp(t, { UPLOAD_MAX_CONCURRENT: '1', UPLOAD_TIMEOUT_MS: '1000' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const alice = await register(app)
  const group = (await client(app, alice).post('/conversations', { is_group: true, name: 'PG', participant_ids: [] })).json()
  const to = `/messages/upload?conversation_id=${group.id}`

  const sent = (await uploadTo(base, alice.token, to, video(CHUNK_BYTES * 2))).body
  await db.deleteFrom('file_chunks').where('n', '=', 1).execute()
  const ranged = (range: string) => app.inject({ method: 'GET', url: sent.file_url, headers: { range, authorization: `Bearer ${alice.token}` } })
  t.equal((await ranged('bytes=0-10')).statusCode, 206, 'a range reads only the chunks it covers')
  assertError(t, await ranged(`bytes=${CHUNK_BYTES}-`), 404, 'FILE_NOT_FOUND')
  await db.deleteFrom('file_chunks').execute()
  assertError(t, await client(app, alice).get(sent.file_url), 404, 'FILE_NOT_FOUND')

  // One upload that sends its head and part of its file, then stalls: it holds the instance's one slot.
  const content = video(2 * 1024 * 1024)
  const { head, tail, type } = multipart(content)
  let req: http.ClientRequest | undefined
  // The client never finishes its body: it is closed once answered.
  t.teardown(() => req?.destroy())
  const stalled = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req = http.request(`${base}${to}`, { method: 'POST', headers: { 'content-type': type, 'content-length': String(head.length + content.length + tail.length), authorization: `Bearer ${alice.token}` } }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => resolve({ status: res.statusCode!, body }))
    })
    req.on('error', reject)
    req.write(Buffer.concat([head, content.subarray(0, 1024 * 1024)]))
  })
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  t.teardown(() => admin.end())
  await until(async () => (await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND backend_xid IS NOT NULL')).rows[0].n > 0)
  const busy = await uploadTo(base, alice.token, to, PNG)
  t.same([busy.status, busy.body.code], [503, 'UPLOADS_BUSY'], 'a second upload at once is refused, before its bytes')
  const cut = await stalled
  req!.destroy()
  t.same([cut.status, JSON.parse(cut.body).code], [408, 'UPLOAD_TIMEOUT'], 'the stalled upload is cut off at UPLOAD_TIMEOUT_MS')
  t.equal((await db.selectFrom('file_chunks').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n, 0, 'leaving nothing')
  t.equal((await uploadTo(base, alice.token, to, PNG)).status, 201, 'and giving its slot back')
})

t.test('a SIGTERM mid-upload lets the upload finish and answer, then the instance exits 0 (issue 13, point 4)', async (t) => {
  const { url, db } = await database(t)
  const instance = await startServer(t, { DATABASE_URL: url, JWT_SECRET })
  const alice = (await call(instance.base, 'POST', '/auth/register', undefined, { username: `term_${process.pid}`, password: 'Passw0rd' })).body
  const group = (await call(instance.base, 'POST', '/conversations', alice.access_token, { is_group: true, name: 'Term', participant_ids: [] })).body
  const content = video(4 * 1024 * 1024)
  const { head, tail, type } = multipart(content)
  const req = http.request(`${instance.base}/messages/upload?conversation_id=${group.id}`, {
    method: 'POST',
    headers: { 'content-type': type, 'content-length': String(head.length + content.length + tail.length), authorization: `Bearer ${alice.access_token}` },
  })
  const answered = new Promise<number>((resolve, reject) => req.on('response', (res) => (res.resume(), resolve(res.statusCode!))).on('error', reject))
  req.write(Buffer.concat([head, content.subarray(0, 1024 * 1024)]))
  // The upload is being stored (its transaction has written) when the signal comes: an in-flight write.
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  t.teardown(() => admin.end())
  await until(async () => (await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()`)).rows[0].n > 0)
  const exited = new Promise<number | null>((resolve) => instance.proc.once('exit', (code) => resolve(code)))
  instance.proc.kill('SIGTERM')
  req.end(Buffer.concat([content.subarray(1024 * 1024), tail]))
  t.equal(await answered, 201, 'the upload that was streaming is stored and answered')
  t.equal(await exited, 0, 'then the instance exits 0')
  const stored = await db.selectFrom('messages').select('file_size').where('message_type', '=', 'video').execute()
  t.same(stored.map((m) => Number(m.file_size)), [content.length], 'the whole file is kept')
})
