// Runs the `parley` bin (node_modules/.bin/parley, linked by the workspace) as a real process, each person with
// their own session file.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

export const BIN = join(import.meta.dirname, '..', 'node_modules', '.bin', 'parley')

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** One command to its end. */
export async function parley(config: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawnParley(config, args, env)
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  const [code] = await once(child, 'close')
  return { code, stdout, stderr }
}

export function spawnParley(config: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(BIN, args, { env: cliEnv(config, env), stdio: ['ignore', 'pipe', 'pipe'] })
}

/** The environment of a CLI process: this one's, with its session file, and none of the CLI's own settings. */
export function cliEnv(config: string, env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const clean = { ...process.env }
  delete clean.PARLEY_URL
  delete clean.PARLEY_PASSWORD
  // No coverage from the child: it loads client/src through tsx, whose code tap cannot map back, and its record
  // of those files would replace the real one of the in-process SDK tests (all lines, no functions).
  delete clean.NODE_V8_COVERAGE
  clean._TAPJS_PROCESSINFO_COVERAGE_ = '0'
  return { ...clean, PARLEY_CONFIG: config, ...env }
}

/** A long-running command (tail): its stdout and stderr lines as they come, and waits for a state of them. */
export function follow(child: ChildProcess) {
  const out: string[] = []
  const err: string[] = []
  const waiters = new Set<() => void>()
  const read = (stream: NodeJS.ReadableStream, lines: string[]) =>
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line)
      for (const w of [...waiters]) w()
    })
  read(child.stdout!, out)
  read(child.stderr!, err)
  // A prompt ends no line: what stdout has shown so far, checked as it comes.
  const shown = { text: '' }
  child.stdout!.on('data', (d) => {
    shown.text += d
    for (const w of [...waiters]) w()
  })
  const exited = once(child, 'close').then(([code]) => code as number | null)
  /** Resolves when `test()` holds, checked on each new line; rejects if the process ends first, or after `ms`. */
  const until = (test: () => boolean, what: string, ms = 30_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => (waiters.delete(check), reject(new Error(`timed out waiting for ${what}; stdout: ${out.join('\n')}`))), ms)
      const check = () => {
        if (!test()) return
        waiters.delete(check)
        clearTimeout(timer)
        resolve()
      }
      waiters.add(check)
      void exited.then(() => (waiters.delete(check), test() ? resolve() : reject(new Error(`parley ended before ${what}: ${err.join('\n')}`))))
      check()
    })
  return { out, err, shown, until, exited }
}
