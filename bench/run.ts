// `npm run bench`: Parley, the peer (Socket.IO + @socket.io/postgres-adapter) and the floor (bare
// INSERT + NOTIFY → LISTEN → ws.send) under the same load, in one run, on one embedded PostgreSQL.
// Load comes from separate worker processes (bench/worker.ts). Prints one table, writes <date>T<hhmm>.json (one
// per run) and latency-vs-rate.svg: into bench/results/ and docs/ with BENCH_SAVE=1, else under the OS's temp dir.
//
// Parley runs as users run it: at the default LOG_LEVEL (info; its log goes to a file per node), every send
// with a `client_id`, every token naming an open session. Its rate limits are set out of the load's reach
// (bench/systems.ts), so that the bench measures throughput, not the limiter. Parley is measured twice: sending
// by `POST /messages` (the row comparable with the peer and the floor) and by WebSocket `send` frames.
//
// BENCH_QUICK=1 shortens every phase (for trying the harness, not for figures). BENCH_ONLY=parley,parley-ws
// (say) runs those load phases alone; BENCH_ONLY=sockets the idle sockets and resume; BENCH_ONLY=history the pages of history; BENCH_ONLY=search the message search. BENCH_UNBATCHED=1 adds Parley with one commit per message
// (MESSAGE_BATCH_MAX=1), the before/after of batched writes (left out by default to keep the run under 10 minutes).
// BENCH_OUTGOING=1 adds Parley with 100 webhooks and 1,000 push subscriptions registered (bench/outgoing.ts; or
// BENCH_ONLY=parley,parley-outgoing for the two alone).
// BENCH_PARLEY_LOG_LEVEL=warn runs Parley without its request log. BENCH_RATES=200,1000 (say) sweeps those rates
// only, for alternating runs of the same steps.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { APP_ROLE, startEmbeddedPostgres } from '../src/embedded-postgres.ts'
import { outputDirs, root, round, rssBytes, stamp } from './lib.ts'
import { measure, P99_LIMIT_MS, type Step } from './measure.ts'
import { renderPlot } from './plot.ts'
import { historyPhase } from './history-page.ts'
import { registerOutgoing } from './outgoing.ts'
import { searchPhase } from './search.ts'
import { resumePhase } from './resume.ts'
import { type SystemName, startFloor, startParley, startPeer } from './systems.ts'
import type { Via } from './worker.ts'
import { closeWorkers, connectWorkers, WORKERS } from './workers.ts'

const QUICK = process.env.BENCH_QUICK === '1'

const GROUPS = 200 // 2,000 sockets in groups of 10
const GROUP_SIZE = 10
const FANOUT_RATE = Number(process.env.BENCH_FANOUT_RATE ?? 200)
const FANOUT_MS = QUICK ? 5_000 : 20_000
const STEP_MS = QUICK ? 3_000 : 6_000
const RATES = process.env.BENCH_RATES?.split(',').map(Number) ?? [100, 200, 400, 600, 800, 1000, 1250, 1500, 2000, 2500, 3000, 4000]
const IDLE_SOCKETS = QUICK ? 2_000 : 10_000
const MISSED_EVENTS = QUICK ? 2_000 : 10_000
const HISTORY_MESSAGES = QUICK ? 10_000 : 100_000
const SEARCH_MESSAGES = QUICK ? 100_000 : 1_000_000
const SEARCH_CONVERSATIONS = QUICK ? 1_000 : 10_000

// ---- phases ---------------------------------------------------------------------------------------------

interface Context {
  postmasterPid: number
  /** Where Parley's nodes write their logs. */
  logDir: string
  urlFor(system: SystemName): string
  /** The search phase's database (Parley's schema, its own data). */
  searchUrl: string
}

const STARTERS = { parley: startParley, peer: startPeer, floor: startFloor }
const log = (s: string) => process.stderr.write(`${s}\n`)

/** The resume phase (bench/resume.ts), on Parley's database. */
const resumeOf = (ctx: Context) => resumePhase(ctx.urlFor('parley'), { logDir: ctx.logDir, groupSize: GROUP_SIZE, missed: MISSED_EVENTS, log })

/** Pages of history with reactions and quotes (bench/history-page.ts), on Parley's database. */
const historyOf = (ctx: Context) => historyPhase(ctx.urlFor('parley'), { logDir: ctx.logDir, messages: HISTORY_MESSAGES, pages: QUICK ? 50 : 200, log })

/** Message search over SEARCH_MESSAGES messages (bench/search.ts), on a database of its own: seeded at once, measured by `measure()`. */
const searchOf = (ctx: Context) =>
  searchPhase(ctx.searchUrl, { logDir: ctx.logDir, messages: SEARCH_MESSAGES, conversations: SEARCH_CONVERSATIONS, queries: QUICK ? 20 : 100, log })

/** Fan-out at a fixed rate for FANOUT_MS, then the capacity sweep, on 2 nodes with 2,000 sockets. */
async function loadPhases(name: SystemName, ctx: Context, opts: { fanout?: boolean; env?: Record<string, string>; label?: string; via?: Via; outgoing?: boolean } = {}) {
  const label = opts.label ?? name
  const via = opts.via ?? 'post'
  const sys = name === 'parley' ? await startParley(ctx.urlFor(name), 2, { env: opts.env, logDir: ctx.logDir }) : await STARTERS[name](ctx.urlFor(name), 2)
  try {
    const plan = await sys.seed(GROUPS, GROUP_SIZE)
    const unregister = opts.outgoing ? await registerOutgoing(ctx.urlFor(name)) : undefined
    const workers = await connectWorkers(plan)
    try {
      let fanout: Step | undefined
      if (opts.fanout !== false) {
        log(`${label}: ${plan.sockets.length} sockets connected; fan-out at ${FANOUT_RATE}/s for ${FANOUT_MS / 1000} s`)
        fanout = await measure(sys, workers, ctx, FANOUT_RATE, FANOUT_MS, 2000, via)
        log(`${label}: fan-out p99 ${fanout.p99_ms} ms, lost ${fanout.lost}`)
      }
      const sweep: Step[] = []
      for (const rate of RATES) {
        let step = await measure(sys, workers, ctx, rate, STEP_MS, 1000, via)
        // One stall (a checkpoint, a GC pause) can push a short step's p99 over the line: a rate fails on two tries,
        // unless its median is over the line too (a queue, not a stall; a second try would only say so again).
        if (!step.ok && (step.p50_ms ?? Infinity) < P99_LIMIT_MS) step = await measure(sys, workers, ctx, rate, STEP_MS, 1000, via)
        sweep.push(step)
        log(`${label}: ${rate}/s → ${step.sends_per_s}/s sent, p50 ${step.p50_ms} p99 ${step.p99_ms} ms (answer p50 ${step.answer_p50_ms} p99 ${step.answer_p99_ms}), lost ${step.lost}, failed ${step.failed}, cpu ${JSON.stringify(step.cpu)} ms/msg ${JSON.stringify(step.cpu_ms_per_msg)} waits ${JSON.stringify(step.db_waits)}${step.ok ? '' : '  ✗'}`)
        if (!step.ok) break
      }
      const atCapacity = sweep.filter((s) => s.ok).at(-1)
      return { fanout, sweep, capacity: atCapacity?.rate ?? 0, cpu_ms_per_msg_at_capacity: atCapacity?.cpu_ms_per_msg ?? null }
    } finally {
      await closeWorkers(workers)
      await unregister?.()
    }
  } finally {
    await sys.stop()
  }
}

/** Memory per idle socket: one node, IDLE_SOCKETS sockets (each user in a group of 10), RSS before and after. */
async function connectionsPhase(name: SystemName, ctx: Context) {
  const sys = name === 'parley' ? await startParley(ctx.urlFor(name), 1, { logDir: ctx.logDir }) : await STARTERS[name](ctx.urlFor(name), 1)
  try {
    const plan = await sys.seed(IDLE_SOCKETS / GROUP_SIZE, GROUP_SIZE)
    const pid = sys.procs[0].pid!
    await new Promise((r) => setTimeout(r, 1000))
    const before = rssBytes(pid)
    const workers = await connectWorkers(plan)
    await new Promise((r) => setTimeout(r, 3000))
    const rss = rssBytes(pid)
    await closeWorkers(workers)
    const result = { sockets: plan.sockets.length, rss_before_mb: round(before / 2 ** 20), rss_after_mb: round(rss / 2 ** 20), kb_per_socket: round((rss - before) / plan.sockets.length / 1024, 2) }
    log(`${name}: ${JSON.stringify(result)}`)
    return result
  } finally {
    await sys.stop()
  }
}

// ---- the run ----------------------------------------------------------------------------------------------

/** The load phases of one run: every system by POST, and Parley by WebSocket `send` frames too. */
type LoadName = SystemName | 'parley-ws' | 'parley-outgoing'
const LOADS: Record<LoadName, (ctx: Context) => ReturnType<typeof loadPhases>> = {
  parley: (ctx) => loadPhases('parley', ctx),
  'parley-ws': (ctx) => loadPhases('parley', ctx, { via: 'ws', label: 'parley (ws send)' }),
  // Issue 17: the same sends with 100 webhooks and 1,000 push subscriptions registered elsewhere (bench/outgoing.ts).
  'parley-outgoing': (ctx) => loadPhases('parley', ctx, { outgoing: true, label: 'parley (POST), 100 webhooks + 1,000 push subscriptions' }),
  peer: (ctx) => loadPhases('peer', ctx),
  floor: (ctx) => loadPhases('floor', ctx),
}

const began = performance.now()
const dir = await mkdtemp(path.join(tmpdir(), 'parley-bench-'))
const database = await startEmbeddedPostgres(dir)
try {
  const postmasterPid = Number((await readFile(path.join(dir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0])
  const admin = new pg.Client({ connectionString: database.adminUrl })
  await admin.connect()
  const names: SystemName[] = ['parley', 'peer', 'floor']
  // Each system connects as the service does, as the owner of its database and no superuser.
  for (const n of [...names, 'search']) await admin.query(`CREATE DATABASE bench_${n} OWNER ${APP_ROLE}`)
  await admin.end()
  const urlOf = (n: string) => Object.assign(new URL(database.url), { pathname: `/bench_${n}` }).toString()
  const ctx: Context = { postmasterPid, urlFor: urlOf, searchUrl: urlOf('search'), logDir: path.join(dir, 'logs') }
  const logLevel = process.env.BENCH_PARLEY_LOG_LEVEL ?? 'info (default)'
  log(`Parley at LOG_LEVEL ${logLevel}`)

  // BENCH_ONLY=parley,parley-ws (say) runs those load phases alone, for working on them (`sockets`: idle sockets and
  // resume, Parley and the peer); the full run is the one that counts.
  if (process.env.BENCH_ONLY) {
    for (const n of process.env.BENCH_ONLY.split(',') as Array<LoadName | 'sockets' | 'history' | 'search'>) {
      if (n === 'history') {
        await historyOf(ctx)
        continue
      }
      if (n === 'search') {
        await searchOf(ctx).measure()
        continue
      }
      if (n === 'sockets') {
        const parley = await connectionsPhase('parley', ctx)
        const peer = await connectionsPhase('peer', ctx)
        log(`sockets: KB per idle socket parley ${parley.kb_per_socket}, peer ${peer.kb_per_socket}; resume ${JSON.stringify(await resumeOf(ctx))}`)
        continue
      }
      const r = await LOADS[n](ctx)
      log(`${n}: fan-out p50 ${r.fanout?.p50_ms} p95 ${r.fanout?.p95_ms} p99 ${r.fanout?.p99_ms} ms, capacity ${r.capacity} msg/s, at capacity CPU ms/msg ${JSON.stringify(r.cpu_ms_per_msg_at_capacity)}`)
    }
  } else {
    await fullRun(ctx)
  }
} finally {
  await database.stop()
  await rm(dir, { recursive: true, force: true })
}

async function fullRun(ctx: Context) {
  const load: Partial<Record<LoadName, Awaited<ReturnType<typeof loadPhases>>>> = {}
  const names: LoadName[] = ['parley', 'parley-ws', 'peer', 'floor']
  if (process.env.BENCH_OUTGOING === '1') names.splice(1, 0, 'parley-outgoing')
  for (const n of names) load[n] = await LOADS[n](ctx)
  // The design before batched writes, for the before/after of docs/SCALING.md: every message its own commit.
  const unbatched = process.env.BENCH_UNBATCHED === '1'
    ? await loadPhases('parley', ctx, { fanout: false, env: { MESSAGE_BATCH_MAX: '1' }, label: 'parley, one commit per message' })
    : undefined
  // The search's million messages are seeded while the idle sockets are counted: those phases measure bytes, not
  // time, and the seed's load is in another database. Everything timed after waits for the seed to end.
  const searching = searchOf(ctx)
  const memory: Record<string, Awaited<ReturnType<typeof connectionsPhase>>> = {}
  let resume, history, search
  try {
    memory.parley = await connectionsPhase('parley', ctx)
    memory.peer = await connectionsPhase('peer', ctx)
    memory.floor = await connectionsPhase('floor', ctx)
    await searching.seeded
    resume = await resumeOf(ctx)
    history = await historyOf(ctx)
    search = await searching.measure()
  } finally {
    await searching.stop()
  }

  // ---- the table ----
  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? `${(a / b).toFixed(2)}×` : 'n/a')
  const label: Record<LoadName, string> = { parley: 'parley (POST)', 'parley-outgoing': 'parley (POST) + outgoing', 'parley-ws': 'parley (ws send)', peer: 'peer', floor: 'floor' }
  const rows = (Object.keys(load) as LoadName[]).map((n) => {
    const l = load[n]!
    return {
      system: label[n],
      'fan-out sends/s': l.fanout!.sends_per_s,
      'frames/s': l.fanout!.frames_per_s,
      'p50 ms': l.fanout!.p50_ms,
      'p95 ms': l.fanout!.p95_ms,
      'p99 ms': l.fanout!.p99_ms,
      lost: l.fanout!.lost,
      'capacity msg/s (p99<100ms)': l.capacity,
      'node CPU ms/msg @cap': l.cpu_ms_per_msg_at_capacity?.nodes ?? null,
      'PG CPU ms/msg @cap': l.cpu_ms_per_msg_at_capacity?.database ?? null,
      'KB per idle socket': n === 'parley-ws' || n === 'parley-outgoing' ? '(as parley)' : memory[n].kb_per_socket,
    }
  })
  console.log(`\nParley vs peer (Socket.IO + postgres adapter) vs floor (INSERT+NOTIFY → LISTEN → ws.send): 2 nodes each, one PostgreSQL, ${GROUPS * GROUP_SIZE} sockets in groups of ${GROUP_SIZE}, fan-out at ${FANOUT_RATE} msg/s for ${FANOUT_MS / 1000} s; Parley at LOG_LEVEL ${process.env.BENCH_PARLEY_LOG_LEVEL ?? 'info (default)'}, every send with a client_id`)
  console.table(rows)
  const [p, w, s, f] = (['parley', 'parley-ws', 'peer', 'floor'] as const).map((n) => ({ ...load[n]!, fanout: load[n]!.fanout! }))
  const line = (name: string, a: typeof p, b: typeof p) =>
    console.log(`${name} capacity ${ratio(a.capacity, b.capacity)}, fan-out p50 latency ${ratio(a.fanout.p50_ms, b.fanout.p50_ms)}, p99 ${ratio(a.fanout.p99_ms, b.fanout.p99_ms)}`)
  line('Parley/peer:          ', p, s)
  line('Parley/floor:         ', p, f)
  line('Parley ws send/peer:  ', w, s)
  line('Parley ws send/floor: ', w, f)
  console.log('Parley stores every message (and its event) before it is delivered; the peer stores nothing; the floor stores a bare row.')
  console.log('Latency: scheduled send → the frame on the other node. CPU ms/msg: over the capacity step (both nodes together, the 10 frames included; PostgreSQL: postmaster and every backend).')
  if (unbatched) console.log(`Batched writes: Parley's capacity ${p.capacity} msg/s, against ${unbatched.capacity} msg/s with one commit per message (MESSAGE_BATCH_MAX=1)`)
  console.log(`Resume: ${resume.replayed} of ${resume.missed} missed events replayed; ${resume.events_per_s} events/s (median of ${resume.runs} resumes; the first, on a cold instance: ${resume.first_events_per_s})`)
  console.log(`History: GET /conversations/{id}/messages?limit=100 in ${history.messages} messages with ${history.reactions_per_message} reactions each (a reply every tenth): p50 ${history.p50_ms} ms, p95 ${history.p95_ms} ms over ${history.pages} pages`)
  console.log(`Search: GET /search/messages over ${search.messages} messages, the reader in ${search.member_of} conversations: ${search.cases.map((c) => `${c.case} (${c.scope}) p50 ${c['p50 ms']} / p95 ${c['p95 ms']} ms`).join('; ')}`)
  console.log(`Idle sockets: ${IDLE_SOCKETS} on one node.  Total bench time ${((performance.now() - began) / 1000).toFixed(0)} s`)

  // One file per run (its end, to the minute): a run never overwrites another's figures.
  const name = stamp()
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    quick: QUICK,
    setup: {
      workers: WORKERS, sockets: GROUPS * GROUP_SIZE, group_size: GROUP_SIZE, fanout_rate: FANOUT_RATE, fanout_seconds: FANOUT_MS / 1000,
      step_seconds: STEP_MS / 1000, p99_limit_ms: P99_LIMIT_MS, parley_log_level: process.env.BENCH_PARLEY_LOG_LEVEL ?? 'info', client_id: true,
    },
    load,
    unbatched,
    memory,
    resume,
    history,
    search,
    seconds: Math.round((performance.now() - began) / 1000),
  }
  if (!QUICK) {
    const out = outputDirs()
    await mkdir(out.results, { recursive: true })
    const file = path.join(out.results, `${name}.json`)
    const plot = path.join(out.docs, 'latency-vs-rate.svg')
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`)
    const series: Record<string, Step[]> = { parley: p.sweep, 'parley, ws send': w.sweep, peer: s.sweep, floor: f.sweep }
    if (unbatched) series['parley, 1 commit/msg'] = unbatched.sweep
    await writeFile(plot, renderPlot(series, P99_LIMIT_MS))
    console.log(`wrote ${path.relative(root, file)} and ${path.relative(root, plot)}${process.env.BENCH_SAVE === '1' ? '' : ' (BENCH_SAVE=1 writes them into the repository)'}`)
  }
}
