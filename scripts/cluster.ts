// `npm run cluster`: docker-compose.yml's topology without Docker. One PostgreSQL (embedded, or DATABASE_URL),
// N Parley instances as child processes, and Debian's nginx in front of them with the config that compose uses
// (deploy/nginx.conf.template, rendered by deploy/render-nginx.sh). Ctrl+C or SIGTERM stops it all in order.
//   npm run cluster -- --instances 3 --port 8080     (or CLUSTER_INSTANCES, CLUSTER_PORT)
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import { freePort } from '../src/database.ts'
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../src/embedded-postgres.ts'

const root = path.resolve(import.meta.dirname, '..')
const RENDER = path.join(root, 'deploy/render-nginx.sh')
const NGINX = process.env.NGINX ?? '/usr/sbin/nginx'

export interface ClusterOptions {
  /** How many Parley instances (default 3). */
  instances?: number
  /** The load balancer's port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number
  /** An existing database; without it, an embedded PostgreSQL is started and thrown away at stop. */
  databaseUrl?: string
  /** The instances' environment, before the cluster's own settings (default: this process's). */
  env?: NodeJS.ProcessEnv
  /** Every line a member prints, stdout and stderr alike (member: `parley-1`…, `nginx`). */
  onLine?: (member: string, line: string) => void
  /** Settings of instance `i` (0-based) over the cluster's: `npm run chaos` gives each its own way to the database. */
  instanceEnv?: (i: number) => NodeJS.ProcessEnv
}

export interface Member {
  name: string
  proc: ChildProcess
  /** What it printed, stdout and stderr, a line each (the latest 10,000 to 20,000 lines). */
  logs: string[]
}

export interface Instance extends Member {
  /** Its own address, bypassing the load balancer (what Prometheus scrapes). */
  base: string
}

/** A member whose output is being collected; `say` adds a line to it. */
type Tracked = Member & { say: (line: string) => void }

export interface Cluster {
  /** The load balancer: the only address clients need. */
  url: string
  databaseUrl: string
  instances: Instance[]
  nginx: Member
  /**
   * Starts instance `i` again, on its port (nginx's upstream), with its settings, once its process has exited;
   * resolves when it listens. `npm run chaos` SIGKILLs one and brings it back.
   */
  restart(i: number): Promise<Instance>
  /** Instances first (their clients get 1001 and they clear their presence), then nginx, then the database. */
  stop(): Promise<void>
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const count = opts.instances ?? 3
  const base = opts.env ?? process.env
  const onLine = opts.onLine ?? (() => {})
  const dir = await mkdtemp(path.join(tmpdir(), 'parley-cluster-'))
  // Started as root, nginx's workers and PostgreSQL drop to other users, who must reach their files in here.
  await chmod(dir, 0o755)
  const members: Member[] = []
  let database: EmbeddedDatabase | undefined
  let stopping = false
  let unfollow = async () => {}
  let restart: Cluster['restart'] = async () => {
    throw new Error('the cluster is not running')
  }

  let stopped: Promise<void> | undefined
  const stop = () => (stopped ??= stopAll())
  const stopAll = async () => {
    stopping = true
    const nginx = members.find((m) => m.name === 'nginx')
    await Promise.all(members.filter((m) => m !== nginx).map((m) => terminate(m.proc, 'SIGTERM', 15_000)))
    // SIGTERM is nginx's fast shutdown: the remaining connections (already closed by the instances) are dropped.
    if (nginx) await terminate(nginx.proc, 'SIGTERM', 5000)
    await unfollow()
    await database?.stop()
    await rm(dir, { recursive: true, force: true })
  }
  const track = (name: string, proc: ChildProcess): Tracked => {
    const say = (line: string) => {
      // Bounded: `npm run cluster` may run for days.
      if (member.logs.push(line) > 20_000) member.logs.splice(0, 10_000)
      onLine(name, line)
    }
    const member = { name, proc, logs: [] as string[], say }
    members.push(member)
    for (const stream of [proc.stdout!, proc.stderr!]) createInterface({ input: stream }).on('line', say)
    // An instance that dies while the cluster runs is worth a line: nginx now routes around it.
    proc.on('exit', (code, signal) => stopping || say(`exited (${signal ?? `code ${code}`})`))
    return member
  }

  try {
    database = opts.databaseUrl ? undefined : await startEmbeddedPostgres(path.join(dir, 'db'))
    const databaseUrl = opts.databaseUrl ?? database!.url
    const env = {
      ...base,
      DATABASE_URL: databaseUrl,
      // One secret for all: a token issued by one instance is accepted by every other.
      JWT_SECRET: base.JWT_SECRET ?? randomBytes(48).toString('base64url'),
      // nginx connects from 127.0.0.1: its X-Forwarded-For, and nobody else's, names the client.
      TRUST_PROXY: '127.0.0.1',
      HOST: '127.0.0.1',
    }
    // Each on a port of its own, chosen once: an instance started again is where nginx expects it.
    const envs = await Promise.all(
      Array.from({ length: count }, async (_, i) => ({ ...env, ...opts.instanceEnv?.(i), PORT: String(await freePort()) })),
    )
    const launch = (i: number) => startInstance(track(`parley-${i + 1}`, spawnInstance(envs[i])))
    const instances = await Promise.all(envs.map((_, i) => launch(i)))
    restart = async (i) => {
      const old = instances[i]
      if (old.proc.exitCode === null && old.proc.signalCode === null) await once(old.proc, 'exit')
      // (An Instance is a copy of its Member, with its address: the Member is found by its process.)
      members.splice(members.findIndex((m) => m.proc === old.proc), 1)
      return (instances[i] = await launch(i))
    }
    const port = opts.port || (await freePort())
    const nginx = await startNginx(dir, port, instances, track)
    unfollow = follow(path.join(dir, 'access.log'), nginx.say)
    return { url: `http://127.0.0.1:${port}`, databaseUrl, instances, nginx, restart: (i) => restart(i), stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** What `npm start` runs, as docker-compose.yml's instances do. */
function spawnInstance(env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Resolves once the instance says where it listens (it took a free port). */
function startInstance(member: Member): Promise<Instance> {
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer)
      reject(new Error(`${member.name} ${why}:\n${member.logs.join('\n')}`))
    }
    const timer = setTimeout(() => fail('did not start within 60 s'), 60_000)
    member.proc.once('exit', (code) => fail(`exited with code ${code} while starting`))
    createInterface({ input: member.proc.stdout! }).on('line', (line) => {
      const base = /API docs at (http:\/\/\S+)\/docs/.exec(line)?.[1]
      if (!base) return
      clearTimeout(timer)
      resolve({ ...member, base })
    })
  })
}

/** nginx.conf for these instances, from the template compose uses, by the renderer compose uses. */
async function renderNginxConfig(listen: string, upstreams: string[], runDir: string): Promise<string> {
  const { stdout } = await promisify(execFile)('sh', [RENDER], {
    env: {
      PATH: process.env.PATH,
      PARLEY_LISTEN: listen,
      PARLEY_UPSTREAMS: upstreams.join(' '),
      PARLEY_RUN_DIR: runDir,
      // Node gives a child sockets, not pipes, for stdout, and nginx cannot open a socket as a log file.
      PARLEY_ACCESS_LOG: path.join(runDir, 'access.log'),
    },
  })
  return stdout
}

async function startNginx(dir: string, port: number, instances: Instance[], track: (name: string, proc: ChildProcess) => Tracked) {
  if (!existsSync(NGINX)) throw new Error(`${NGINX} not found: install Debian's nginx (apt-get install nginx), or set NGINX`)
  const conf = path.join(dir, 'nginx.conf')
  await writeFile(conf, await renderNginxConfig(`127.0.0.1:${port}`, instances.map((i) => new URL(i.base).host), dir))
  // -p: nothing outside the temporary folder; -e: errors before the config is read go to stderr too.
  const member = track('nginx', spawn(NGINX, ['-p', dir, '-e', 'stderr', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] }))
  // nginx writes its pid file once its listening socket is bound: from then on, clients can connect.
  const pidFile = path.join(dir, 'nginx.pid')
  for (const deadline = Date.now() + 10_000; !existsSync(pidFile); ) {
    if (member.proc.exitCode !== null || Date.now() > deadline) {
      throw new Error(`nginx did not start:\n${member.logs.join('\n')}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return member
}

/** Passes each line appended to `file` to `onLine`, until the returned function is called (it reads the rest first). */
function follow(file: string, onLine: (line: string) => void): () => Promise<void> {
  let offset = 0
  let partial = ''
  let reading: Promise<void> = Promise.resolve()
  const read = async () => {
    const handle = await open(file).catch(() => undefined)
    if (!handle) return
    try {
      const buffer = Buffer.alloc(64 * 1024)
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset)
        if (bytesRead === 0) break
        offset += bytesRead
        const lines = (partial + buffer.subarray(0, bytesRead).toString('utf8')).split('\n')
        partial = lines.pop()!
        lines.forEach(onLine)
      }
    } finally {
      await handle.close()
    }
  }
  // Polled: nginx writes each line when a request ends, and a line 50 ms late is soon enough.
  const next = () => (reading = reading.then(read).catch(() => {}))
  const timer = setInterval(next, 50)
  return async () => {
    clearInterval(timer)
    await next()
  }
}

/** Sends `signal`, and SIGKILL if the process is still there after `ms`. */
async function terminate(proc: ChildProcess, signal: NodeJS.Signals, ms: number) {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  const exited = once(proc, 'exit')
  proc.kill(signal)
  const timer = setTimeout(() => proc.kill('SIGKILL'), ms)
  await exited
  clearTimeout(timer)
}

// The command line runs as a process of its own, where coverage is not recorded; the test runs it that way.
/* c8 ignore start */
/**
 * Ctrl+C signals the terminal's whole process group, the embedded PostgreSQL included, which would stop the
 * database under instances that are still draining. So the cluster runs in a process group of its own, and
 * this process turns any signal into one SIGTERM for it; if this process dies, the IPC channel closes and the
 * cluster stops as well.
 */
async function supervise(): Promise<never> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, PARLEY_CLUSTER_SUPERVISED: '1' },
  })
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill('SIGTERM'))
  const [code] = await once(child, 'exit')
  process.exit(code ?? 1)
}

async function main() {
  const { values } = parseArgs({ options: { instances: { type: 'string', short: 'n' }, port: { type: 'string', short: 'p' } } })
  const instances = Number(values.instances ?? process.env.CLUSTER_INSTANCES ?? 3)
  const port = Number(values.port ?? process.env.CLUSTER_PORT ?? 8080)
  if (!Number.isInteger(instances) || instances < 1 || !Number.isInteger(port) || port < 0 || port > 65535) {
    console.error('usage: npm run cluster -- [--instances N (≥ 1)] [--port P (0: any free port)]')
    process.exit(2)
  }
  if (!process.env.PARLEY_CLUSTER_SUPERVISED) await supervise()

  const width = Math.max('nginx'.length, `parley-${instances}`.length)
  const cluster = await startCluster({
    instances,
    port,
    databaseUrl: process.env.DATABASE_URL,
    onLine: (member, line) => process.stdout.write(`${member.padEnd(width)} | ${line}\n`),
  }).catch((err) => {
    console.error(`The cluster did not start: ${(err as Error).message}`)
    process.exit(1)
  })
  console.log(
    `\nParley: ${instances} instance(s) behind nginx at ${cluster.url} (API docs at ${cluster.url}/docs, WebSockets at ${cluster.url.replace(/^http/, 'ws')}/ws)\n` +
      `  instances: ${cluster.instances.map((i) => `${i.name} ${i.base}`).join(', ')}\n` +
      `  database: ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded, thrown away at exit'}\n` +
      '  Ctrl+C stops everything.\n',
  )
  let stopping: Promise<void> | undefined
  const shutdown = () => {
    stopping ??= cluster.stop().then(
      () => process.exit(0),
      (err) => {
        console.error(`Stopping the cluster failed: ${(err as Error).message}`)
        process.exit(1)
      },
    )
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, shutdown)
  process.on('disconnect', shutdown)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
/* c8 ignore stop */
