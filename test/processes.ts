import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import path from 'node:path'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'
import { testDatabase } from './helper.ts'
import { WsClient } from './ws-client.ts'

const root = path.resolve(import.meta.dirname, '..')
// tap records coverage in child processes too, but these run src/ through tsx, whose transpiled
// offsets differ from tap's loader, and merging the two garbles the report; so they record none.
export const BASE_ENV = { PATH: process.env.PATH, _TAPJS_PROCESSINFO_COVERAGE_: '0' }

export interface Instance {
  proc: ChildProcess
  base: string
  /** stdout: the JSON log, a line each. */
  logs: string[]
  /** stderr: what is written for a person (the start-up lines, a fatal message). */
  stderr: string[]
}

/** Runs the real entry point (what `npm start` runs) and resolves with its base URL once it says so. */
export async function startServer(t: Test, env: Record<string, string>): Promise<Instance> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    env: { ...BASE_ENV, PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
  })
  const logs: string[] = []
  const stderr: string[] = []
  const base = await new Promise<string>((resolve, reject) => {
    proc.on('exit', (code) => reject(new Error(`server exited with ${code}: ${[...logs, ...stderr].join('\n')}`)))
    createInterface({ input: proc.stderr! }).on('line', (line) => stderr.push(line))
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      logs.push(line)
      const m = /API docs at (http:\/\/\S+)\/docs/.exec(line)
      if (m) resolve(m[1])
    })
  })
  return { proc, base, logs, stderr }
}

export async function stopServer(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  const exited = once(proc, 'exit')
  proc.kill(signal)
  const [code] = await exited
  return code as number | null
}

/** A JSON call against a running instance. */
export async function call(base: string, method: string, url: string, token?: string, body?: unknown) {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: { ...(token && { authorization: `Bearer ${token}` }), ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : undefined }
}

/**
 * Two real instances on one fresh database; `open` gives a socket to either (closed when the test ends), `user`
 * registers someone through either.
 */
export async function startCluster(t: Test, env: Record<string, string>) {
  const url = await testDatabase(t)
  const [a, b] = await Promise.all([startServer(t, { ...env, DATABASE_URL: url }), startServer(t, { ...env, DATABASE_URL: url })])
  const sockets: WsClient[] = []
  t.teardown(() => sockets.forEach((s) => s.close()))
  const open = async (base: string, token: string) => {
    const s = await WsClient.open(base, token)
    sockets.push(s)
    return s
  }
  const user = async (base: string, name: string) => {
    const res = await call(base, 'POST', '/auth/register', undefined, { username: `${name}_${process.pid}`, password: 'Passw0rd' })
    return { token: res.body.access_token as string, id: res.body.user.id as string }
  }
  return { a, b, open, user, url }
}
