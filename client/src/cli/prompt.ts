// Asking on the terminal: a line, or a password that is not echoed. Never on a pipe: a script passes flags.
// One readline for every question, its lines queued: lines typed ahead must reach the next question.
import { createInterface, type Interface } from 'node:readline'
import { usage } from './output.ts'

let rl: Interface | undefined
let muted = false
const lines: string[] = []
const waiting: Array<(line: string | undefined) => void> = []

function terminal(): Interface {
  if (rl) return rl
  rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true })
  rl.on('line', (line) => (waiting.length ? waiting.shift()!(line) : lines.push(line)))
  rl.on('close', () => waiting.splice(0).forEach((w) => w(undefined)))
  // readline echoes the keys it reads through _writeToOutput: while muted, nothing of them is shown.
  const echo = rl as unknown as { _writeToOutput(s: string): void }
  const write = echo._writeToOutput.bind(rl)
  echo._writeToOutput = (s: string) => (muted ? undefined : write(s))
  return rl
}

export async function ask(question: string, opts: { secret?: boolean; flag: string }): Promise<string> {
  if (!process.stdin.isTTY) throw usage(`${opts.flag} is required when stdin is not a terminal`)
  terminal()
  process.stderr.write(question)
  muted = Boolean(opts.secret)
  try {
    const answer = lines.length ? lines.shift() : await new Promise<string | undefined>((resolve) => waiting.push(resolve))
    if (answer === undefined) throw usage(`no answer: pass ${opts.flag}`)
    return opts.secret ? answer : answer.trim()
  } finally {
    if (muted) process.stderr.write('\n')
    muted = false
  }
}

/** Lets the process end (an open readline holds stdin). */
export function doneAsking(): void {
  rl?.close()
  rl = undefined
}
