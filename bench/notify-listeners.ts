// `tsx bench/notify-listeners.ts`: what a backend LISTENing on another channel (graphile-worker's own listener, as
// it was) costs each commit that notifies, since PostgreSQL wakes every listening backend of the database: the
// writer's time and all PostgreSQL processes' CPU per commit, 5,000 commits a run, 6 runs alternating two extra
// listeners and none, beside one listener on the channel notified (the instance's), on an embedded PostgreSQL.
import { execSync } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { startEmbeddedPostgres } from '../src/embedded-postgres.ts'

const dir = await mkdtemp(path.join(tmpdir(), 'notify-listeners-'))
const database = await startEmbeddedPostgres(dir, { flags: ['-c', 'fsync=off'] })
const connect = async () => {
  const c = new pg.Client({ connectionString: database.adminUrl })
  await c.connect()
  return c
}
const TICK = Number(execSync('getconf CLK_TCK').toString())

/** CPU ms of every PostgreSQL process so far (user + system, from /proc). */
async function postgresCpuMs(): Promise<number> {
  let ticks = 0
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      if (!(await readFile(`/proc/${pid}/cmdline`, 'utf8')).startsWith('postgres')) continue
      const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ')
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {} // a process that ended meanwhile
  }
  return (ticks / TICK) * 1000
}

const instance = await connect()
await instance.query('LISTEN parley_events')
instance.on('notification', () => {})
const others = [await connect(), await connect()]
const writer = await connect()
const N = 5000
const run = async () => {
  const [cpu0, t0] = [await postgresCpuMs(), performance.now()]
  await writer.query(`DO $$ BEGIN FOR i IN 1..${N} LOOP PERFORM pg_notify('parley_events', repeat('x', 400)); COMMIT; END LOOP; END $$`)
  return { wall: ((performance.now() - t0) / N) * 1000, cpu: ((await postgresCpuMs()) - cpu0) / N * 1000 }
}
const runs: Record<'none' | 'two', Array<{ wall: number; cpu: number }>> = { none: [], two: [] }
for (let i = 0; i < 6; i++) {
  for (const c of others) await c.query('UNLISTEN *')
  runs.none.push(await run())
  for (const c of others) await c.query('LISTEN "jobs:insert"')
  runs.two.push(await run())
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1].toFixed(1)
for (const [k, r] of Object.entries(runs)) {
  console.log(`${k === 'none' ? 'no other listener ' : 'two other listeners'}: µs per commit ${med(r.map((x) => x.wall))} (writer), ${med(r.map((x) => x.cpu))} (PostgreSQL CPU)`)
}
for (const c of [instance, writer, ...others]) await c.end()
await database.stop()
await rm(dir, { recursive: true, force: true })
