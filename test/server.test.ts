import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { freePort } from '../src/database.ts'
import { testDatabase } from './helper.ts'
import { BASE_ENV, startServer as start, stopServer } from './processes.ts'

const root = path.resolve(import.meta.dirname, '..')
const stop = (proc: ChildProcess) => stopServer(proc)

t.test('with no DATABASE_URL it runs on an embedded PostgreSQL that keeps its data', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'parley-data-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))

  const first = await start(t, { DATA_DIR: dataDir })
  t.equal((await fetch(`${first.base}/health/ready`)).status, 200)
  t.equal((await fetch(`${first.base}/docs/`)).status, 200, 'Swagger UI is served')
  const reg = await fetch(`${first.base}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'persisted', password: 'Passw0rd' }),
  })
  t.equal(reg.status, 201)
  const { access_token } = await reg.json()
  t.equal(await stop(first.proc), 0, 'SIGTERM shuts down cleanly')

  const second = await start(t, { DATA_DIR: dataDir })
  // A token in a query string (as WebSocket clients send it) must not reach the logs either.
  await fetch(`${second.base}/users/me?token=${access_token}`)
  const me = await fetch(`${second.base}/users/me`, { headers: { authorization: `Bearer ${access_token}` } })
  t.equal(me.status, 200, 'the account and the signing secret survived the restart')
  t.equal((await me.json()).username, 'persisted')
  t.equal(await stop(second.proc), 0)
  // After the stop: the log is buffered, and written out in full on exit.
  t.ok(second.logs.some((l) => l.includes('/users/me?token=[redacted]')), 'the request with the token in its URL was logged')
  t.notOk(second.logs.join('\n').includes(access_token), 'the token never appears in the logs')
})

t.test('a request is in the log within moments, however little else is logged', async (t) => {
  const url = await testDatabase(t)
  const server = await start(t, { DATABASE_URL: url, JWT_SECRET: 's'.repeat(40) })
  const before = server.logs.length
  await fetch(`${server.base}/health/live`, { headers: { 'x-request-id': 'one-quiet-request' } })
  // The log is written in blocks, but flushed every 250 ms: one short line must not wait for a block to fill.
  const deadline = Date.now() + 5000
  while (!server.logs.some((l) => l.includes('"reqId":"one-quiet-request"')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  t.ok(server.logs.slice(before).some((l) => l.includes('"reqId":"one-quiet-request"')), 'its line arrived while the server runs')
  t.equal(await stop(server.proc), 0)
})

t.test('with DATABASE_URL it uses that server', async (t) => {
  const url = await testDatabase(t)
  const server = await start(t, { DATABASE_URL: url, JWT_SECRET: 's'.repeat(40) })
  t.equal((await fetch(`${server.base}/health/ready`)).status, 200)
  t.match(server.logs.join('\n'), /database: DATABASE_URL/)
  t.equal(await stop(server.proc), 0)
})

t.test('a bad configuration is one line and exit code 1', async (t) => {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    env: { ...BASE_ENV, PORT: 'eighty' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  proc.stderr!.on('data', (d) => (stderr += d))
  const [code] = await once(proc, 'exit')
  t.equal(code, 1)
  t.match(stderr.trim(), /^Invalid configuration: .*PORT/)
  t.equal(stderr.trim().split('\n').length, 1, 'one line')
})

/** `npm start` on a fresh data folder, until it is up: npm's process, its output, and the pids of the server and its PostgreSQL. */
async function npmStart(t: Test, opts: { ownGroup?: boolean; command?: string[] } = {}) {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'parley-data-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  // In a group of its own, as a terminal runs a foreground command: a Ctrl+C is SIGINT to the whole group.
  const [command, ...args] = opts.command ?? ['npm', 'start', '--silent']
  const npm = spawn(command, args, {
    cwd: root, detached: opts.ownGroup, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...BASE_ENV, PORT: '0', LOG_LEVEL: 'info', DATA_DIR: dataDir },
  })
  const output: string[] = []
  const pids: number[] = []
  t.teardown(() => {
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL')
  })
  await new Promise<void>((resolve, reject) => {
    npm.once('exit', (code) => reject(new Error(`npm start exited with ${code}: ${output.join('')}`)))
    for (const stream of [npm.stdout!, npm.stderr!]) {
      stream.setEncoding('utf8').on('data', (chunk: string) => {
        output.push(chunk)
        // Up: the JSON log line and, for a person at a terminal, the plain one.
        if (/API docs at/.test(output.join('')) && /^ {2}API docs: +http\S+\/docs$/m.test(output.join(''))) resolve()
      })
    }
  })
  npm.removeAllListeners('exit')
  const server = Number(/"pid":(\d+)/.exec(output.join(''))![1])
  const postmaster = Number((await readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0])
  pids.push(server, postmaster)
  t.ok(alive(server) && alive(postmaster), 'the server and its PostgreSQL run')
  const base = /API docs at (http:\/\/\S+)\/docs/.exec(output.join(''))![1]
  return { npm, output, server, postmaster, base }
}

t.test('SIGTERM to `npm start` alone, as a process manager sends it, stops the server and its database', async (t) => {
  const { npm, output, server, postmaster, base } = await npmStart(t)
  const lines = output.join('').split('\n')
  t.ok(lines.includes(`  Web client: ${base}/`) && lines.includes(`  API docs:   ${base}/docs`), 'the URLs as plain text, each on a line of its own')
  const exited = once(npm, 'exit')
  npm.kill('SIGTERM')
  const [code] = await exited
  t.equal(code, 0, 'npm exits 0')
  t.notOk(alive(server), 'the server is gone')
  t.notOk(alive(postmaster), 'and so is its PostgreSQL')
  t.notMatch(output.join(''), /"level":5\d/, 'no error on the way out')
})

t.test('Ctrl+C on `npm start` (SIGINT to its whole process group) shuts down cleanly, the database last', async (t) => {
  const { npm, output, server, postmaster } = await npmStart(t, { ownGroup: true })
  const exited = once(npm, 'exit')
  process.kill(-npm.pid!, 'SIGINT')
  const [code, signal] = await exited
  t.ok(code === 0 || signal === 'SIGINT', `npm ends as after a Ctrl+C (code ${code}, signal ${signal})`)
  t.notOk(alive(server), 'the server is gone')
  t.notOk(alive(postmaster), 'and so is its PostgreSQL')
  const text = output.join('')
  t.match(text, /SIGINT received, shutting down/, 'the server shut down')
  t.notMatch(text, /second SIGINT|"level":[45]\d|\n\s+at /, 'once, with no warning, error or stack trace (npm passes the signal on too)')
})

t.test("SIGTERM to the container's command (node, no npm) drains sockets with 1001 and stops the database last", async (t) => {
  const { npm: node, output, server, postmaster, base } = await npmStart(t, { command: [process.execPath, '--import', 'tsx', 'src/server.ts'] })
  t.equal(node.pid, server, 'node is the server itself')
  const post = (p: string, body: unknown, token?: string) =>
    fetch(`${base}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) }, body: JSON.stringify(body) })
  const alice = (await (await post('/auth/register', { username: 'alice_sigterm', password: 'Passw0rd-x' })).json()) as { access_token: string; user: { id: string } }
  const bob = (await (await post('/auth/register', { username: 'bob_sigterm', password: 'Passw0rd-x' })).json()) as { access_token: string; user: { id: string } }
  const conv = (await (await post('/conversations', { participant_ids: [bob.user.id] }, alice.access_token)).json()) as { id: string }
  const ws = new WebSocket(`${base.replace('http', 'ws')}/ws?token=${bob.access_token}`)
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  const exited = once(node, 'exit')
  t.equal((await post('/messages', { conversation_id: conv.id, content: 'before the signal' }, alice.access_token)).status, 201)
  node.kill('SIGTERM')
  t.equal(await closed, 1001, 'the socket is closed with 1001 (going away): its client reconnects elsewhere')
  const [code] = await exited
  t.equal(code, 0, 'exits 0')
  t.notOk(alive(postmaster), 'its PostgreSQL is stopped too')
  t.notMatch(output.join(''), /"level":5\d/, 'no error on the way out')
})

/** Whether a process of this pid is still running. */
/** Running, or not yet exited: a zombie (exited, waiting for whoever reaps orphans here) counts as gone. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

t.test('SIGTERM to `npm run cluster` alone, as a process manager sends it, stops every process it started, with no error', async (t) => {
  const port = await freePort()
  const npm = spawn('npm', ['run', 'cluster', '--silent', '--', '--instances', '2', '--port', String(port)], {
    cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...BASE_ENV },
  })
  const output: string[] = []
  let started: number[] = []
  t.teardown(() => {
    for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL')
  })
  await new Promise<void>((resolve, reject) => {
    npm.once('exit', (code) => reject(new Error(`npm run cluster exited with ${code}: ${output.join('')}`)))
    for (const stream of [npm.stdout!, npm.stderr!]) {
      stream.setEncoding('utf8').on('data', (chunk: string) => {
        output.push(chunk)
        if (/Ctrl\+C stops everything/.test(output.join(''))) resolve()
      })
    }
  })
  npm.removeAllListeners('exit')
  started = descendants(npm.pid!)
  const names = started.map(commandOf).join(' ')
  t.match(names, /postgres/, 'a PostgreSQL runs')
  t.match(names, /nginx/, 'and nginx')
  t.ok((await fetch(`http://127.0.0.1:${port}/health/ready`)).ok, 'the cluster answers through nginx')
  const exited = once(npm, 'exit')
  npm.kill('SIGTERM')
  const [code] = await exited
  t.equal(code, 0, 'npm exits 0')
  // A process that has been told to go may take a moment to be gone (a tool's helper, orphaned as its parent exits,
  // exits when its pipe closes): one still there after 5 s was left behind.
  for (const deadline = Date.now() + 5000; started.some(alive) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100))
  t.same(started.filter(alive).map(commandOf), [], `none of the ${started.length} processes it started is left`)
  t.notMatch(output.join(''), /"level":[45]\d|\n\s+at |second SIG/, 'no warning, error or stack trace')
})

/** Every process below `pid`, from /proc. */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // The command may hold spaces and parentheses: the parent's pid is the second field after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = []
  for (let frontier = [pid]; frontier.length > 0; ) {
    frontier = [...parent].filter(([, p]) => frontier.includes(p)).map(([c]) => c)
    found.push(...frontier)
  }
  return found
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
  } catch {
    return `(${pid})`
  }
}
