// `npm run bench:breakdown`: where a send's time goes, in the database and in the instance. The same setup as
// `npm run bench` (2 Parley nodes at the default LOG_LEVEL, 2,000 sockets in groups of 10, two load workers,
// every send with a client_id), on an embedded PostgreSQL started with pg_stat_statements (this script only:
// startEmbeddedPostgres's `flags`). It prints, and writes to bench/results/breakdown-<date>T<hhmm>.json:
//
//  1. per send path (POST /messages, WebSocket `send` frames), BREAKDOWN_SENDS messages at BREAKDOWN_RATE_LOW
//     msg/s: every statement the database ran (pg_stat_statements, track=all, so the statements inside the
//     triggers too): calls, mean and total execution time, and both per message; the trigger functions' own
//     times (pg_stat_user_functions); WAL written per message (pg_current_wal_lsn before/after, pg_stat_wal,
//     and by record type with pg_walinspect); rows and index entries written per message, per table and index;
//  2. EXPLAIN (ANALYZE, BUFFERS, WAL) of the writer's INSERT, as the service sends it (the statement's text is
//     taken from pg_stat_statements), with 1 row and with a batch of 10, each run 30 times in a rolled-back
//     transaction: the plan, and the median execution and trigger times;
//  3. `node --cpu-prof` of both nodes at BREAKDOWN_RATE msg/s (the capacity step), per send path: the top
//     self-time functions and modules over the loaded window, in CPU ms per message.
//
// Env: BREAKDOWN_RATE (600), BREAKDOWN_RATE_LOW (200), BREAKDOWN_SENDS (4000), BREAKDOWN_PROFILE_S (12).
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { APP_ROLE, startEmbeddedPostgres } from '../src/embedded-postgres.ts'
import { INSERT_MESSAGE, INSERT_MESSAGES, parameters } from '../src/services/message-writer.ts'
import { cpuSeconds, monoMs, outputDirs, root, round, stamp } from './lib.ts'
import { type CpuProfile, selfTimes } from './cpu-profile.ts'
import { type Plan, startParley } from './systems.ts'
import type { RunResult, Via } from './worker.ts'
import { closeWorkers, connectWorkers, type Worker } from './workers.ts'

const RATE = Number(process.env.BREAKDOWN_RATE ?? 600)
const RATE_LOW = Number(process.env.BREAKDOWN_RATE_LOW ?? 200)
const SENDS = Number(process.env.BREAKDOWN_SENDS ?? 4000)
const PROFILE_S = Number(process.env.BREAKDOWN_PROFILE_S ?? 12)
const GROUPS = 200
const GROUP_SIZE = 10
const log = (s: string) => process.stderr.write(`${s}\n`)
const out: string[] = []
/** Printed and kept for the end (the report is printed again, whole, once everything is measured). */
const say = (s = '') => {
  out.push(s)
  console.log(s)
}

async function runLoad(workers: Worker[], rate: number, durationMs: number, via: Via) {
  const results = await Promise.all(workers.map((w) => w.ask<RunResult>({ cmd: 'run', rate: rate / workers.length, durationMs, warmupMs: 0, drainMs: 5000, via })))
  const sum = (k: 'sent' | 'failed' | 'lost' | 'duplicated' | 'unanswered') => results.reduce((s, r) => s + r[k], 0)
  return { sent: sum('sent'), failed: sum('failed'), lost: sum('lost'), duplicated: sum('duplicated'), unanswered: sum('unanswered') }
}

const table = (rows: Record<string, unknown>[]) => {
  if (rows.length === 0) return say('(none)')
  const keys = Object.keys(rows[0])
  const cell = (v: unknown) => (v === null || v === undefined ? '' : String(v)).replace(/\|/g, '\\|')
  say(`| ${keys.join(' | ')} |`)
  say(`|${keys.map(() => '---').join('|')}|`)
  for (const r of rows) say(`| ${keys.map((k) => cell(r[k])).join(' | ')} |`)
}

const oneLine = (q: string, max = 110) => {
  const s = q.replace(/\s+/g, ' ').trim()
  return s.length > max ? `${s.slice(0, max - 1)}…` : s
}

// ---- 1. the database's side of N sends --------------------------------------------------------------------

interface DbSnapshot {
  lsn: string
  /** CPU seconds so far of each PostgreSQL process, by what it is (pool backends, LISTEN backends, WAL writer…), and of the nodes. */
  cpu: Map<number, { kind: string; seconds: number }>
  tables: Map<string, { ins: number; upd: number; hot: number; del: number }>
  indexes: Map<string, { table: string; bytes: number }>
}

async function snapshot(db: pg.Client, nodePids: number[]): Promise<DbSnapshot> {
  const lsn = (await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn
  const procs = await db.query<{ pid: number; kind: string }>(
    `SELECT pid, CASE WHEN backend_type <> 'client backend' THEN backend_type
                      WHEN usename <> $1 THEN 'client backend (this script)'
                      WHEN query ILIKE 'LISTEN%' OR query = 'SELECT 1' THEN 'client backend: a node''s LISTEN connection'
                      ELSE 'client backend: a node''s pool' END AS kind
     FROM pg_stat_activity`,
    [APP_ROLE],
  )
  const cpu = new Map(procs.rows.map((r) => [r.pid, { kind: r.kind, seconds: cpuSeconds(r.pid) }]))
  cpu.set(postmasterPid, { kind: 'postmaster', seconds: cpuSeconds(postmasterPid) })
  for (const pid of nodePids) cpu.set(pid, { kind: 'node', seconds: cpuSeconds(pid) })
  // pg_stat_* reads a snapshot cached for the transaction: start fresh each time.
  await db.query('SELECT pg_stat_clear_snapshot()')
  const t = await db.query<{ relname: string; ins: string; upd: string; hot: string; del: string }>(
    'SELECT relname, n_tup_ins AS ins, n_tup_upd AS upd, n_tup_hot_upd AS hot, n_tup_del AS del FROM pg_stat_user_tables',
  )
  const i = await db.query<{ indexrelname: string; relname: string; bytes: string }>(
    'SELECT indexrelname, relname, pg_relation_size(indexrelid) AS bytes FROM pg_stat_user_indexes',
  )
  return {
    lsn,
    cpu,
    tables: new Map(t.rows.map((r) => [r.relname, { ins: Number(r.ins), upd: Number(r.upd), hot: Number(r.hot), del: Number(r.del) }])),
    indexes: new Map(i.rows.map((r) => [r.indexrelname, { table: r.relname, bytes: Number(r.bytes) }])),
  }
}

// Pending statistics reach pg_stat_* when a backend flushes them: at most once a second while busy, and
// 10 s after it goes idle (PGSTAT_IDLE_INTERVAL). Counters are read only after that long a pause.
const STATS_FLUSH_MS = 11_000

async function databaseSide(admin: pg.Client, workers: Worker[], via: Via, nodePids: number[]) {
  const label = via === 'ws' ? 'WebSocket `send` frames' : 'POST /messages'
  log(`breakdown: ${label}, ${SENDS} sends at ${RATE_LOW}/s`)
  await runLoad(workers, RATE_LOW, 2000, via) // warm: pools full, catalogs cached
  await new Promise((r) => setTimeout(r, STATS_FLUSH_MS))
  await admin.query('SELECT pg_stat_statements_reset()')
  await admin.query('SELECT pg_stat_reset()')
  await admin.query(`SELECT pg_stat_reset_shared('wal')`)
  const before = await snapshot(admin, nodePids)
  const load = await runLoad(workers, RATE_LOW, (SENDS / RATE_LOW) * 1000, via)
  const cpuAfter = (await snapshot(admin, nodePids)).cpu
  await new Promise((r) => setTimeout(r, STATS_FLUSH_MS))
  const after = await snapshot(admin, nodePids)
  const n = load.sent
  say()
  say(`### ${label}: ${n} messages at ${RATE_LOW} msg/s (failed ${load.failed}, lost ${load.lost}, duplicated ${load.duplicated})`)
  say()
  const statements = await admin.query<{ query: string; calls: string; rows: string; total: number; mean: number; plan_total: number; blks_hit: string; blks_written: string; wal_bytes: string; toplevel: boolean }>(
    `SELECT query, calls, rows, total_exec_time AS total, mean_exec_time AS mean, total_plan_time AS plan_total,
            shared_blks_hit + shared_blks_read AS blks_hit, shared_blks_dirtied AS blks_written, wal_bytes, toplevel
     FROM pg_stat_statements
     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND userid = $1::regrole
     ORDER BY total_exec_time DESC`,
    [APP_ROLE],
  )
  const all = statements.rows.reduce((s, r) => s + (r.toplevel ? r.total : 0), 0)
  say(`pg_stat_statements, every statement of the ${APP_ROLE} role over the run (nested: run inside a trigger or function; times are execution wall time, waits included, in ms):`)
  say()
  table(
    statements.rows
      .filter((r) => Number(r.calls) >= n / 50)
      .map((r) => ({
        statement: `\`${oneLine(r.query)}\``,
        level: r.toplevel ? 'top' : 'nested',
        calls: Number(r.calls),
        'calls/msg': round(Number(r.calls) / n, 2),
        'rows/call': round(Number(r.rows) / Number(r.calls), 1),
        'mean ms': round(r.mean, 3),
        'total ms': round(r.total, 0),
        'ms/msg': round(r.total / n, 3),
        'plan ms/msg': round(r.plan_total / n, 3),
        'WAL B/msg': round(Number(r.wal_bytes) / n, 0),
      })),
  )
  say()
  const planning = statements.rows.reduce((s, r) => s + r.plan_total, 0)
  say(`Top-level statements' execution time, all together: ${round(all / n, 3)} ms per message, and their planning ${round(planning / n, 3)} ms (every statement is planned anew: the pg driver sends unnamed statements). (Rarer statements, fewer than 1 call per 50 messages, left out of the table, not of the sums.)`)
  const cpuByKind = new Map<string, number>()
  for (const [pid, a] of cpuAfter) {
    // A backend that was not there before (a pool connection opened during the run) counts from its start.
    const b = before.cpu.get(pid)?.seconds ?? 0
    cpuByKind.set(a.kind, (cpuByKind.get(a.kind) ?? 0) + a.seconds - b)
  }
  const pgCpu = [...cpuByKind].filter(([k]) => k !== 'node' && !k.includes('this script')).reduce((s, [, v]) => s + v, 0)
  say()
  say(`CPU over the run (/proc, user + system), per message: PostgreSQL ${round((pgCpu * 1000) / n, 3)} ms, the two nodes ${round(((cpuByKind.get('node') ?? 0) * 1000) / n, 3)} ms. PostgreSQL's by process (of it, statements' execution and planning above are ${round((all + planning) / n, 3)} ms; the rest is the protocol, parsing, commits and their WAL, the notifications' delivery, and the system calls of each):`)
  say()
  table([...cpuByKind].filter(([k]) => k !== 'node').sort((a, b) => b[1] - a[1]).map(([kind, sec]) => ({ process: kind, 'CPU ms/msg': round((sec * 1000) / n, 3) })))
  const functions = await admin.query<{ funcname: string; calls: string; total: number; self: number }>(
    'SELECT funcname, calls, total_time AS total, self_time AS self FROM pg_stat_user_functions ORDER BY total_time DESC',
  )
  say()
  say('Functions (track_functions=all; SQL functions inlined into their caller are not counted on their own):')
  say()
  table(functions.rows.map((r) => ({ function: r.funcname, calls: Number(r.calls), 'calls/msg': round(Number(r.calls) / n, 2), 'total ms/msg': round(r.total / n, 3), 'self ms/msg': round(r.self / n, 3) })))

  // WAL
  const wal = (await admin.query<{ bytes: string }>('SELECT pg_wal_lsn_diff($2, $1)::bigint AS bytes', [before.lsn, after.lsn])).rows[0].bytes
  const walStats = (await admin.query<{ wal_records: string; wal_fpi: string; wal_bytes: string }>('SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal')).rows[0]
  const byType = await admin.query<{ resource_manager: string; count: string; record_size: string; fpi_size: string; combined_size: string }>(
    `SELECT "resource_manager/record_type" AS resource_manager, count, record_size, fpi_size, combined_size
     FROM pg_get_wal_stats($1::pg_lsn, $2::pg_lsn, true) WHERE count > 0 ORDER BY combined_size DESC LIMIT 14`,
    [before.lsn, after.lsn],
  )
  say()
  say(`WAL: ${round(Number(wal) / n, 0)} bytes per message (pg_current_wal_lsn: ${wal} bytes over the run); pg_stat_wal: ${round(Number(walStats.wal_records) / n, 1)} records and ${round(Number(walStats.wal_fpi) / n, 2)} full-page images per message. By record type (pg_walinspect, the whole cluster over the run):`)
  say()
  table(byType.rows.map((r) => ({ record: r.resource_manager, 'per msg': round(Number(r.count) / n, 2), 'record B/msg': round(Number(r.record_size) / n, 0), 'FPI B/msg': round(Number(r.fpi_size) / n, 0), 'total B/msg': round(Number(r.combined_size) / n, 0) })))

  // Rows and index entries
  const indexDefs = await admin.query<{ indexrelname: string; relname: string; def: string; partial: boolean }>(
    `SELECT i.indexrelname, i.relname, pg_get_indexdef(i.indexrelid) AS def, x.indpred IS NOT NULL AS partial
     FROM pg_stat_user_indexes i JOIN pg_index x ON x.indexrelid = i.indexrelid`,
  )
  const tableRows: Record<string, unknown>[] = []
  for (const [name, a] of after.tables) {
    const b = before.tables.get(name) ?? { ins: 0, upd: 0, hot: 0, del: 0 }
    const d = { ins: a.ins - b.ins, upd: a.upd - b.upd, hot: a.hot - b.hot, del: a.del - b.del }
    if (d.ins + d.upd + d.del === 0) continue
    const indexes = indexDefs.rows.filter((r) => r.relname === name)
    // Every insert and every update that is not HOT adds an entry to each index (a partial one only where its predicate holds).
    const entries = (d.ins + d.upd - d.hot) * indexes.length
    tableRows.push({
      table: name,
      'inserts/msg': round(d.ins / n, 2),
      'updates/msg': round(d.upd / n, 2),
      'HOT updates/msg': round(d.hot / n, 2),
      'deletes/msg': round(d.del / n, 2),
      indexes: indexes.length,
      'index entries/msg (≤)': round(entries / n, 2),
    })
  }
  say()
  say('Rows written per message (pg_stat_user_tables) and the index entries they add: each insert and each non-HOT update adds one to every index of its table (a partial index only where its predicate holds, hence ≤):')
  say()
  table(tableRows)
  const growth: Record<string, unknown>[] = []
  for (const [name, a] of after.indexes) {
    const b = before.indexes.get(name)?.bytes ?? 0
    if (a.bytes - b === 0) continue
    growth.push({ index: name, table: a.table, 'bytes/msg (pages grown)': round((a.bytes - b) / n, 1), definition: `\`${oneLine(indexDefs.rows.find((r) => r.indexrelname === name)?.def ?? '', 90)}\`` })
  }
  say()
  say('Indexes grown over the run (pg_relation_size, in whole 8 kB pages):')
  say()
  table(growth)
  return { via, load, statements: statements.rows, functions: functions.rows, wal_bytes: Number(wal), wal: walStats, wal_by_type: byType.rows, tables: tableRows, index_growth: growth }
}

// ---- 2. EXPLAIN (ANALYZE, BUFFERS) of the insert ------------------------------------------------------------

async function explainInsert(appUrl: string, plan: Plan) {
  const db = new pg.Client({ connectionString: appUrl })
  await db.connect()
  // The statement the writer prepares, from its one source (a search of pg_stat_statements for it went stale when
  // the statement's text changed).
  const result: Record<string, unknown> = { statement: INSERT_MESSAGES, statement_one_row: INSERT_MESSAGE }
  try {
    const convs = plan.senders.slice(0, 10).map((s) => s.body.conversation_id)
    const { rows: members } = await db.query<{ conversation_id: string; user_id: string }>(
      'SELECT DISTINCT ON (conversation_id) conversation_id, user_id FROM participants WHERE conversation_id = ANY ($1::uuid[]) ORDER BY conversation_id, user_id',
      [convs],
    )
    const row = (m: { conversation_id: string; user_id: string }, i: number) => ({
      id: crypto.randomUUID(), conversation_id: m.conversation_id, sender_id: m.user_id, message_type: 'text', content: `explain ${i} ${'x'.repeat(20)}`,
      reply_to_id: null, client_id: crypto.randomUUID(), file_id: null, file_url: null, file_name: null, file_size: null, mime_type: null,
      thread_id: null, mention_names: [], forwarded_sender_id: null, forwarded_created_at: null, i,
    })
    say()
    say('### EXPLAIN (ANALYZE, BUFFERS, WAL) of the writer\'s INSERT (INSERT_MESSAGE for one row, INSERT_MESSAGES for a batch, of src/services/message-writer.ts), each in a transaction rolled back')
    for (const k of [1, 10]) {
      const times: number[] = []
      const triggers = new Map<string, number[]>()
      let text = ''
      for (let r = 0; r < 30; r++) {
        const rows = Array.from({ length: k }, (_, i) => row(members[i % members.length], i))
        await db.query('BEGIN')
        // As the writer sends them: one row as parameters (INSERT_MESSAGE), a batch as JSON (INSERT_MESSAGES).
        const { rows: lines } = k === 1
          ? await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS, WAL) ${INSERT_MESSAGE}`, parameters(rows[0]))
          : await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS, WAL) ${INSERT_MESSAGES}`, [JSON.stringify(rows)])
        await db.query('ROLLBACK')
        text = lines.map((l) => l['QUERY PLAN']).join('\n')
        times.push(Number(/Execution Time: ([\d.]+)/.exec(text)?.[1]))
        for (const m of text.matchAll(/Trigger (?:for constraint )?(\S+)( on \S+)?: time=([\d.]+) calls=(\d+)/g)) {
          if (!triggers.has(m[1])) triggers.set(m[1], [])
          triggers.get(m[1])!.push(Number(m[3]))
        }
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
      say()
      say(`${k} row${k > 1 ? 's' : ''} (${k > 1 ? 'one per conversation, as a batch under load' : 'as unloaded'}): median execution ${round(median(times), 3)} ms over 30 runs; triggers (median total per statement): ${[...triggers].map(([t, xs]) => `${t} ${round(median(xs), 3)} ms`).join(', ')}. The last run's plan:`)
      say()
      say('```')
      say(text)
      say('```')
      result[`rows_${k}`] = { median_ms: median(times), triggers: Object.fromEntries([...triggers].map(([t, xs]) => [t, median(xs)])), plan: text }
    }
  } finally {
    await db.end()
  }
  return result
}

// ---- 3. node --cpu-prof at the capacity step ----------------------------------------------------------------

async function profilePhase(databaseUrl: string, via: Via, workDir: string) {
  const dir = path.join(workDir, `cpuprof-${via}`)
  await mkdir(dir, { recursive: true })
  const sys = await startParley(databaseUrl, 2, { logDir: path.join(workDir, 'logs'), execArgv: () => ['--cpu-prof', `--cpu-prof-dir=${dir}`] })
  let window: { from: number; to: number; sent: number; load: Awaited<ReturnType<typeof runLoad>> }
  try {
    const plan = await sys.seed(GROUPS, GROUP_SIZE)
    const workers = await connectWorkers(plan)
    try {
      await runLoad(workers, RATE, 2000, via)
      log(`breakdown: cpu profile, ${via === 'ws' ? 'ws send' : 'POST'} at ${RATE}/s for ${PROFILE_S} s`)
      const from = monoMs()
      const load = await runLoad(workers, RATE, PROFILE_S * 1000, via)
      window = { from, to: monoMs(), sent: load.sent, load }
    } finally {
      await closeWorkers(workers)
    }
  } finally {
    await sys.stop() // SIGTERM: each node exits by itself, and writes its profile
  }
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'))
  const fns = new Map<string, number>()
  const mods = new Map<string, number>()
  let total = 0
  for (const f of files) {
    const profile = JSON.parse(await readFile(path.join(dir, f), 'utf8')) as CpuProfile
    // The profile's clock is V8's TimeTicks (CLOCK_MONOTONIC, µs), the one monoMs reads.
    const r = selfTimes(profile, window.from * 1000, window.to * 1000)
    total += r.total
    for (const [k, v] of r.fns) fns.set(k, (fns.get(k) ?? 0) + v)
    for (const [k, v] of r.mods) mods.set(k, (mods.get(k) ?? 0) + v)
  }
  const n = window.sent
  const wall = window.to - window.from
  say()
  say(`### node --cpu-prof, both nodes, ${via === 'ws' ? 'WebSocket `send` frames' : 'POST /messages'} at ${RATE} msg/s: ${n} messages in ${round(wall / 1000, 1)} s (the drain included; failed ${window.load.failed}, lost ${window.load.lost})`)
  say()
  say(`Busy (non-idle) samples: ${round(total, 0)} ms over both nodes = ${round(total / n, 3)} ms per message, ${round(total / wall, 2)} cores. By module (self time):`)
  say()
  const top = (m: Map<string, number>, k: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k)
  table(top(mods, 18).map(([mod, ms]) => ({ module: mod, 'self ms/msg': round(ms / n, 4), share: `${round((100 * ms) / total, 1)}%` })))
  say()
  say('Top functions (self time):')
  say()
  table(top(fns, 30).map(([fn, ms]) => ({ function: `\`${fn.replace(/`/g, "'")}\``, 'self ms/msg': round(ms / n, 4), share: `${round((100 * ms) / total, 1)}%` })))
  return { via, rate: RATE, sent: n, wall_ms: wall, busy_ms: total, modules: Object.fromEntries(top(mods, 40)), functions: Object.fromEntries(top(fns, 60)), profiles: files.length }
}

// ---- the run --------------------------------------------------------------------------------------------------

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
      const nodePids = sys.procs.map((p) => p.pid!)
      result.post = await databaseSide(admin, workers, 'post', nodePids)
      result.ws = await databaseSide(admin, workers, 'ws', nodePids)
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
  await writeFile(path.join(results, `${name}.md`), `${out.join('\n')}\n`)
} finally {
  await database.stop()
  await rm(work, { recursive: true, force: true })
}
