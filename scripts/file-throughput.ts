// Upload and download throughput of one file through a real instance, for docs/DEPLOY.md:
//   npx tsx scripts/file-throughput.ts [--root DIR] [--mb 20] [--runs 5] [-- ENV=VALUE ...]
// --root runs another checkout's server (an older release stores files on disk: --root ../main). The
// instance and its embedded PostgreSQL run here, on this machine; the client streams from memory.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { startEmbeddedPostgres } from '../src/embedded-postgres.ts'

const { values, positionals } = parseArgs({ options: { root: { type: 'string' }, mb: { type: 'string', default: '20' }, runs: { type: 'string', default: '5' } }, allowPositionals: true })
const root = path.resolve(values.root ?? path.join(import.meta.dirname, '..'))
const size = Number(values.mb) * 1024 * 1024
const dir = await mkdtemp(path.join(tmpdir(), 'parley-throughput-'))
const db = await startEmbeddedPostgres(dir)
const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
  cwd: root,
  env: { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'info', DATABASE_URL: db.url, JWT_SECRET: 'x'.repeat(40), UPLOAD_DIR: path.join(dir, 'uploads'), UPLOAD_RATE_MAX: '1000', ...Object.fromEntries(positionals.map((p) => p.split('='))) },
  stdio: ['ignore', 'pipe', 'inherit'],
})
try {
  const base = await new Promise<string>((resolve) => createInterface({ input: proc.stdout! }).on('line', (line) => {
    const m = /API docs at (http:\/\/\S+)\/docs/.exec(line)
    if (m) resolve(m[1])
  }))
  const json = async (url: string, token: string | undefined, body: unknown) =>
    (await fetch(`${base}${url}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) }, body: JSON.stringify(body) })).json()
  const { access_token: token } = await json('/auth/register', undefined, { username: 'throughput', password: 'Passw0rd' })
  const group = await json('/conversations', token, { is_group: true, name: 'Throughput', participant_ids: [] })
  const content = Buffer.concat([Buffer.from('000000186674797069736f6d0000020069736f6d69736f32', 'hex'), randomBytes(size - 24)])
  const ups: number[] = []
  const downs: number[] = []
  for (let i = 0; i < Number(values.runs); i++) {
    const form = new FormData()
    form.append('file', new Blob([new Uint8Array(content)]), 'clip.mp4')
    let started = performance.now()
    const res = await fetch(`${base}/messages/upload?conversation_id=${group.id}`, { method: 'POST', body: form, headers: { authorization: `Bearer ${token}` } })
    const message = await res.json()
    if (res.status !== 201) throw new Error(`upload: ${res.status} ${JSON.stringify(message)}`)
    ups.push(performance.now() - started)
    started = performance.now()
    const got = await fetch(`${base}${message.file_url}`, { headers: { authorization: `Bearer ${token}` } })
    let bytes = 0
    for await (const chunk of got.body!) bytes += chunk.length
    if (bytes !== size) throw new Error(`download: ${bytes} bytes`)
    downs.push(performance.now() - started)
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const rate = (ms: number) => `${((size / 1024 / 1024) / (ms / 1000)).toFixed(0)} MiB/s (${ms.toFixed(0)} ms)`
  console.log(`${root}: ${values.mb} MiB, median of ${values.runs}: upload ${rate(median(ups))}, download ${rate(median(downs))}`)
  const c = new pg.Client({ connectionString: db.url })
  await c.connect()
  const { rows } = await c.query("SELECT pg_size_pretty(pg_total_relation_size(c.oid)) AS size FROM pg_class c WHERE relname = 'file_chunks'")
  await c.end()
  if (rows[0]) console.log(`file_chunks on disk: ${rows[0].size} for ${values.runs} files`)
} finally {
  proc.kill('SIGTERM')
  await new Promise((resolve) => proc.once('exit', resolve))
  await db.stop()
  await rm(dir, { recursive: true, force: true })
}
