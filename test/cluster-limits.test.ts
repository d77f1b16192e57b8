import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import pg from 'pg'
import t, { type Test } from 'tap'
import { migrateToLatest } from '../db/migrate.ts'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { createDatabase } from '../src/database.ts'
import { assertError, JWT_SECRET, testDatabase, type TestApp, uniqueName } from './helper.ts'
import { type Instance, startServer, stopServer } from './processes.ts'

// Issue 13, point 2: the rate limits hold for the cluster, not for each instance. Three real instances
// (separate processes) on one real PostgreSQL; a client spreads its requests over them round-robin.
// The global limit is shared out (each instance allows RATE_LIMIT_MAX ÷ the live instances, rounded down), so a
// client spread evenly gets at most the limit and at least the limit less one per instance; the other limits are
// one count in PostgreSQL, so they are exact.

const GLOBAL = 30
const AUTH = 6
const PER_USERNAME = 4
const ENV = {
  JWT_SECRET: 'cluster-secret-that-is-at-least-32-chars',
  PRESENCE_HEARTBEAT: '200',
  PRESENCE_TTL: '3000',
  LISTENER_PROBE_INTERVAL: '500',
  // Each request says which client it is for (X-Forwarded-For), as a load balancer would.
  TRUST_PROXY: '127.0.0.1',
  RATE_LIMIT_MAX: String(GLOBAL),
  AUTH_RATE_LIMIT_MAX: String(AUTH),
  LOGIN_RATE_LIMIT_PER_USERNAME: String(PER_USERNAME),
}

let ips = 0
/** A client address of its own. */
const newIp = () => `10.13.${Math.floor(++ips / 250)}.${(ips % 250) + 1}`

interface Answer {
  status: number
  headers: Headers
  body: any
}

async function request(base: string, method: string, url: string, opts: { token?: string; ip?: string; body?: unknown } = {}): Promise<Answer> {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: {
      'x-forwarded-for': opts.ip ?? '10.13.255.1',
      ...(opts.token && { authorization: `Bearer ${opts.token}` }),
      ...(opts.body !== undefined && { 'content-type': 'application/json' }),
    },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined }
}

/** Resolves once `probe` returns true; polls, since which instance sees what and when is not ours to time. */
async function until(probe: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  for (const deadline = Date.now() + ms; !(await probe()); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function register(base: string) {
  const res = await request(base, 'POST', '/auth/register', { ip: newIp(), body: { username: uniqueName('cl'), password: 'Passw0rd' } })
  if (res.status !== 201) throw new Error(`register: ${res.status} ${JSON.stringify(res.body)}`)
  return { token: res.body.access_token as string, username: res.body.user.username as string }
}

/** Sends `count` requests round-robin over `instances`; returns each answer's status, in order. */
async function roundRobin(instances: Instance[], count: number, send: (base: string, i: number) => Promise<Answer>) {
  const answers: Answer[] = []
  for (let i = 0; i < count; i++) answers.push(await send(instances[i % instances.length].base, i))
  return answers
}

const allowed = (answers: Answer[]) => answers.filter((a) => a.status !== 429).length

function assertLimited(t: Test, answers: Answer[]) {
  const refused = answers.filter((a) => a.status === 429)
  t.ok(refused.length > 0, 'some were refused')
  t.ok(refused.every((a) => a.body?.code === 'RATE_LIMITED' && /^[1-9][0-9]*$/.test(a.headers.get('retry-after') ?? '')), 'each refusal: RATE_LIMITED, with Retry-After')
}

t.test('three instances on one database', async (t) => {
  const url = await testDatabase(t)
  const instances = await Promise.all([0, 1, 2].map(() => startServer(t, { ...ENV, DATABASE_URL: url })))

  // The share an instance gives each client now, as its answers say (x-ratelimit-limit); a 429 says it too.
  const probe = await register(instances[0].base)
  const share = async (instance: Instance) => Number((await request(instance.base, 'GET', '/users/me', { token: probe.token })).headers.get('x-ratelimit-limit'))
  const shares = (list: Instance[]) => Promise.all(list.map(share))
  await until(async () => (await shares(instances)).every((s) => s === GLOBAL / 3), 'every instance to count three')

  t.test('the global limit: a client spread round-robin gets the limit, not three times it', async (t) => {
    const alice = await register(instances[1].base)
    const answers = await roundRobin(instances, 3 * GLOBAL, (base) => request(base, 'GET', '/users/me', { token: alice.token }))
    const got = allowed(answers)
    t.ok(got <= GLOBAL && got >= GLOBAL - 2, `${got} of ${3 * GLOBAL} answered (limit ${GLOBAL}, tolerance: one less per instance)`)
    assertLimited(t, answers)
  })

  t.test('the auth limit per IP: exact, whichever instance takes the attempt', async (t) => {
    const ip = newIp()
    const answers = await roundRobin(instances, 3 * AUTH, (base) => request(base, 'POST', '/auth/refresh', { ip, body: { refresh_token: 'not-a-real-one' } }))
    t.equal(allowed(answers), AUTH, `${AUTH} answered (401), the rest refused`)
    t.same(answers.slice(0, AUTH).map((a) => a.status), Array(AUTH).fill(401), 'the first ones, on every instance')
    assertLimited(t, answers)
    t.equal((await request(instances[2].base, 'POST', '/auth/refresh', { ip: newIp(), body: { refresh_token: 'x' } })).status, 401, 'another IP is not affected')
  })

  t.test('the login limit per username: exact across instances and addresses', async (t) => {
    const victim = await register(instances[0].base)
    const answers = await roundRobin(instances, 3 * PER_USERNAME, (base, i) =>
      request(base, 'POST', '/auth/login', { ip: newIp(), body: { username: i % 2 ? victim.username.toUpperCase() : victim.username, password: 'Wrong-pass1' } }))
    t.same(answers.map((a) => a.status), [...Array(PER_USERNAME).fill(401), ...Array(2 * PER_USERNAME).fill(429)], `${PER_USERNAME} guesses, from new addresses, over three instances`)
    assertLimited(t, answers)
    const right = await request(instances[1].base, 'POST', '/auth/login', { ip: newIp(), body: { username: victim.username, password: 'Passw0rd' } })
    assertError(t, { statusCode: right.status, json: () => right.body }, 429, 'RATE_LIMITED')
    t.equal((await request(instances[2].base, 'GET', '/users/me', { token: victim.token })).status, 200, "the account's open session is not affected")
  })

  t.test('the keys are stored as HMACs: no address or username in the table', async (t) => {
    const db = new pg.Client({ connectionString: url })
    await db.connect()
    t.teardown(() => db.end())
    const { rows } = await db.query<{ key: string }>('SELECT key FROM rate_limits')
    t.ok(rows.length >= 3, `${rows.length} counters`)
    t.same(rows.filter((r) => /10\.13\.|cl_|ip:|user:/i.test(r.key)), [], 'none names a client')
  })

  t.test('when an instance dies, its heartbeat expires and the others share its part out', async (t) => {
    const [a, b, c] = instances
    await stopServer(c.proc, 'SIGKILL')
    await until(async () => (await shares([a, b])).every((s) => s === GLOBAL / 2), 'the two left to count two')
    const bob = await register(a.base)
    const answers = await roundRobin([a, b], 2 * GLOBAL, (base) => request(base, 'GET', '/users/me', { token: bob.token }))
    const got = allowed(answers)
    t.ok(got <= GLOBAL && got >= GLOBAL - 1, `${got} of ${2 * GLOBAL} answered by the two left (limit ${GLOBAL})`)
  })
})

/** Instances in this process on one database, without the realtime plugin: `inject` picks the instance. */
async function instancesOn(t: Test, count: number, env: Record<string, string>): Promise<TestApp[]> {
  const url = await testDatabase(t)
  const config = loadConfig({ NODE_ENV: 'test', DATABASE_URL: url, JWT_SECRET, ...env })
  const apps: TestApp[] = []
  for (let i = 0; i < count; i++) {
    const { db } = createDatabase(url, 3)
    if (i === 0) await migrateToLatest(db)
    const app = await buildApp({ config, db, jwtSecret: JWT_SECRET })
    t.teardown(async () => {
      await app.close()
      await db.destroy()
    })
    apps.push(app)
  }
  return apps
}

const inject = (app: TestApp, method: 'GET' | 'POST' | 'PATCH', url: string, token?: string, payload?: Record<string, unknown>) =>
  app.inject({ method, url, ...(token && { headers: { authorization: `Bearer ${token}` } }), ...(payload && { payload }) })

async function registerOn(app: TestApp) {
  const res = await app.inject({ method: 'POST', url: '/auth/register', remoteAddress: newIp(), payload: { username: uniqueName('pg'), password: 'Passw0rd' } })
  return res.json().access_token as string
}

t.test('RATE_LIMIT_STORE=postgres: the global limit is one exact count, REST and WebSocket budget alike', async (t) => {
  const [a, b] = await instancesOn(t, 2, { RATE_LIMIT_STORE: 'postgres', RATE_LIMIT_MAX: '7' })
  const token = await registerOn(a)
  const statuses: number[] = []
  for (let i = 0; i < 10; i++) statuses.push((await inject(i % 2 ? b : a, 'GET', '/users/me', token)).statusCode)
  t.same(statuses, [...Array(7).fill(200), 429, 429, 429], 'seven over two instances, then refused on both')
  const limited = await inject(a, 'GET', '/users/me', token)
  t.equal(limited.headers['x-ratelimit-limit'], '7', 'each instance shows the whole limit')
  t.match(limited.headers['retry-after'], /^[1-9][0-9]*$/)
  const userId = (a.jwt.decode(token) as { sub: string }).sub
  t.match(await b.spendBudget(userId), { allowed: false }, 'a WebSocket frame finds the same budget spent')
  t.match(await a.spendBudget(randomUUID()), { allowed: true }, "another user's is whole")
})

t.test('the other shared limits hold across instances: current_password checks, exports, uploads', async (t) => {
  const [a, b] = await instancesOn(t, 2, { LOGIN_RATE_LIMIT_PER_USERNAME: '2', EXPORT_RATE_LIMIT_MAX: '1', UPLOAD_RATE_MAX: '1' })
  const token = await registerOn(a)
  const wrong = { display_name: 'x', current_password: 'Wrong-pass1', password: 'Newpass123' }
  t.same([(await inject(a, 'PATCH', '/users/me', token, wrong)).statusCode, (await inject(b, 'PATCH', '/users/me', token, wrong)).statusCode], [403, 403], 'wrong, twice, on two instances')
  assertError(t, await inject(a, 'PATCH', '/users/me', token, wrong), 429, 'RATE_LIMITED')
  t.equal((await inject(b, 'PATCH', '/users/me', token, { display_name: 'no password asked' })).statusCode, 200, 'a change without current_password is not counted')

  t.equal((await inject(b, 'GET', '/users/me/export', token)).statusCode, 200)
  assertError(t, await inject(a, 'GET', '/users/me/export', token), 429, 'RATE_LIMITED')

  const upload = (app: TestApp) => app.inject({
    method: 'POST',
    url: '/users/me/avatar',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'multipart/form-data; boundary=x' },
    payload: '--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n\r\n--x--\r\n',
  })
  t.not((await upload(a)).statusCode, 429, 'one upload attempt (empty: refused, but counted)')
  const refused = await upload(b)
  assertError(t, refused, 429, 'RATE_LIMITED')
  t.match(refused.json().error, /Too many uploads/)
})

t.test('when the shared count cannot be read, the attempt fails: a limit that fails open is no limit', async (t) => {
  const [a] = await instancesOn(t, 1, {})
  await sql`DROP TABLE rate_limits`.execute(a.db)
  const res = await a.inject({ method: 'POST', url: '/auth/login', remoteAddress: newIp(), payload: { username: 'anyone', password: 'Passw0rd' } })
  assertError(t, res, 500)
})
