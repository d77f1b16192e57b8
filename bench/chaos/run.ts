// `npm run chaos`: faults under load, and what each did to the promise that an acknowledged message is never
// lost and reaches every member once, in order. Three instances behind nginx on one PostgreSQL (each through
// a TCP proxy that can stall), members in groups with a socket each, a steady rate of sends half over POST
// and half over `send` frames, every sender retrying with the same client_id until acknowledged. The faults
// of faults.ts, in turn, with steady load between them; then every member resumes once more, and the
// database and every member's frames are checked.
//   npm run chaos                      (the full run, ≈ 3 minutes here)
//   CHAOS_SHORT=1 npm run chaos        (the short form npm test runs)
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { type Cluster, startCluster } from '../../scripts/cluster.ts'
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../src/embedded-postgres.ts'
import { JWT_SECRET } from '../lib.ts'
import { seed, storedMessages } from './data.ts'
import { FAULTS, type World } from './faults.ts'
import { type Acked, Member, type SendStats, sendUntilAcked } from './member.ts'
import { type StallableProxy, startProxy } from './proxy.ts'

export interface ChaosOptions {
  groups: number
  groupSize: number
  /** Sends per second, all groups together. */
  rate: number
  /** Steady load before the first fault and after each. */
  settleMs: number
  outageMs: number
  stallMs: number
  log?: (line: string) => void
}

export const FULL: ChaosOptions = { groups: 30, groupSize: 10, rate: 200, settleMs: 15_000, outageMs: 5000, stallMs: 10_000 }
export const SHORT: ChaosOptions = { groups: 6, groupSize: 5, rate: 40, settleMs: 3000, outageMs: 2000, stallMs: 4000 }

export interface FaultReport {
  fault: string
  acknowledged: number
  missingFromDatabase: number
  notDelivered: number
  duplicates: number
  outOfOrder: number
  fiveHundreds: number
  /** From the fault's injection until /health/ready answered 200 on every instance. */
  readyAfterMs: number
}

export interface ChaosReport {
  faults: FaultReport[]
  abandoned: number
  /** Unacknowledged sends stored more than once (must be 0: absent or present once). */
  abandonedTwice: number
  redelivered: number
  reconnects: number
  seconds: number
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? (() => {})
  const began = performance.now()
  const dir = await mkdtemp(path.join(tmpdir(), 'parley-chaos-'))
  // The database server runs as another OS user when this runs as root: it must reach its folder.
  await chmod(dir, 0o755)
  const proxies: StallableProxy[] = []
  let cluster: Cluster | undefined
  let database: EmbeddedDatabase | undefined
  const members: Member[] = []
  try {
    database = await startEmbeddedPostgres(path.join(dir, 'db'))
    const port = Number(new URL(database.url).port)
    const appUrl = database.url
    const adminUrl = Object.assign(new URL(database.adminUrl), { pathname: '/parley' }).toString()
    for (let i = 0; i < 3; i++) proxies.push(await startProxy(port))
    const viaProxy = (i: number) => Object.assign(new URL(appUrl), { port: String(proxies[i].port) }).toString()
    cluster = await startCluster({
      instances: 3,
      databaseUrl: database.url,
      // Not this process's environment: under tap it carries the coverage collector, and the instances' coverage of
      // the same sources through another transform (tsx's) would corrupt the suite's report.
      env: { PATH: process.env.PATH, _TAPJS_PROCESSINFO_COVERAGE_: '0', JWT_SECRET, RATE_LIMIT_MAX: '1000000', NODE_ENV: 'production' },
      instanceEnv: (i) => ({ DATABASE_URL: viaProxy(i) }),
      onLine: (member, line) => /"level":(50|60)/.test(line) && log(`${member}: ${line.slice(0, 300)}`),
    })
    const world: World = {
      cluster,
      proxies,
      adminUrl,
      database: {
        get current() {
          return database!
        },
        async restart() {
          database = await startEmbeddedPostgres(path.join(dir, 'db'), { port })
          return database
        },
      } as World['database'],
    }
    const wsUrl = `${cluster.url.replace('http', 'ws')}/ws`
    const groups = await seed(adminUrl, cluster.url, opts)
    for (const g of groups) for (const u of g.users) members.push(new Member(wsUrl, u.id, u.token, [g.conversationId]))
    members.forEach((m) => m.connect())
    await waitFor(() => members.every((m) => m.isLive), 60_000, 'every member connected and resumed')
    log(`chaos: ${members.length} members in ${groups.length} groups, ${opts.rate} sends/s, half POST and half send frames`)

    const acked: Acked[] = []
    const stats: SendStats = { attempts: 0, fiveHundreds: 0, abandoned: [] }
    const phaseOf = new Map<string, string>()
    let phase = 'warm-up'
    const fiveHundreds = new Map<string, number>()
    let stopAt = Infinity
    const inFlight = new Set<Promise<unknown>>()
    let sending = true
    let n = 0
    const sendOne = () => {
      const g = groups[n % groups.length]
      const via = n % 2 === 0 ? 'post' : 'ws'
      const sender = members.find((m) => m.userId === g.users[via === 'post' ? 0 : 1].id)!
      const clientId = `chaos-${n}`
      const at = phase
      phaseOf.set(clientId, at)
      n++
      const mine: SendStats = { attempts: 0, fiveHundreds: 0, abandoned: [] }
      const p = sendUntilAcked(via, sender, cluster!.url, g.conversationId, `chaos message ${clientId}`, clientId, { deadline: () => stopAt, stats: mine, timeoutMs: 5000 })
        .then((m) => {
          stats.attempts += mine.attempts
          stats.abandoned.push(...mine.abandoned)
          fiveHundreds.set(at, (fiveHundreds.get(at) ?? 0) + mine.fiveHundreds)
          if (m) acked.push({ clientId, conversationId: g.conversationId, id: m.id, seq: m.seq, phase: at })
        })
        .finally(() => inFlight.delete(p))
      inFlight.add(p)
    }
    const start = performance.now()
    const pump = (async () => {
      while (sending) {
        const due = Math.floor(((performance.now() - start) / 1000) * opts.rate)
        while (n < due && sending) sendOne()
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    })()

    const readyAfter = new Map<string, number>()
    // What members saw go wrong, by the phase it happened in (a frame's fault is not its message's phase).
    const broken = new Map<string, { duplicates: number; outOfOrder: number }>()
    const tally = () => ({
      duplicates: members.reduce((s, m) => s + m.duplicates + m.twice, 0),
      outOfOrder: members.reduce((s, m) => s + m.outOfOrder, 0),
    })
    let since = tally()
    const endPhase = () => {
      const now = tally()
      broken.set(phase, { duplicates: now.duplicates - since.duplicates, outOfOrder: now.outOfOrder - since.outOfOrder })
      since = now
    }
    await sleep(opts.settleMs)
    for (const fault of FAULTS) {
      endPhase()
      phase = fault.name
      log(`chaos: ${fault.name}`)
      const t0 = performance.now()
      await fault.inject(world, opts)
      await waitFor(() => allReady(cluster!), 120_000, `every instance ready after ${fault.name}`, true)
      readyAfter.set(fault.name, performance.now() - t0)
      log(`chaos: ${fault.name}: every instance ready after ${Math.round(performance.now() - t0)} ms`)
      await sleep(opts.settleMs)
    }
    endPhase()
    phase = 'final resume'
    sending = false
    await pump
    // What is still unanswered gets a while to be answered, then is given up (and checked: absent or once).
    stopAt = Date.now() + 30_000
    await Promise.all([...inFlight])
    await waitFor(() => members.every((m) => m.isLive), 60_000, 'every member connected again')
    const resumed = await Promise.all(members.map((m) => m.resumeAgain(30_000)))
    if (resumed.some((ok) => !ok)) throw new Error(`${resumed.filter((ok) => !ok).length} members could not resume at the end`)

    endPhase()
    const stored = await storedMessages(adminUrl, [...phaseOf.keys()])
    const faults = ['warm-up', ...FAULTS.map((f) => f.name), 'final resume'].map((name) => {
      const mine = acked.filter((a) => a.phase === name)
      let notDelivered = 0
      for (const a of mine) {
        const group = groups.find((g) => g.conversationId === a.conversationId)!
        for (const u of group.users) {
          const m = members.find((x) => x.userId === u.id)!
          const seen = m.seen.get(a.conversationId)!
          if (seen.bySeq.get(a.seq) === a.id) continue
          notDelivered++
          if (notDelivered <= 5) {
            const got = seen.bySeq.has(a.seq) ? `seq ${a.seq} held message ${seen.bySeq.get(a.seq)}` : `seq ${a.seq} never came`
            log(`chaos: ${name}: ${a.clientId} (message ${a.id}, seq ${a.seq}) not delivered to ${m.userId}: ${got}; contiguous ${seen.contiguous}, ${m.connections} connections`)
          }
        }
      }
      return {
        fault: name,
        acknowledged: mine.length,
        missingFromDatabase: mine.filter((a) => stored.get(a.clientId)?.id !== a.id).length,
        notDelivered,
        ...broken.get(name)!,
        fiveHundreds: fiveHundreds.get(name) ?? 0,
        readyAfterMs: Math.round(readyAfter.get(name) ?? 0),
      }
    })
    for (const m of members.filter((x) => x.anomalies.length > 0).slice(0, 8)) for (const a of m.anomalies.slice(0, 2)) log(`chaos: member ${m.userId}: ${a}`)
    return {
      faults,
      abandoned: stats.abandoned.length,
      abandonedTwice: stats.abandoned.filter((c) => (stored.get(c)?.count ?? 0) > 1).length,
      redelivered: members.reduce((s, m) => s + m.redelivered, 0),
      reconnects: members.reduce((s, m) => s + m.connections - 1, 0),
      seconds: Math.round((performance.now() - began) / 1000),
    }
  } finally {
    for (const m of members) m.stop()
    await cluster?.stop()
    for (const p of proxies) await p.close()
    await database?.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

async function allReady(cluster: Cluster): Promise<boolean> {
  const answers = await Promise.all(
    cluster.instances.map((i) => fetch(`${i.base}/health/ready`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status === 200, () => false)),
  )
  return answers.every(Boolean)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function waitFor(check: () => boolean | Promise<boolean>, ms: number, what: string, poll100 = false): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`chaos: timed out waiting for ${what}`)
    await sleep(poll100 ? 100 : 50)
  }
}

export function printReport(report: ChaosReport, out: (line: string) => void = console.log): void {
  const cols = ['fault', 'acked', 'missing in DB', 'not delivered', 'duplicates', 'out of order', '5xx', 'ready after']
  out(`| ${cols.join(' | ')} |`)
  out(`|${cols.map(() => '---').join('|')}|`)
  for (const f of report.faults) {
    out(`| ${f.fault} | ${f.acknowledged} | ${f.missingFromDatabase} | ${f.notDelivered} | ${f.duplicates} | ${f.outOfOrder} | ${f.fiveHundreds} | ${f.readyAfterMs ? `${f.readyAfterMs} ms` : ''} |`)
  }
  out(`\nA message counts in the phase its first try was made in; a duplicate or out-of-order frame in the phase it arrived in.`)
  out(`unacknowledged sends given up: ${report.abandoned}, of them stored more than once: ${report.abandonedTwice}; frames redelivered on a later connection (allowed): ${report.redelivered}; reconnects: ${report.reconnects}; ${report.seconds} s`)
}

async function main() {
  const opts = process.env.CHAOS_SHORT === '1' ? SHORT : FULL
  const report = await runChaos({ ...opts, log: (line) => console.error(line) })
  printReport(report)
  const bad = report.faults.some((f) => f.missingFromDatabase || f.notDelivered || f.duplicates || f.outOfOrder) || report.abandonedTwice
  process.exit(bad ? 1 : 0)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
