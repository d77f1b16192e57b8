import { execFile, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import YAML from 'yaml'
import { type Instance, startCluster } from '../scripts/cluster.ts'
import { freePort } from '../src/database.ts'
import { BASE_ENV, call } from './processes.ts'
import { type Frame, WsClient } from './ws-client.ts'

// `npm run cluster`'s topology: three instances behind Debian's nginx (the config docker-compose.yml uses),
// one PostgreSQL. Clients talk to the load balancer only. Which instance served a request is read from the
// instances' own logs: nginx passes the client's X-Request-Id on, and each instance logs it as reqId.
// Where nginx's retries hang on how an instance fails, stand-in instances fail exactly that way.

const cluster = await startCluster({ instances: 3, env: { ...BASE_ENV, LOG_LEVEL: 'info' } })
t.teardown(() => cluster.stop())
const lb = cluster.url

/** Resolves with what `probe` returns once it returns something; the logs arrive through pipes, a little late. */
async function eventually<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, ms = 5000): Promise<T> {
  for (const deadline = Date.now() + ms; ; ) {
    const found = await probe()
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

/**
 * A send as a real client makes it: a 502, 503 or 504, or no answer at all, leaves it unknown whether the
 * message landed, so the client sends it again with the same client_id; the server answers a retry of a
 * send that landed with the first message, with 200.
 */
async function sendWithRetries(token: string, body: { client_id: string } & Record<string, unknown>) {
  for (let attempts = 1; ; attempts++) {
    const res = await call(lb, 'POST', '/messages', token, body).catch((err: Error) => ({ status: 0, body: err.message }))
    if (![0, 502, 503, 504].includes(res.status) || attempts === 5) return { ...res, attempts }
    await new Promise((resolve) => setTimeout(resolve, 200 * attempts))
  }
}

/**
 * A stand-in for an instance, recording what reaches it. It answers 200, but drops /drop unanswered, as an
 * instance that dies after reading a request; with `dropReused`, it drops every request on a connection that
 * carried one before, as nginx finds a pooled connection whose instance has died.
 */
async function stubInstance(t: Test, opts: { dropReused?: boolean } = {}) {
  const seen: { method: string; url: string; reused: boolean }[] = []
  const used = new WeakSet<object>()
  const server = http.createServer((req, res) => {
    const reused = used.has(req.socket)
    used.add(req.socket)
    seen.push({ method: req.method!, url: req.url!, reused })
    if (req.url === '/drop' || (reused && opts.dropReused)) return req.socket.destroy()
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
  })
  // Node closes an idle connection after 5 s, nginx after 60: a slow run must not lose the pooled one.
  server.keepAliveTimeout = 0
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

/** nginx from the template, rendered as compose and the cluster render it, in front of `upstreams`. */
async function nginxInFrontOf(t: Test, upstreams: string[]) {
  const dir = await mkdtemp(path.join(tmpdir(), 'parley-nginx-'))
  // Started as root, nginx's workers run as another user, who must reach the temporary files in here.
  await chmod(dir, 0o755)
  const port = await freePort()
  const env = { PATH: process.env.PATH, PARLEY_LISTEN: `127.0.0.1:${port}`, PARLEY_UPSTREAMS: upstreams.join(' '), PARLEY_RUN_DIR: dir, PARLEY_ACCESS_LOG: path.join(dir, 'access.log') }
  await writeFile(path.join(dir, 'nginx.conf'), (await promisify(execFile)('sh', ['deploy/render-nginx.sh'], { env })).stdout)
  const proc = spawn(process.env.NGINX ?? '/usr/sbin/nginx', ['-p', dir, '-e', 'stderr', '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] })
  const errors: string[] = []
  for (const stream of [proc.stdout!, proc.stderr!]) createInterface({ input: stream }).on('line', (line) => errors.push(line))
  t.teardown(async () => {
    const exited = once(proc, 'exit')
    proc.kill('SIGTERM')
    await exited
    await rm(dir, { recursive: true, force: true })
  })
  await eventually(() => existsSync(path.join(dir, 'nginx.pid')) || undefined, 'nginx to start')
  const access = async () => (await readFile(path.join(dir, 'access.log'), 'utf8').catch(() => '')).split('\n').filter(Boolean)
  return { url: `http://127.0.0.1:${port}`, logs: async () => [...(await access()), ...errors] }
}

/** One request, on `agent`'s connection when given; a POST carries `{}`. */
function request(url: string, method: string, agent?: http.Agent, requestId?: string) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const headers = { ...(requestId && { 'x-request-id': requestId }), ...(method === 'POST' && { 'content-type': 'application/json' }) }
    const req = http.request(url, { method, agent, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode!, body }))
    })
    req.on('error', reject).end(method === 'POST' ? '{}' : undefined)
  })
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
  /** How each REST send was made, to make it again. */
  const made = new Map<string, { token: string; body: { conversation_id: string; content: string; client_id: string } }>()
  let ref = 0
  /** One message, by REST (any instance) or on the sender's socket, in turn; the next waits for this one's answer. */
  const send = async (name: string, content: string) => {
    const user = users.find((u) => u.name === name)!
    if (sent.length % 2 === 0) {
      const body = { conversation_id: conv, content, client_id: randomUUID() }
      const res = await sendWithRetries(user.token, body)
      t.ok(res.status === 201 || (res.status === 200 && res.attempts > 1), `${content}: ${res.status} after ${res.attempts} attempt(s)`)
      sent.push(res.body)
      made.set(res.body.id, { token: user.token, body })
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

  // Meanwhile the others chat on. Whichever instance nginx picks for a send, the client's retry with the
  // same client_id makes it land exactly once (checked in the history below).
  for (const [i, name] of [...stayed, ...stayed].entries()) await send(name, `while away ${i} from ${name}`)
  // A send whose answer was lost on the way back, sent again: the first message, once.
  const landed = sent.filter((m) => made.has(m.id)).at(-1)!
  const again = await sendWithRetries(made.get(landed.id)!.token, made.get(landed.id)!.body)
  t.same([again.status, again.body.id], [200, landed.id], 'a send made again with the same client_id after it landed returns the first message, with 200')

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

  // The history holds every message exactly once: no retry made a second one.
  const history = await call(lb, 'GET', `/conversations/${conv}/messages?limit=100`, alice.token)
  t.same(
    history.body.filter((m: { message_type: string }) => m.message_type !== 'system').map((m: { content: string }) => m.content).sort(),
    sent.map((m) => m.content).sort(),
    `the history holds each of the ${sent.length} messages exactly once`,
  )

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

t.test("nginx's logs hold no credential from a URL: not a socket's ?token=, not a file link's", async (t) => {
  const { access_token: token } = (await call(lb, 'POST', '/auth/register', undefined, { username: `erin_lb_${process.pid}`, password: 'Passw0rd' })).body
  // As a browser opens its socket, and as an <img src> carries a token: in the query.
  const { ws } = await connect(token, 'ws-with-token')
  ws.close()
  const file = `/files/${randomUUID()}`
  await get(`${file}?token=${token}`, { 'x-request-id': 'file-with-token' })
  t.match(await eventually(() => accessLog('ws-with-token'), "the socket's access log line"), '"GET /ws? HTTP/1.1" 101 ', 'the access log keeps the path, and shows a query was there')
  t.match(await eventually(() => accessLog('file-with-token'), "the file's access log line"), `"GET ${file}? HTTP/1.1" `)

  // Every line nginx wrote in this file, access and error log alike, the SIGKILL test's reconnections included.
  const leaks = cluster.nginx.logs.filter((l) => l.includes(token) || /eyJ[\w-]+\.[\w-]+\.[\w-]+|[?&](token|sig)=/.test(l))
  t.same(leaks, [], 'no token, nor a signed link, in any line')
})

t.test('nginx and a pooled connection whose instance died: a GET is sent again, a POST never travels on one', async (t) => {
  const instance = await stubInstance(t, { dropReused: true })
  const nginx = await nginxInFrontOf(t, [instance.host])
  // One client connection, so one nginx worker, whose pool keeps the connection to the instance.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const send = (method: string, url: string) => request(`${nginx.url}${url}`, method, agent)
  t.equal((await send('GET', '/health/live')).status, 200, 'a first GET opens a connection, which nginx then keeps')

  for (const url of ['/ws?token=SECRET-1', '/files/f1?token=SECRET-2']) {
    const from = instance.seen.length
    t.equal((await send('GET', url)).status, 200, `GET ${url.split('?')[0]} answered`)
    t.same(instance.seen.slice(from).map((r) => r.reused), [true, false], 'sent on the pooled connection, which failed, then again on a new one')
  }
  const from = instance.seen.length
  t.equal((await send('POST', '/messages')).status, 200, 'a POST answered: it did not meet the dead pooled connection')
  t.same(instance.seen.slice(from), [{ method: 'POST', url: '/messages', reused: false }], 'it went on a connection of its own, once')

  const lines = await eventually(async () => {
    const all = await nginx.logs()
    return all.filter((l) => l.includes('request_id=')).length >= 4 ? all : undefined
  }, 'the access log')
  t.same(lines.filter((l) => l.includes('SECRET')), [], "neither the access log nor the error log holds a URL's token")
})

t.test("nginx passes what never reached an instance to the next one, and never sends a POST twice", async (t) => {
  const [a, b] = [await stubInstance(t), await stubInstance(t)]
  const dead = `127.0.0.1:${await freePort()}`
  const nginx = await nginxInFrontOf(t, [a.host, b.host, dead])
  const seen = (url: string) => [...a.seen, ...b.seen].filter((r) => r.url === url)

  // least_conn takes the three in turn: within three POSTs one meets the dead instance, refused before anything is sent.
  for (let i = 0; i < 3; i++) t.equal((await request(`${nginx.url}/messages?n=${i}`, 'POST', undefined, `post-${i}`)).status, 200, `POST ${i} answered`)
  t.equal(seen('/messages?n=0').length + seen('/messages?n=1').length + seen('/messages?n=2').length, 3, 'each reached an instance once')
  const lines = await eventually(async () => {
    const all = await nginx.logs()
    return all.filter((l) => l.includes('request_id=post-')).length === 3 ? all : undefined
  }, 'the access log')
  t.ok(lines.some((l) => /"POST \/messages\? HTTP\/1.1" 200 .* upstream=\S+, /.test(l) && l.includes(`upstream=${dead}, `)), 'one was refused by the dead instance and passed to a live one')

  // An instance that read the request and died before answering.
  const post = await request(`${nginx.url}/drop`, 'POST')
  t.equal(post.status, 502, 'a POST that may have reached an instance: 502, for the client to retry with its client_id')
  t.match(JSON.parse(post.body), { code: 'SERVICE_UNAVAILABLE' }, 'in the API error shape')
  t.equal(seen('/drop').length, 1, 'not sent to another instance')
  t.equal((await request(`${nginx.url}/drop`, 'GET')).status, 502)
  t.equal(seen('/drop').filter((r) => r.method === 'GET').length, 2, 'a GET in the same case is sent to the other live instance too')
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
