// GET /users/me/export (issue 11, point 4): the caller's data and nobody else's, one consistent snapshot,
// streamed with back-pressure so that 100,000 messages cost no more memory than 100.
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import path from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import v8 from 'node:v8'
import vm from 'node:vm'
import { sql } from 'kysely'
import pg from 'pg'
import t, { type Test } from 'tap'
import type { ExportArchive } from '../src/schemas/export.ts'
import { assertError, buildLiveApp, buildTestApp, client, register, tempDir, uniqueName, type Session, type TestApp } from './helper.ts'

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64')

function upload(app: TestApp, who: Session, conversationId: string, filename: string) {
  const boundary = `----parley${randomBytes(8).toString('hex')}`
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: image/png\r\n\r\n`
  return app.inject({
    method: 'POST',
    url: `/messages/upload?conversation_id=${conversationId}`,
    payload: Buffer.concat([Buffer.from(head), PNG, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, authorization: `Bearer ${who.token}` },
  })
}

const person = (app: TestApp, prefix: string) => {
  const username = uniqueName(prefix)
  return register(app, username, { email: `${username}@example.com` })
}

t.test("the archive holds the caller's data, and nothing private of anyone else's", async (t) => {
  const { app, db } = await buildTestApp(t)
  const [alice, bob, carol, dave] = await Promise.all(['alice', 'bob', 'carol', 'dave'].map((p) => person(app, p)))
  const as = (who: Session) => client(app, who)
  const send = async (who: Session, conversation_id: string, content: string) => (await as(who).post('/messages', { conversation_id, content })).json().id as string

  const D = (await as(alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id as string
  const G = (await as(alice).post('/conversations', { is_group: true, name: 'Team', participant_ids: [bob.user.id, carol.user.id] })).json().id as string
  const H = (await as(bob).post('/conversations', { is_group: true, name: 'Without alice', participant_ids: [carol.user.id, dave.user.id] })).json().id as string
  const L = (await as(alice).post('/conversations', { is_group: true, name: 'Left', participant_ids: [bob.user.id] })).json().id as string

  await send(alice, D, 'first words')
  const edited = await send(alice, D, 'before the edit')
  await as(alice).patch(`/messages/${edited}`, { content: 'after the edit' })
  const deleted = await send(alice, D, 'my password is hunter2')
  await as(alice).delete(`/messages/${deleted}`)
  await send(bob, D, 'secret of bob in D')
  // Clearing hides D's history from alice's pages; her own messages there stay in her archive (src/services/export.ts).
  t.equal((await as(alice).delete(`/conversations/${D}/messages`)).statusCode, 204)
  await send(alice, D, 'after the clear')
  await send(alice, G, 'hello team')
  const carols = await send(carol, G, 'secret of carol in G')
  await as(alice).post(`/messages/${carols}/reactions`, { emoji: '🎉' })
  await as(bob).post(`/messages/${carols}/reactions`, { emoji: '👍' })
  t.equal((await upload(app, alice, G, 'holiday.png')).statusCode, 201)
  t.equal((await upload(app, bob, G, 'bobs-photo.png')).statusCode, 201)
  await send(bob, H, 'secret of bob in H')
  const beforeLeaving = await send(alice, L, 'written before leaving')
  await as(alice).post(`/messages/${beforeLeaving}/reactions`, { emoji: '👋' })
  t.equal((await as(alice).post(`/conversations/${L}/leave`)).statusCode, 204)

  const res = await as(alice).get('/users/me/export')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  t.equal(res.headers['content-disposition'], `attachment; filename="parley-export-${alice.user.username}-${new Date().toISOString().slice(0, 10)}.json"`)
  const archive = res.json() as ExportArchive

  t.same(archive.profile, (await as(alice).get('/users/me')).json(), 'the profile is GET /users/me, email included')
  t.same(archive.conversations.map((c) => c.id).sort(), [D, G].sort(), 'the conversations alice is in now, not H, not the one she left')
  const team = archive.conversations.find((c) => c.id === G)!
  t.match(team, { is_group: true, name: 'Team', role: 'admin', created_by: alice.user.id })
  t.same(
    team.participants.map((p) => p.id).sort(),
    [alice, bob, carol].map((s) => s.user.id).sort(),
    'its members',
  )
  t.same(Object.keys(team.participants[0]).sort(), ['display_name', 'id', 'username'], 'members by their public names only')

  const expected = await db
    .selectFrom('messages')
    .select('id')
    .where('sender_id', '=', alice.user.id)
    .where('conversation_id', 'in', [D, G])
    .execute()
  t.same(archive.messages.map((m) => m.id).sort(), expected.map((r) => r.id).sort(), "exactly alice's messages in D and G, those before her cleared point included")
  t.ok(archive.messages.every((m) => m.sender_id === alice.user.id), 'only messages alice sent')
  for (const m of archive.messages) {
    // Bob is in D and G and cleared nothing: his view is the message as the API shows it now.
    const now = (await as(bob).get(`/messages/${m.id}`)).json()
    t.same(m, now, `message ${m.seq} in ${m.conversation_id === D ? 'D' : 'G'}: as the API shows it`)
  }
  t.same(archive.reactions.map(({ message_id, conversation_id, emoji }) => ({ message_id, conversation_id, emoji })),
    [{ message_id: carols, conversation_id: G, emoji: '🎉' }], "alice's reactions, in conversations she is in: not bob's, not the one she left")
  t.match(archive.messages.find((m) => m.id === edited), { content: 'after the edit', is_edited: true }, 'an edited message in its current wording')
  t.match(archive.messages.find((m) => m.id === deleted), { is_deleted: true, content: 'This message was deleted' }, 'a deleted one in its deleted form')
  t.same(archive.files.map((f) => f.name), ['holiday.png'], "the metadata of alice's upload, not bob's")
  t.match(archive.files[0], { mime_type: 'image/png', size: PNG.length, purpose: 'message' })
  t.same(Object.keys(archive.files[0]).sort(), ['created_at', 'id', 'mime_type', 'name', 'purpose', 'size'])

  for (const secret of ['hunter2', 'before the edit', 'secret of bob in D', 'secret of carol in G', 'secret of bob in H', 'written before leaving', 'bobs-photo', H, L]) {
    t.notOk(res.body.includes(secret), `the archive does not contain "${secret}"`)
  }
  for (const other of [bob, carol, dave]) t.notOk(res.body.includes(other.user.email!), `nor ${other.user.username}'s email`)

  const empty = (await as(dave).get('/users/me/export')).json() as ExportArchive
  t.match(empty, { profile: { id: dave.user.id }, messages: [], reactions: [], files: [] }, 'an account with no messages gets an archive too')
  t.same(empty.conversations.map((c) => c.id), [H])
})

t.test('its own rate limit: EXPORT_RATE_LIMIT_MAX per user per window, then 429 with Retry-After', async (t) => {
  const { app } = await buildTestApp(t)
  const [alice, bob] = await Promise.all([register(app), register(app)])
  assertError(t, await client(app).get('/users/me/export'), 401)
  t.equal((await client(app, alice).get('/users/me/export')).statusCode, 200)
  t.equal((await client(app, alice).get('/users/me/export')).statusCode, 200)
  const third = await client(app, alice).get('/users/me/export')
  assertError(t, third, 429, 'RATE_LIMITED')
  t.ok(Number(third.headers['retry-after']) > 60, `Retry-After ${third.headers['retry-after']} s: the window is an hour`)
  t.equal((await client(app, alice).get('/users/me')).statusCode, 200, 'the rest of the API is not limited by it')
  t.equal((await client(app, bob).get('/users/me/export')).statusCode, 200, 'another user has a budget of their own')
})

/** Resolves once `check` holds, trying again every few milliseconds (a condition, not a guess at a duration). */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 10))
}

function get(base: string, who: Session): Promise<{ req: http.ClientRequest; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}/users/me/export`, { headers: { authorization: `Bearer ${who.token}` } }, (res) => resolve({ req, res }))
    req.on('error', reject)
  })
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`

t.test('100,000 messages: streamed as the client reads, one connection held, memory flat', async (t) => {
  const { app, db, url, base } = await buildLiveApp(t, { EXPORT_MAX_CONCURRENT: '1' })
  const [alice, bob] = await Promise.all([register(app), register(app)])
  const D = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id as string
  const COUNT = 100_000
  let started = Date.now()
  // One statement, without the row triggers: each would take the next seq by updating the one conversation
  // row, which one transaction makes quadratic (4,000 rows took 3 s). The seqs are given as the trigger would.
  await db.transaction().execute(async (trx) => {
    await sql`ALTER TABLE messages DISABLE TRIGGER USER`.execute(trx)
    await sql`ALTER TABLE messages ENABLE TRIGGER messages_render`.execute(trx) // the copy every read serves
    await sql`INSERT INTO messages (conversation_id, sender_id, message_type, content, seq)
      SELECT ${D}, ${alice.user.id}, 'text', 'message ' || i || ' ' || repeat('x', 300), i FROM generate_series(1, ${COUNT}::int) i`.execute(trx)
    await sql`UPDATE conversations SET last_seq = ${COUNT}, updated_at = now() WHERE id = ${D}`.execute(trx)
    await sql`ALTER TABLE messages ENABLE TRIGGER USER`.execute(trx)
  })
  t.comment(`inserted ${COUNT} messages in ${Date.now() - started} ms`)

  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  t.teardown(() => admin.end())
  const openTransactions = async () =>
    // The app's own connections: the job workers' polls (issue 17) are transactions of their own.
    Number((await admin.query(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL AND application_name <> 'parley-jobs'`)).rows[0].count)

  // The server's side of each export, to see when its writes are held back by the socket.
  const served: ServerResponse[] = []
  app.server.on('request', (req: IncomingMessage, res: ServerResponse) => req.url === '/users/me/export' && served.push(res))

  await t.test('the first bytes leave while the query is still reading; a client that stops reading stops it', async (t) => {
    const { req, res } = await get(base, alice)
    t.equal(res.statusCode, 200)
    t.equal(res.headers['transfer-encoding'], 'chunked', 'chunked')
    t.notOk('content-length' in res.headers, 'no Content-Length: the length is not known when the first byte goes')
    await new Promise((resolve) => res.once('data', resolve))
    res.pause()
    // 75 MB of messages against a few MB of socket buffers: a server that read everything first is done by now.
    if (!t.equal(await openTransactions(), 1, 'the first bytes arrive while its snapshot is still open: rows are read as they are sent')) {
      return void req.destroy()
    }
    await until(() => served[0]?.writableNeedDrain === true)
    t.pass('the server waits for the paused client to drain its socket')
    t.equal(await openTransactions(), 1, 'the snapshot stays open meanwhile: the rest is not read ahead')
    t.ok(served[0].writableLength < 1024 * 1024, `it holds ${served[0].writableLength} bytes in the response, not the archive`)

    const busy = await client(app, bob).get('/users/me/export')
    assertError(t, busy, 503, 'EXPORT_BUSY')
    t.equal(busy.headers['retry-after'], '60')

    req.destroy()
    await until(async () => (await openTransactions()) === 0)
    t.pass('a client that goes away ends the transaction')
    t.equal((await client(app, bob).get('/users/me/export')).statusCode, 200, 'and frees the slot')
  })

  await t.test('the whole archive, read to the end: memory and time', async (t) => {
    const file = path.join(await tempDir(t), 'export.json')
    // Heap after a full collection is what is really held; without one, the peak also counts garbage
    // that V8 has not collected yet (reported, not asserted).
    v8.setFlagsFromString('--expose-gc')
    const gc = vm.runInNewContext('gc') as () => void
    gc()
    const base0 = process.memoryUsage()
    const peak = { heapUsed: base0.heapUsed, rss: base0.rss, held: base0.heapUsed }
    const sampler = setInterval(() => {
      const now = process.memoryUsage()
      peak.heapUsed = Math.max(peak.heapUsed, now.heapUsed)
      peak.rss = Math.max(peak.rss, now.rss)
    }, 20)
    // Every 8 MB received, what the process holds after a collection.
    let received = 0
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        const before = Math.floor(received / 2 ** 23)
        received += chunk.length
        if (Math.floor(received / 2 ** 23) > before) {
          gc()
          peak.held = Math.max(peak.held, process.memoryUsage().heapUsed)
        }
        done(null, chunk)
      },
    })
    started = Date.now()
    const { res } = await get(base, alice)
    t.equal(res.statusCode, 200)
    // To disk, so that what this process holds is the server's, not the client's copy of the body.
    await pipeline(res, meter, createWriteStream(file))
    const ms = Date.now() - started
    clearInterval(sampler)
    t.comment(
      `exported ${COUNT} messages, ${mb(received)}, in ${ms} ms (with a full GC every 8 MB); ` +
        `heap after GC ${mb(base0.heapUsed)} → at most ${mb(peak.held)} (+${mb(peak.held - base0.heapUsed)}); ` +
        `heap without GC peak ${mb(peak.heapUsed)} (+${mb(peak.heapUsed - base0.heapUsed)}); ` +
        `RSS ${mb(base0.rss)} → peak ${mb(peak.rss)} (+${mb(peak.rss - base0.rss)})`,
    )
    // A server that built the archive before sending it would hold at least the archive itself, to the end.
    t.ok(peak.held - base0.heapUsed < received / 4, `it held ${mb(peak.held - base0.heapUsed)} more, for a ${mb(received)} archive`)
    const text = await readFile(file, 'utf8')
    const archive = JSON.parse(text) as ExportArchive
    t.equal(archive.messages.length, COUNT, 'every message')
    t.ok(archive.messages.every((m, i) => m.sender_id === alice.user.id && m.seq === i + 1 && m.content?.startsWith(`message ${i + 1} `)), 'all of them alice\'s, in order')
    t.equal(new Set(archive.messages.map((m) => m.id)).size, COUNT, 'each once')
    t.equal(await openTransactions(), 0, 'the transaction ended with the body')
  })
})
