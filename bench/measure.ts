// One measured step of `npm run bench`: a system's workers send at a rate for a while, and what came of it:
// latencies, losses, each side's CPU, and what PostgreSQL's backends waited on.
import pg from 'pg'
import { cpuSeconds, percentile, postgresPids, round } from './lib.ts'
import type { Running, SystemName } from './systems.ts'
import type { RunResult, Via } from './worker.ts'
import type { Worker } from './workers.ts'

/** A rate passes while its p99 stays under this (and nothing is lost, duplicated or failed). */
export const P99_LIMIT_MS = 100

export interface MeasureContext {
  /** The PostgreSQL whose processes' CPU counts as the database's. */
  postmasterPid: number
  urlFor(system: SystemName): string
}

export interface Step {
  rate: number
  via: Via
  sends_per_s: number
  frames_per_s: number
  p50_ms: number | null
  p95_ms: number | null
  p99_ms: number | null
  max_ms: number | null
  /** Scheduled send → POST answered. */
  answer_p50_ms: number | null
  answer_p99_ms: number | null
  lost: number
  duplicated: number
  failed: number
  unanswered: number
  /** CPU cores busy, on average, during the run. */
  cpu: { nodes: number | null; database: number | null; workers: number | null }
  /** CPU ms per message sent: both nodes together (the 10 frames included), and PostgreSQL. */
  cpu_ms_per_msg: { nodes: number | null; database: number | null }
  /** What the database's active backends were doing, as shares of samples of pg_stat_activity. */
  db_waits: Record<string, number>
  ok: boolean
}

/** Samples pg_stat_activity every 20 ms: which wait events the busy backends sit in. */
function sampleWaits(databaseUrl: string) {
  const client = new pg.Client({ connectionString: databaseUrl })
  const counts = new Map<string, number>()
  let samples = 0
  let running = true
  const done = (async () => {
    await client.connect()
    while (running) {
      const { rows } = await client.query<{ w: string; n: number }>(
        `SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS w, count(*)::int AS n FROM pg_stat_activity
         WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND query NOT LIKE 'LISTEN%' GROUP BY 1`,
      )
      samples++
      for (const r of rows) counts.set(r.w, (counts.get(r.w) ?? 0) + r.n)
      await new Promise((r) => setTimeout(r, 20))
    }
    await client.end()
  })()
  return async () => {
    running = false
    await done
    const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 4)
    // Mean number of backends in each state per sample.
    return Object.fromEntries(top.map(([w, n]) => [w, round(n / Math.max(1, samples), 2)!]))
  }
}

export async function measure(sys: Running, workers: Worker[], ctx: MeasureContext, rate: number, durationMs: number, warmupMs: number, via: Via = 'post'): Promise<Step> {
  const pgPids = postgresPids(ctx.postmasterPid)
  const groups = { nodes: sys.procs.map((p) => p.pid!), database: pgPids, workers: workers.map((w) => w.proc.pid!) }
  const cpu0 = new Map(Object.values(groups).flat().map((pid) => [pid, cpuSeconds(pid)]))
  // Per process, so a backend that exits during the run drops out instead of subtracting its past.
  const busy = (pids: number[]) => pids.reduce((s, pid) => { const now = cpuSeconds(pid); return now ? s + now - (cpu0.get(pid) ?? 0) : s }, 0)
  const t0 = performance.now()
  const stopWaits = sampleWaits(ctx.urlFor(sys.name))
  const results = await Promise.all(workers.map((w) => w.ask<RunResult>({ cmd: 'run', rate: rate / workers.length, durationMs, warmupMs, drainMs: 5000, via })))
  const db_waits = await stopWaits()
  const wall = (performance.now() - t0) / 1000
  groups.database = postgresPids(ctx.postmasterPid)
  const cpu = Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, round(busy(pids) / wall, 2)])) as Step['cpu']
  const latencies = results.flatMap((r) => r.latencies).sort((a, b) => a - b)
  const answered = results.flatMap((r) => r.answered).sort((a, b) => a - b)
  const sum = (k: keyof Omit<RunResult, 'latencies' | 'answered'>) => results.reduce((s, r) => s + r[k], 0)
  const seconds = durationMs / 1000
  // Over the whole measured wall time (send, drain): CPU per message sent in it.
  const perMsg = (cores: number | null) => (cores === null || sum('sent') === 0 ? null : round((cores * wall * 1000) / sum('sent'), 3))
  const step: Step = {
    rate,
    via,
    sends_per_s: round(sum('sent') / seconds)!,
    frames_per_s: round(sum('framesReceived') / seconds)!,
    p50_ms: round(percentile(latencies, 50), 2),
    p95_ms: round(percentile(latencies, 95), 2),
    p99_ms: round(percentile(latencies, 99), 2),
    max_ms: round(latencies[latencies.length - 1], 2),
    answer_p50_ms: round(percentile(answered, 50), 2),
    answer_p99_ms: round(percentile(answered, 99), 2),
    lost: sum('lost'),
    duplicated: sum('duplicated'),
    failed: sum('failed'),
    unanswered: sum('unanswered'),
    cpu,
    cpu_ms_per_msg: { nodes: perMsg(cpu.nodes), database: perMsg(cpu.database) },
    db_waits,
    ok: false,
  }
  step.ok = step.p99_ms !== null && step.p99_ms < P99_LIMIT_MS && step.lost === 0 && step.duplicated === 0 && step.failed === 0 && step.unanswered === 0 && step.sends_per_s >= 0.95 * rate
  return step
}
