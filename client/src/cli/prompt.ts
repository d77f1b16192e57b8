// Asking on the terminal: a line, or a password that is not echoed. Never on a pipe: a script passes flags.
import { createInterface } from 'node:readline/promises'
import { usage } from './output.ts'

export async function ask(question: string, opts: { secret?: boolean; flag: string }): Promise<string> {
  if (!process.stdin.isTTY) throw usage(`${opts.flag} is required when stdin is not a terminal`)
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true })
  if (opts.secret) {
    // readline echoes what it reads through _writeToOutput: show the question only.
    const out = rl as unknown as { _writeToOutput(s: string): void }
    out._writeToOutput = (s: string) => void (s.startsWith(question) && process.stderr.write(question))
  }
  try {
    return (await rl.question(question)).trim()
  } finally {
    if (opts.secret) process.stderr.write('\n')
    rl.close()
  }
}
