import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import v8 from 'node:v8'
import vm from 'node:vm'
import t from 'tap'
import { buildLiveApp, client, register } from './helper.ts'
import { startS3 } from './s3.ts'

// A large file goes in and out of either storage in bounded memory: neither the upload nor the download
// holds the file. Heap after a full collection is what is really held (as in test/export.test.ts), with the
// memory of Buffers, which lives outside V8's heap and is where a file's bytes would be held.

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

/** Calls `sample` after a full collection every 2 MB that pass through, and keeps the highest heap it saw. */
const heldNow = () => {
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

/** What this process holds after a full collection; a Buffer's memory is freed once the collector's sweeper has had a turn. */
async function collected() {
  gc()
  await new Promise(setImmediate)
  gc()
  return heldNow()
}

/** Samples what is held every 2 MB that pass through (`passed` resolves once it has), and keeps the highest. */
async function heapWatch() {
  const base = await collected()
  let peak = base
  let passed = 0
  return {
    passed: async (bytes: number) => {
      const before = Math.floor(passed / 2 ** 21)
      passed += bytes
      if (Math.floor(passed / 2 ** 21) > before) peak = Math.max(peak, await collected())
    },
    held: () => peak - base,
  }
}

/** A video of SIZE bytes made as it is sent (the client holds none of it), and the hash of what was sent. */
function generated(SIZE: number, watch: Awaited<ReturnType<typeof heapWatch>>) {
  const block = randomBytes(64 * 1024)
  const hash = createHash('sha256')
  let sent = 0
  const stream = new Readable({
    async read() {
      if (sent >= SIZE) return void this.push(null)
      const piece = Buffer.from(block)
      if (sent === 0) Buffer.from('000000186674797069736f6d0000020069736f6d69736f32', 'hex').copy(piece)
      piece.writeUInt32BE(sent)
      sent += piece.length
      hash.update(piece)
      await watch.passed(piece.length)
      this.push(piece)
    },
  })
  return { stream, digest: () => hash.digest('hex') }
}

/**
 * Each storage's file, and the most it may hold of it. PostgreSQL holds a chunk or two (256 KiB each). S3 holds
 * 5 MiB parts (lib-storage fills one while one goes out; s3rver runs in this process too), so its file is
 * larger, for a bound that a storage holding the whole file would fail.
 */
const storages: Record<string, { env: (t: Parameters<typeof startS3>[0]) => Promise<Record<string, string>>; size: number; most: number }> = {
  postgres: { env: async () => ({}), size: 20 * 1024 * 1024, most: 5 * 1024 * 1024 },
  s3: { env: async (t) => (await startS3(t)).env, size: 60 * 1024 * 1024, most: 30 * 1024 * 1024 },
}

for (const [name, { env, size: SIZE, most }] of Object.entries(storages)) {
  t.test(`${name}: a ${SIZE / 2 ** 20} MiB upload and its download do not hold the file`, async (t) => {
    const { app, base } = await buildLiveApp(t, { ...(await env(t)), MAX_UPLOAD_BYTES: String(SIZE + 1024) })
    const alice = await register(app)
    const group = (await client(app, alice).post('/conversations', { is_group: true, name: 'Big', participant_ids: [] })).json()
    const boundary = `----parley${randomBytes(8).toString('hex')}`
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n`)
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`)

    const up = await heapWatch()
    const file = generated(SIZE, up)
    const started = Date.now()
    const message = await new Promise<{ file_url: string; file_size: number }>((resolve, reject) => {
      const req = http.request(`${base}/messages/upload?conversation_id=${group.id}`, {
        method: 'POST',
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(head.length + SIZE + tail.length), authorization: `Bearer ${alice.token}` },
      }, (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => (res.statusCode === 201 ? resolve(JSON.parse(body)) : reject(new Error(`${res.statusCode} ${body}`))))
      })
      req.on('error', reject)
      req.write(head)
      file.stream.on('end', () => req.end(tail))
      file.stream.pipe(req, { end: false })
    })
    const upMs = Date.now() - started
    t.equal(message.file_size, SIZE)

    const down = await heapWatch()
    const hash = createHash('sha256')
    const fetched = Date.now()
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`${base}${message.file_url}`, { headers: { authorization: `Bearer ${alice.token}` } }, resolve).on('error', reject)
    })
    t.equal(res.statusCode, 200)
    await pipeline(res, new Writable({
      write(chunk: Buffer, _encoding, done) {
        hash.update(chunk)
        down.passed(chunk.length).then(() => done(), done)
      },
    }))
    const downMs = Date.now() - fetched
    t.equal(hash.digest('hex'), file.digest(), 'the same bytes back')
    t.comment(`${name}: upload held +${mb(up.held())} (${upMs} ms), download held +${mb(down.held())} (${downMs} ms), for a ${mb(SIZE)} file; heap and Buffers after a full GC every 2 MB`)
    // A storage that buffered the file whole would hold all of it at some point.
    t.ok(up.held() < most, `the upload held ${mb(up.held())} more, for ${mb(SIZE)}`)
    t.ok(down.held() < most, `the download held ${mb(down.held())} more, for ${mb(SIZE)}`)
  })
}
