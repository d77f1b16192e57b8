// The load workers (bench/worker.ts), as the bench's phases and bench/breakdown.ts drive them: two separate
// processes, each holding whole groups (their sockets and their sender).
import { type ChildProcess, fork } from 'node:child_process'
import path from 'node:path'
import { root } from './lib.ts'
import type { Plan } from './systems.ts'
import type { WorkerCommand } from './worker.ts'

export const WORKERS = 2

export interface Worker {
  proc: ChildProcess
  ask<T>(cmd: WorkerCommand): Promise<T>
}

async function startWorker(): Promise<Worker> {
  const proc = fork(path.join(root, 'bench/worker.ts'), [], { execArgv: ['--import', 'tsx'], cwd: root, stdio: 'inherit' })
  const next = <T>() =>
    new Promise<T>((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`a worker exited with ${code}`))
      proc.once('exit', onExit)
      proc.once('message', (m) => {
        proc.off('exit', onExit)
        resolve(m as T)
      })
    })
  await next()
  return { proc, ask: <T>(cmd: WorkerCommand) => (proc.send(cmd), next<T>()) }
}

/** Each worker takes whole groups (their sockets and their sender), so it can tell on its own what was lost. */
function share(plan: Plan, i: number, n: number): Plan {
  return { ...plan, sockets: plan.sockets.filter((s) => s.group % n === i), senders: plan.senders.filter((s) => s.group % n === i) }
}

export async function connectWorkers(plan: Plan): Promise<Worker[]> {
  const workers = await Promise.all(Array.from({ length: WORKERS }, startWorker))
  await Promise.all(workers.map((w, i) => w.ask({ cmd: 'connect', plan: share(plan, i, workers.length) })))
  return workers
}

export async function closeWorkers(workers: Worker[]): Promise<void> {
  await Promise.all(workers.map((w) => w.ask({ cmd: 'close' }).catch(() => {})))
}
