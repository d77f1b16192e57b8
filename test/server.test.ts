import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import { testDatabase } from './helper.ts'

const root = path.resolve(import.meta.dirname, '..')
// tap records coverage in child processes too, but these run src/ through tsx, whose transpiled
// offsets differ from tap's loader, and merging the two garbles the report; so they record none.
const BASE_ENV = { PATH: process.env.PATH, _TAPJS_PROCESSINFO_COVERAGE_: '0' }

/** Runs the real entry point (what `npm start` runs) and resolves with its base URL once it says so. */
async function startServer(env: Record<string, string>): Promise<{ proc: ChildProcess; base: string; logs: string[] }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    env: { ...BASE_ENV, PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: string[] = []
  const base = await new Promise<string>((resolve, reject) => {
    proc.on('exit', (code) => reject(new Error(`server exited with ${code}: ${logs.join('\n')}`)))
    for (const stream of [proc.stdout!, proc.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        logs.push(line)
        const m = /API docs at (http:\/\/\S+)\/docs/.exec(line)
        if (m) resolve(m[1])
      })
    }
  })
  return { proc, base, logs }
}

async function stop(proc: ChildProcess): Promise<number | null> {
  const exited = once(proc, 'exit')
  proc.kill('SIGTERM')
  const [code] = await exited
  return code as number | null
}

t.test('with no DATABASE_URL it runs on an embedded PostgreSQL that keeps its data', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'parley-data-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))

  const first = await startServer({ DATA_DIR: dataDir })
  t.teardown(() => first.proc.kill('SIGKILL'))
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

  const second = await startServer({ DATA_DIR: dataDir })
  t.teardown(() => second.proc.kill('SIGKILL'))
  // A token in a query string (as WebSocket clients send it) must not reach the logs either.
  await fetch(`${second.base}/users/me?token=${access_token}`)
  const me = await fetch(`${second.base}/users/me`, { headers: { authorization: `Bearer ${access_token}` } })
  t.equal(me.status, 200, 'the account and the signing secret survived the restart')
  t.equal((await me.json()).username, 'persisted')
  t.notOk(second.logs.join('\n').includes(access_token), 'the token never appears in the logs')
  t.equal(await stop(second.proc), 0)
})

t.test('with DATABASE_URL it uses that server', async (t) => {
  const url = await testDatabase(t)
  const server = await startServer({ DATABASE_URL: url, JWT_SECRET: 's'.repeat(40) })
  t.teardown(() => server.proc.kill('SIGKILL'))
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
