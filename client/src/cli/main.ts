// parley: the command line on @parley/client (docs/CLIENT.md). The commands live in their modules; this wires
// them to commander and turns any failure into one line on stderr and an exit code.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { login, logout, register, type Credentials } from './auth.ts'
import { conversations, send, type SendFlags, upload } from './messages.ts'
import { EXIT, Output } from './output.ts'
import { tail } from './tail.ts'

const positive = (value: string): number => {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number, 1 or more')
  return n
}

const program = new Command('parley')
  .description('Parley from the command line: sign in, list conversations, send, follow one live, upload')
  .option('--json', 'print JSON for scripts (tail: one object a line); errors as {"error","code"} on stderr')
  .exitOverride()
  // A wrong command line is an error like the others: one line on stderr, JSON with --json.
  .configureOutput({
    outputError: (text, write) => {
      const error = text.trim().replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')
      write(process.argv.includes('--json') ? JSON.stringify({ error, code: 'USAGE' }) + '\n' : `parley: ${error} (see --help)\n`)
    },
  })

/** An action with the global --json, its failure reported by `Output.error`. */
const run =
  <A extends unknown[]>(fn: (out: Output, ...args: A) => Promise<void>) =>
  async (...args: unknown[]) => {
    const command = args.at(-1) as Command
    const out = new Output(Boolean(command.optsWithGlobals().json))
    try {
      await fn(out, ...(args.slice(0, -1) as A))
    } catch (err) {
      process.exitCode = out.error(err)
    }
  }

const signIn = (name: string, description: string) =>
  program
    .command(name)
    .description(description)
    .option('-u, --username <name>', 'asked on the terminal when missing')
    .option('-p, --password <password>', 'else $PARLEY_PASSWORD, else asked on the terminal (not echoed)')
    .addOption(new Option('--url <url>', 'the instance').env('PARLEY_URL'))

signIn('login', 'sign in and keep the session (PARLEY_CONFIG, else $XDG_CONFIG_HOME/parley/session.json), mode 0600').action(
  run((out, opts: Credentials) => login(out, opts)),
)
signIn('register', 'create an account, signed in as it')
  .option('--email <email>')
  .option('--display-name <name>')
  .action(run((out, opts: Credentials) => register(out, opts)))
program.command('logout').description('end the kept session on the server and forget it').action(run((out) => logout(out)))

program
  .command('conversations')
  .description('your conversations, most recent first: name (or the other person), unread count, last message')
  .option('--archived', 'the archived ones')
  .option('--limit <n>', 'at most n (≤ 100)', positive)
  .action(run((out, opts: { archived?: boolean; limit?: number }) => conversations(out, opts)))

program
  .command('send')
  .description('send a text message and print it as stored')
  .argument('<conversation>', 'a conversation id, or @username for your direct conversation (opened if needed)')
  .argument('<text>')
  .option('--client-id <uuid>', 'the idempotency key: a send retried with the same one lands once (default: a new UUID)')
  .option('--reply-to <message_id>')
  .option('--timeout <seconds>', 'give up when not acknowledged by then', positive, 30)
  .action(run((out, target: string, text: string, opts: SendFlags) => send(out, target, text, opts)))

program
  .command('tail')
  .description('print the conversation\'s events as they come (resumes after a network drop); Ctrl+C ends')
  .argument('<conversation>', 'a conversation id, or @username')
  .action(run((out, target: string) => tail(out, target)))

program
  .command('upload')
  .description('send a file (image, video or file by its content)')
  .argument('<conversation>', 'a conversation id, or @username')
  .argument('<file>')
  .option('--caption <text>')
  .action(run((out, target: string, file: string, opts: { caption?: string }) => upload(out, target, file, opts)))

try {
  await program.parseAsync()
} catch (err) {
  // commander has printed its message (and the help) already.
  if (!(err instanceof CommanderError)) throw err
  process.exitCode = err.exitCode === 0 ? 0 : EXIT.USAGE
}
