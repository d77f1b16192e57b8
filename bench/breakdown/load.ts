// The breakdown's load: its rates and sizes (from the environment), and a run of the bench's workers.
import type { RunResult, Via } from '../worker.ts'
import type { Worker } from '../workers.ts'

export const RATE = Number(process.env.BREAKDOWN_RATE ?? 600)
export const RATE_LOW = Number(process.env.BREAKDOWN_RATE_LOW ?? 200)
export const SENDS = Number(process.env.BREAKDOWN_SENDS ?? 4000)
export const PROFILE_S = Number(process.env.BREAKDOWN_PROFILE_S ?? 12)
export const GROUPS = 200
export const GROUP_SIZE = 10

export async function runLoad(workers: Worker[], rate: number, durationMs: number, via: Via) {
  const results = await Promise.all(workers.map((w) => w.ask<RunResult>({ cmd: 'run', rate: rate / workers.length, durationMs, warmupMs: 0, drainMs: 5000, via })))
  const sum = (k: 'sent' | 'failed' | 'lost' | 'duplicated' | 'unanswered') => results.reduce((s, r) => s + r[k], 0)
  return { sent: sum('sent'), failed: sum('failed'), lost: sum('lost'), duplicated: sum('duplicated'), unanswered: sum('unanswered') }
}
