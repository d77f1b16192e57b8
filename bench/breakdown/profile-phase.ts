// Part 3 of the breakdown: `node --cpu-prof` of both nodes at the capacity step, per send path: the top
// self-time functions and modules over the loaded window, in CPU ms per message.
import { mkdir, readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { type CpuProfile, selfTimes } from '../cpu-profile.ts'
import { monoMs, round } from '../lib.ts'
import { startParley } from '../systems.ts'
import type { Via } from '../worker.ts'
import { closeWorkers, connectWorkers } from '../workers.ts'
import { GROUP_SIZE, GROUPS, PROFILE_S, RATE, runLoad } from './load.ts'
import { log, say, table } from './report.ts'

export async function profilePhase(databaseUrl: string, via: Via, workDir: string) {
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
