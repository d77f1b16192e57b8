// `npm run bench:breakdown`: where a send's time goes, in the database and in the instance. The same setup as
// `npm run bench` (2 Parley nodes at the default LOG_LEVEL, 2,000 sockets in groups of 10, two load workers,
// every send with a client_id), on an embedded PostgreSQL started with pg_stat_statements (this script only:
// startEmbeddedPostgres's `flags`). It prints, and writes to bench/results/breakdown-<date>T<hhmm>.json:
//
//  1. per send path (POST /messages, WebSocket `send` frames), BREAKDOWN_SENDS messages at BREAKDOWN_RATE_LOW
//     msg/s: every statement the database ran, the functions' times, WAL, rows and index entries written, and
//     CPU per process, all per message (breakdown/database-side.ts);
//  2. EXPLAIN (ANALYZE, BUFFERS, WAL) of the writer's INSERT as the service sends it, with 1 row and with a
//     batch of 10 (breakdown/explain-insert.ts);
//  3. `node --cpu-prof` of both nodes at BREAKDOWN_RATE msg/s (the capacity step), per send path: the top
//     self-time functions and modules, in CPU ms per message (breakdown/profile-phase.ts).
//
// Env: BREAKDOWN_RATE (600), BREAKDOWN_RATE_LOW (200), BREAKDOWN_SENDS (4000), BREAKDOWN_PROFILE_S (12).
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { APP_ROLE, startEmbeddedPostgres } from '../src/embedded-postgres.ts'
import { databaseSide } from './breakdown/database-side.ts'
import { explainInsert } from './breakdown/explain-insert.ts'
import { GROUP_SIZE, GROUPS, RATE, RATE_LOW, SENDS } from './breakdown/load.ts'
import { profilePhase } from './breakdown/profile-phase.ts'
import { report, say } from './breakdown/report.ts'
import { outputDirs, root, stamp } from './lib.ts'
import { type Plan, startParley } from './systems.ts'
import { closeWorkers, connectWorkers } from './workers.ts'

const began = performance.now()
const work = await mkdtemp(path.join(tmpdir(), 'parley-breakdown-'))
const database = await startEmbeddedPostgres(work, {
  flags: [
    '-c', 'shared_preload_libraries=pg_stat_statements',
    '-c', 'pg_stat_statements.track=all',
    '-c', 'pg_stat_statements.track_planning=on',
    '-c', 'pg_stat_statements.max=10000',
    '-c', 'track_functions=all',
    '-c', 'track_io_timing=on',
  ],
})
const postmasterPid = Number((await readFile(path.join(work, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0])
try {
  const setup = new pg.Client({ connectionString: database.adminUrl })
  await setup.connect()
  await setup.query(`CREATE DATABASE bench_parley OWNER ${APP_ROLE}`)
  await setup.end()
  const appUrl = Object.assign(new URL(database.url), { pathname: '/bench_parley' }).toString()
  // The superuser, on the bench's database: creating the extensions, resetting and reading every statistic.
  const admin = new pg.Client({ connectionString: Object.assign(new URL(database.adminUrl), { pathname: '/bench_parley' }).toString() })
  await admin.connect()
  await admin.query('CREATE EXTENSION pg_stat_statements')
  await admin.query('CREATE EXTENSION pg_walinspect')
  const date = new Date().toISOString().slice(0, 10)
  say(`## Where a send's time goes (${date}; ${process.version}; Parley at LOG_LEVEL ${process.env.BENCH_PARLEY_LOG_LEVEL ?? 'info'}; 2 nodes, ${GROUPS * GROUP_SIZE} sockets in groups of ${GROUP_SIZE}; every send with a client_id)`)

  const result: Record<string, unknown> = { date: new Date().toISOString(), node: process.version, rate: RATE, rate_low: RATE_LOW, sends: SENDS }
  const sys = await startParley(appUrl, 2, { logDir: path.join(work, 'logs') })
  let plan: Plan
  try {
    plan = await sys.seed(GROUPS, GROUP_SIZE)
    const workers = await connectWorkers(plan)
    try {
      const processes = { postmaster: postmasterPid, nodes: sys.procs.map((p) => p.pid!) }
      result.post = await databaseSide(admin, workers, 'post', processes)
      result.ws = await databaseSide(admin, workers, 'ws', processes)
    } finally {
      await closeWorkers(workers)
    }
  } finally {
    await sys.stop()
  }
  result.explain = await explainInsert(appUrl, plan)
  await admin.end()
  result.profile_post = await profilePhase(appUrl, 'post', work)
  result.profile_ws = await profilePhase(appUrl, 'ws', work)
  result.seconds = Math.round((performance.now() - began) / 1000)
  const { results } = outputDirs()
  await mkdir(results, { recursive: true })
  // A run at another log level than the default is kept beside, not over, the default one.
  const level = process.env.BENCH_PARLEY_LOG_LEVEL
  // One file per run (its start, to the minute): a run never overwrites another's figures.
  const name = `breakdown-${stamp()}${level && level !== 'info' ? `-${level}` : ''}`
  say()
  say(`Breakdown took ${result.seconds} s; wrote ${path.relative(root, path.join(results, name))}.json and .md`)
  await writeFile(path.join(results, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`)
  await writeFile(path.join(results, `${name}.md`), report())
} finally {
  await database.stop()
  await rm(work, { recursive: true, force: true })
}
