// Part 1 of the breakdown: the database's side of N sends, per send path. Every statement the database ran
// (pg_stat_statements, the triggers' too), the trigger functions' own times, WAL per message (in all and by record
// type), rows and index entries written per table and index, and CPU per process (PostgreSQL's and the nodes').
import pg from 'pg'
import { APP_ROLE } from '../../src/embedded-postgres.ts'
import { cpuSeconds, round } from '../lib.ts'
import type { Via } from '../worker.ts'
import type { Worker } from '../workers.ts'
import { RATE_LOW, runLoad, SENDS } from './load.ts'
import { log, oneLine, say, table } from './report.ts'

/** The processes whose CPU is counted: the postmaster (its children are found from it) and the nodes. */
export interface Processes {
  postmaster: number
  nodes: number[]
}


interface DbSnapshot {
  lsn: string
  /** CPU seconds so far of each PostgreSQL process, by what it is (pool backends, LISTEN backends, WAL writer…), and of the nodes. */
  cpu: Map<number, { kind: string; seconds: number }>
  tables: Map<string, { ins: number; upd: number; hot: number; del: number }>
  indexes: Map<string, { table: string; bytes: number }>
}

async function snapshot(db: pg.Client, { postmaster, nodes }: Processes): Promise<DbSnapshot> {
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
  cpu.set(postmaster, { kind: 'postmaster', seconds: cpuSeconds(postmaster) })
  for (const pid of nodes) cpu.set(pid, { kind: 'node', seconds: cpuSeconds(pid) })
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

export async function databaseSide(admin: pg.Client, workers: Worker[], via: Via, processes: Processes) {
  const label = via === 'ws' ? 'WebSocket `send` frames' : 'POST /messages'
  log(`breakdown: ${label}, ${SENDS} sends at ${RATE_LOW}/s`)
  await runLoad(workers, RATE_LOW, 2000, via) // warm: pools full, catalogs cached
  await new Promise((r) => setTimeout(r, STATS_FLUSH_MS))
  await admin.query('SELECT pg_stat_statements_reset()')
  await admin.query('SELECT pg_stat_reset()')
  await admin.query(`SELECT pg_stat_reset_shared('wal')`)
  const before = await snapshot(admin, processes)
  const load = await runLoad(workers, RATE_LOW, (SENDS / RATE_LOW) * 1000, via)
  const cpuAfter = (await snapshot(admin, processes)).cpu
  await new Promise((r) => setTimeout(r, STATS_FLUSH_MS))
  const after = await snapshot(admin, processes)
  const n = load.sent
  say()
  say(`### ${label}: ${n} messages at ${RATE_LOW} msg/s (failed ${load.failed}, lost ${load.lost}, duplicated ${load.duplicated})`)
  say()
  const { statements, executed } = await statementsRun(admin, n)
  cpuPerProcess(before.cpu, cpuAfter, n, executed)
  const functions = await functionsRun(admin, n)
  const wal = await walWritten(admin, before, after, n)
  const written = await rowsWritten(admin, before, after, n)
  return { via, load, statements, functions, ...wal, ...written }
}

/** Every statement of the app's role over the run; the time they took, executing and planning, per message. */
async function statementsRun(admin: pg.Client, n: number) {
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
  say(`Top-level statements' execution time, all together: ${round(all / n, 3)} ms per message, and their planning ${round(planning / n, 3)} ms (the writer's statement is prepared once per connection; the others are planned anew, as the pg driver sends unnamed statements). (Rarer statements, fewer than 1 call per 50 messages, left out of the table, not of the sums.)`)
  return { statements: statements.rows, executed: all + planning }
}

/** CPU per message of each kind of PostgreSQL process, and of the nodes, between two snapshots. */
function cpuPerProcess(before: DbSnapshot['cpu'], after: DbSnapshot['cpu'], n: number, executed: number) {
  const cpuByKind = new Map<string, number>()
  for (const [pid, a] of after) {
    // A backend that was not there before (a pool connection opened during the run) counts from its start.
    const b = before.get(pid)?.seconds ?? 0
    cpuByKind.set(a.kind, (cpuByKind.get(a.kind) ?? 0) + a.seconds - b)
  }
  const pgCpu = [...cpuByKind].filter(([k]) => k !== 'node' && !k.includes('this script')).reduce((s, [, v]) => s + v, 0)
  say()
  say(`CPU over the run (/proc, user + system), per message: PostgreSQL ${round((pgCpu * 1000) / n, 3)} ms, the two nodes ${round(((cpuByKind.get('node') ?? 0) * 1000) / n, 3)} ms. PostgreSQL's by process (of it, statements' execution and planning above are ${round(executed / n, 3)} ms; the rest is the protocol, parsing, commits and their WAL, the notifications' delivery, and the system calls of each):`)
  say()
  table([...cpuByKind].filter(([k]) => k !== 'node').sort((a, b) => b[1] - a[1]).map(([kind, sec]) => ({ process: kind, 'CPU ms/msg': round((sec * 1000) / n, 3) })))
}

/** The trigger functions' and other functions' own times (track_functions=all). */
async function functionsRun(admin: pg.Client, n: number) {
  const functions = await admin.query<{ funcname: string; calls: string; total: number; self: number }>(
    'SELECT funcname, calls, total_time AS total, self_time AS self FROM pg_stat_user_functions ORDER BY total_time DESC',
  )
  say()
  say('Functions (track_functions=all; SQL functions inlined into their caller are not counted on their own):')
  say()
  table(functions.rows.map((r) => ({ function: r.funcname, calls: Number(r.calls), 'calls/msg': round(Number(r.calls) / n, 2), 'total ms/msg': round(r.total / n, 3), 'self ms/msg': round(r.self / n, 3) })))

  return functions.rows
}

/** WAL per message: in all, as pg_stat_wal counts it, and by record type (pg_walinspect). */
async function walWritten(admin: pg.Client, before: DbSnapshot, after: DbSnapshot, n: number) {
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

  return { wal_bytes: Number(wal), wal: walStats, wal_by_type: byType.rows }
}

/** Rows written per table and the index entries they add; the pages each index grew by. */
async function rowsWritten(admin: pg.Client, before: DbSnapshot, after: DbSnapshot, n: number) {
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
  return { tables: tableRows, index_growth: growth }
}
