import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import t from 'tap'
import WebSocket from 'ws'
import YAML from 'yaml'
import { type Instance, startCluster } from '../scripts/cluster.ts'
import { BASE_ENV, call } from './processes.ts'
import { type Frame, WsClient } from './ws-client.ts'

// `npm run cluster`'s topology: three instances behind Debian's nginx (the config docker-compose.yml uses),
// one PostgreSQL. Clients talk to the load balancer only. Which instance served a request is read from the
// instances' own logs: nginx passes the client's X-Request-Id on, and each instance logs it as reqId.

const cluster = await startCluster({ instances: 3, env: { ...BASE_ENV, LOG_LEVEL: 'info' } })
t.teardown(() => cluster.stop())
const lb = cluster.url

/** Resolves with what `probe` returns once it returns something; the logs arrive through pipes, a little late. */
async function eventually<T>(probe: () => T | undefined, what: string, ms = 5000): Promise<T> {
  for (const deadline = Date.now() + ms; ; ) {
    const found = probe()
    if (found !== undefined) return found
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const servedBy = (requestId: string) => cluster.instances.find((i) => i.logs.some((l) => l.includes(`"reqId":"${requestId}"`)))
const accessLog = (requestId: string) => cluster.nginx.logs.find((l) => l.endsWith(`request_id=${requestId}`))

/** A WebSocket through nginx, and the instance it landed on. */
async function connect(token: string, requestId: string): Promise<{ ws: WsClient; on: Instance }> {
  const socket = new WebSocket(`${lb.replace(/^http/, 'ws')}/ws?token=${token}`, { headers: { 'x-request-id': requestId } })
  const ws = new WsClient(socket)
  await new Promise((resolve, reject) => {
    socket.once('open', resolve)
    socket.once('error', reject)
  })
  return { ws, on: await eventually(() => servedBy(requestId), `the instance that took ${requestId}`) }
}

/** A GET through nginx from a chosen local address, with chosen headers. */
function get(url: string, headers: Record<string, string>, localAddress = '127.0.0.1') {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    http
      .get(`${lb}${url}`, { headers, localAddress }, (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (chunk) => (body += chunk))
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
      })
      .on('error', reject)
  })
}

t.test("docker-compose.yml's nginx: the same template and renderer, over every instance, trusted by each", async (t) => {
  const compose = YAML.parse(await readFile('docker-compose.yml', 'utf8'), { merge: true })
  const nginx = compose.services.nginx
  t.match(nginx.command.join(' '), /\/etc\/parley\/render-nginx\.sh .*exec nginx -c/, 'renders with deploy/render-nginx.sh, then runs nginx')
  t.ok(nginx.volumes.includes('./deploy:/etc/parley:ro'), 'from deploy/, as the cluster script does')
  const instances = Object.keys(compose.services).filter((name) => /^parley-\d+$/.test(name))
  const address = (service: string) => compose.services[service].networks.parley.ipv4_address
  t.equal(instances.length, 3)
  t.same(nginx.environment.PARLEY_UPSTREAMS.split(' '), instances.map((name) => `${address(name)}:3000`), 'nginx balances over every instance')
  for (const name of instances) t.equal(compose.services[name].environment.TRUST_PROXY, address('nginx'), `${name} trusts nginx, and only nginx`)

  // nginx -t on what the container renders; only the paths inside the container are moved to a temporary folder.
  const dir = await mkdtemp(path.join(tmpdir(), 'parley-compose-nginx-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const run = promisify(execFile)
  const env = { PATH: process.env.PATH, ...nginx.environment, PARLEY_RUN_DIR: dir, PARLEY_ACCESS_LOG: path.join(dir, 'access.log') }
  await writeFile(path.join(dir, 'nginx.conf'), (await run('sh', ['deploy/render-nginx.sh'], { env })).stdout)
  const check = await run('/usr/sbin/nginx', ['-t', '-p', dir, '-e', 'stderr', '-c', path.join(dir, 'nginx.conf')])
  t.match(check.stderr, /test is successful/, 'nginx -t accepts it')
})

t.test('nginx keeps /metrics inside, passes request ids on and tells the instances who the client is', async (t) => {
  for (const [i, url] of ['/metrics', '/metrics/', '//metrics', '/%6Detrics', '/metrics?format=json'].entries()) {
    const res = await get(url, { 'x-request-id': `metrics-${i}` })
    t.equal(res.status, 403, `${url} is refused`)
    t.match(JSON.parse(res.body), { code: 'FORBIDDEN', error: String }, 'in the API error shape')
  }
  const direct = await fetch(`${cluster.instances[0].base}/metrics`)
  t.equal(direct.status, 200, 'while each instance serves it on its own address, where Prometheus scrapes it')
  t.match(await direct.text(), /^# HELP /m, 'in the Prometheus text format')
  await eventually(() => accessLog('metrics-0'), 'the access log line')
  t.notOk(servedBy('metrics-0'), 'no instance saw the request')
  t.match(accessLog('metrics-0'), /" 403 .* upstream=- /, 'nginx answered it itself')

  // The client connects from 127.0.0.2 and claims another address: instances trust nginx's word only.
  const res = await get('/health/live', { 'x-request-id': 'who_am@i-1', 'x-forwarded-for': '203.0.113.9' }, '127.0.0.2')
  t.equal(res.status, 200)
  t.equal(res.headers['x-request-id'], 'who_am@i-1', "the caller's request id comes back, once")
  const instance = await eventually(() => servedBy('who_am@i-1'), 'the instance log line')
  const line = JSON.parse(instance.logs.find((l) => l.includes('"reqId":"who_am@i-1"') && l.includes('remoteAddress'))!)
  t.equal(line.req.remoteAddress, '127.0.0.2', 'the instance sees the real client address (TRUST_PROXY), not the claimed one')

  const generated = await get('/health/live', {})
  t.match(generated.headers['x-request-id'], /^[0-9a-f]{32}$/, 'a request without an id gets one from nginx')
  t.ok(await eventually(() => servedBy(generated.headers['x-request-id'] as string), 'its log line'), 'and the instance logs that id')
})

t.test('users on different instances chat; one instance is SIGKILLed; its clients resume elsewhere and lose nothing', async (t) => {
  const names = ['alice', 'bob', 'carol', 'dave']
  const users: { name: string; token: string; id: string }[] = []
  for (const name of names) {
    const res = await call(lb, 'POST', '/auth/register', undefined, { username: `${name}_lb_${process.pid}`, password: 'Passw0rd' })
    t.equal(res.status, 201, `${name} registered through nginx`)
    users.push({ name, token: res.body.access_token as string, id: res.body.user.id as string })
  }
  const [alice] = users
  const group = await call(lb, 'POST', '/conversations', alice.token, { is_group: true, name: 'Behind nginx', participant_ids: users.slice(1).map((u) => u.id) })
  t.equal(group.status, 201)
  const conv = group.body.id as string

  // Everyone's frames, across the sockets they go through; least_conn spreads the sockets over the instances.
  const sockets = new Map<string, { ws: WsClient; on: Instance }[]>()
  for (const u of users) sockets.set(u.name, [await connect(u.token, `ws-${u.name}-1`)])
  t.teardown(() => [...sockets.values()].flat().forEach((s) => s.ws.close()))
  const current = (name: string) => sockets.get(name)!.at(-1)!
  const where = new Set(users.map((u) => current(u.name).on.name))
  t.equal(where.size, 3, `the four sockets landed on all three instances (${[...where].join(', ')})`)

  const sent: { id: string; content: string }[] = []
  let ref = 0
  /** One message, by REST (any instance) or on the sender's socket, in turn; the next waits for this one's answer. */
  const send = async (name: string, content: string) => {
    const user = users.find((u) => u.name === name)!
    if (sent.length % 2 === 0) {
      const res = await call(lb, 'POST', '/messages', user.token, { conversation_id: conv, content })
      t.equal(res.status, 201, `${content}: 201`)
      sent.push(res.body)
    } else {
      const r = `m${++ref}`
      current(name).ws.send({ type: 'send', ref: r, conversation_id: conv, content })
      sent.push((await current(name).ws.next((f) => f.type === 'ack' && f.ref === r)).data)
    }
  }
  const received = (ws: WsClient, id: string) => ws.next((f) => f.type === 'new_message' && f.data.id === id)

  for (const u of users) await send(u.name, `hello from ${u.name} on ${current(u.name).on.name}`)
  for (const u of users) await received(current(u.name).ws, sent.at(-1)!.id)

  // The victim: an instance holding two of the sockets (four sockets, three instances).
  const victim = cluster.instances.find((i) => users.filter((u) => current(u.name).on === i).length >= 2)!
  const moved = users.filter((u) => current(u.name).on === victim).map((u) => u.name)
  const stayed = users.filter((u) => !moved.includes(u.name)).map((u) => u.name)
  const lastSeq = new Map(moved.map((name) => [name, Math.max(...current(name).ws.frames.filter((f) => f.conversation_id === conv && f.seq).map((f) => f.seq!))]))
  victim.proc.kill('SIGKILL')
  for (const name of moved) await current(name).ws.closedWith()
  t.pass(`${victim.name} killed; ${moved.join(' and ')} lost their sockets`)

  // Meanwhile the others chat on. nginx first picks the dead instance (it has the fewest connections),
  // cannot connect and passes the request, even a POST, to a live one.
  for (const [i, name] of [...stayed, ...stayed].entries()) await send(name, `while away ${i} from ${name}`)
  const deadAddress = new URL(victim.base).host
  const retried = await eventually(() => cluster.nginx.logs.find((l) => l.includes(`upstream=${deadAddress}, `)), 'a retried request in the access log')
  t.match(retried, /"POST \/messages HTTP\/1.1" 201 /, `a POST that met the dead instance was retried on another: ${retried}`)

  // The moved clients reconnect through nginx, which sends them elsewhere, and resume from their last seq.
  for (const name of moved) {
    const user = users.find((u) => u.name === name)!
    const again = await connect(user.token, `ws-${name}-2`)
    t.not(again.on, victim, `${name} reconnected, to ${again.on.name}`)
    sockets.get(name)!.push(again)
    again.ws.send({ type: 'resume', conversations: { [conv]: lastSeq.get(name) } })
    await again.ws.next((f) => f.type === 'resumed')
  }
  for (const name of [...moved, ...stayed]) await send(name, `after from ${name}`)
  for (const u of users) await received(current(u.name).ws, sent.at(-1)!.id)

  // Every user: every message exactly once, in order, across their sockets, and a log with no gap or repeat.
  for (const u of users) {
    const frames: Frame[] = sockets.get(u.name)!.flatMap((s) => s.ws.frames.filter((f) => f.conversation_id === conv && f.seq))
    t.same(
      frames.filter((f) => f.type === 'new_message').map((f) => f.data.id),
      sent.map((m) => m.id),
      `${u.name} (${sockets.get(u.name)!.map((s) => s.on.name).join(' then ')}) received all ${sent.length} messages once, in order`,
    )
    const seqs = frames.map((f) => f.seq!)
    t.same(seqs, Array.from({ length: seqs.length }, (_, i) => seqs[0] + i), `${u.name}: consecutive seqs`)
  }
})

t.test('npm run cluster: says where it listens, prefixes logs, and Ctrl+C stops it all in order', async (t) => {
  // One instance and its own nginx, on the database of the cluster above: no second PostgreSQL to wait for.
  const cli = spawn(process.execPath, ['--import', 'tsx', 'scripts/cluster.ts', '--instances', '1', '--port', '0'], {
    cwd: path.resolve(import.meta.dirname, '..'),
    env: { ...BASE_ENV, DATABASE_URL: cluster.databaseUrl },
    // Its own process group, as a command started in a terminal has.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => {
    if (cli.exitCode === null) process.kill(-cli.pid!, 'SIGKILL')
  })
  const lines: string[] = []
  for (const stream of [cli.stdout, cli.stderr]) createInterface({ input: stream }).on('line', (line) => lines.push(line))
  const url = await eventually(() => lines.map((l) => /behind nginx at (http:\/\/[\d.:]+)/.exec(l)?.[1]).find(Boolean), 'its address', 30_000)
  t.equal((await call(url, 'GET', '/health/ready')).status, 200, `ready at ${url}`)
  t.ok(lines.some((l) => l.startsWith('parley-1 | {')), "the instance's log lines, prefixed with its name")

  // Ctrl+C: the terminal signals the whole process group.
  const exited = once(cli, 'exit')
  process.kill(-cli.pid!, 'SIGINT')
  t.same(await exited, [0, null], 'exits with 0')
  t.ok(
    lines.some((l) => l.startsWith('parley-1 | ') && l.includes('SIGTERM received')),
    "the instance was stopped by the cluster's SIGTERM, in order, not by the terminal's SIGINT",
  )
  await t.rejects(fetch(`${url}/health/live`), 'nginx is gone')
})
