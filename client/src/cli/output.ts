// What a command prints: one JSON value (or one JSON object a line, for `tail`) with --json, short human lines
// without. Errors: one line on stderr (the API's `{error, code}` with --json) and a non-zero exit code.
import { ParleyError } from '../types.ts'

/** Exit codes: 1 the server or the network said no, 2 the command line was wrong. */
export const EXIT = { FAILED: 1, USAGE: 2 } as const

export class Output {
  constructor(readonly json: boolean) {}

  /** The command's result: `value` as JSON, or the human text. */
  result(value: unknown, human: () => string): void {
    process.stdout.write(this.json ? JSON.stringify(value) + '\n' : human() + '\n')
  }

  /** News about the command itself (e.g. tail's connection state), kept off stdout so that stdout stays data. */
  note(value: Record<string, unknown>, human: string): void {
    process.stderr.write(this.json ? JSON.stringify(value) + '\n' : `parley: ${human}\n`)
  }

  error(err: unknown): number {
    const e = err instanceof ParleyError ? err : new ParleyError('CLI_ERROR', err instanceof Error ? err.message : String(err))
    const message = e.message.split('\n')[0]
    process.stderr.write(this.json ? JSON.stringify({ error: message, code: e.code }) + '\n' : `parley: ${message} (${e.code})\n`)
    return e.code === 'USAGE' ? EXIT.USAGE : EXIT.FAILED
  }
}

export const usage = (message: string) => new ParleyError('USAGE', message)
