import pg from 'pg'
import t from 'tap'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { createDatabase } from '../src/database.ts'
import { buildLiveApp, dropListener, buildTestApp, client, JWT_SECRET, register } from './helper.ts'

// GET /metrics after real traffic: HTTP requests, a socket, a message delivered, a dropped listener.

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** Prometheus text format → samples (comments skipped). */
function parse(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) continue
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v
    samples.push({ name: m[1], labels, value: Number(m[3]) })
  }
  return samples
}

async function live(t: Parameters<typeof buildTestApp>[0], env: Record<string, string> = {}) {
  const ctx = await buildLiveApp(t, env)
  const { base } = ctx
  /** Scrapes over HTTP; `get(name, labels)` is the value of the one sample that matches (undefined if none). */
  const scrape = async () => {
    const res = await fetch(`${base}/metrics`)
    if (res.status !== 200) throw new Error(`GET /metrics: ${res.status}`)
    const text = await res.text()
    const samples = parse(text)
    const find = (name: string, labels: Record<string, string> = {}) =>
      samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    const get = (name: string, labels?: Record<string, string>) => {
      const found = find(name, labels)
      if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`)
      return found[0]?.value
    }
    return { text, samples, find, get, contentType: res.headers.get('content-type') }
  }
  return { ...ctx, scrape }
}

/** Polls a scrape until `test` holds of it. */
async function eventually<T>(scrape: () => Promise<T>, test: (m: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const m = await scrape()
    if (test(m) || Date.now() > deadline) return m
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test('/metrics after HTTP requests and a delivered message', async (t) => {
  const { app, base, url, open, scrape } = await live(t)
  const [alice, bob] = [await register(app), await register(app)]
  const conv = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id

  const first = await scrape()
  t.match(first.contentType, /^text\/plain; version=0\.0\.4/, 'Prometheus text format')
  t.ok(first.get('process_cpu_user_seconds_total')! > 0, 'default process metrics')
  t.ok(first.find('nodejs_eventloop_lag_seconds').length === 1, 'event loop lag')

  // Real HTTP requests: a route with a parameter, and one that matches no route.
  const got = await fetch(`${base}/conversations/${conv}`, { headers: { authorization: `Bearer ${alice.token}` } })
  t.equal(got.status, 200)
  t.equal((await fetch(`${base}/no/such/${conv}`)).status, 404)

  // The notification carries the time of the change.
  const listen = new pg.Client({ connectionString: url })
  await listen.connect()
  t.teardown(() => listen.end())
  const heard = new Promise<any>((resolve) => listen.on('notification', (n) => resolve(JSON.parse(n.payload!))))
  await listen.query('LISTEN parley_events')

  const ws = await open(bob)
  const sockets = await eventually(scrape, (m) => m.get('parley_ws_open_sockets') === 1)
  t.equal(sockets.get('parley_ws_open_sockets'), 1, 'one socket open')
  const before = await scrape()
  const framesBefore = before.get('parley_ws_frames_sent_total', { type: 'new_message' }) ?? 0
  const eventsBefore = before.get('parley_listener_events_total')!
  const lagBefore = before.get('parley_listener_lag_seconds_count')!

  const sentAt = Date.now()
  const msg = (await client(app, alice).post('/messages', { conversation_id: conv, content: 'measured' })).json()
  await ws.next((f) => f.type === 'new_message' && f.data?.id === msg.id)
  const note = await heard
  t.equal(note.seq, msg.seq)
  t.ok(Math.abs(note.ts - sentAt) < 5000, 'the notification says when the change was made (epoch ms)')
  const { rows } = await listen.query('SELECT payload FROM conversation_events WHERE conversation_id = $1 AND seq = $2', [conv, msg.seq])
  t.notOk('ts' in rows[0].payload, 'the time is in the notification only, not in the stored event')

  const after = await eventually(scrape, (m) => m.get('parley_listener_lag_seconds_count')! > lagBefore)
  t.ok(after.get('parley_ws_frames_sent_total', { type: 'new_message' })! > framesBefore, 'frames sent, by type')
  t.ok(after.get('parley_listener_events_total')! > eventsBefore, 'events handed on')
  t.ok(after.get('parley_listener_lag_seconds_count')! > lagBefore, 'the lag histogram has the delivery')
  const lagSum = after.get('parley_listener_lag_seconds_sum')!
  t.ok(lagSum >= 0 && lagSum < 10, `plausible lag (${lagSum} s in all)`)
  t.ok(after.get('parley_listener_lag_seconds_bucket', { le: '+Inf' })! >= 1)

  // Route patterns, never raw URLs.
  t.equal(after.get('parley_http_request_duration_seconds_count', { method: 'GET', route: '/conversations/:id', status_code: '200' }), 1)
  t.equal(after.get('parley_http_request_duration_seconds_count', { method: 'POST', route: '/messages', status_code: '201' }), 1)
  t.equal(after.get('parley_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status_code: '404' }), 1)
  t.notOk(after.text.includes(conv), 'no conversation id in any label')
  t.ok(after.find('parley_http_request_duration_seconds_bucket', { route: '/conversations/:id', le: '0.005' }).length === 1, 'buckets')

  // Queue and pool, read at scrape time.
  const usage = after.get('parley_pg_notification_queue_usage')!
  t.ok(usage >= 0 && usage < 1, `notification queue usage ${usage}`)
  const [total, idle, waiting, max] = ['clients', 'idle_clients', 'waiting_requests', 'max_clients'].map((n) => after.get(`parley_db_pool_${n}`)!)
  t.equal(max, 5, 'the pool size of the test app')
  t.ok(total >= 1 && total <= max, `pool clients ${total}`)
  t.ok(idle >= 0 && idle <= total, `idle ${idle}`)
  t.equal(waiting, 0, 'nothing waits for a connection')
  t.equal(after.get('parley_listener_connected'), 1)

  ws.close()
  const closed = await eventually(scrape, (m) => m.get('parley_ws_open_sockets') === 0)
  t.equal(closed.get('parley_ws_open_sockets'), 0, 'the socket is gone')

  const spec = (await app.inject('/openapi.json')).json()
  t.notOk('/metrics' in spec.paths, 'not in the public API document')
})

t.test('a dropped listener shows as disconnected, then as one replay', async (t) => {
  const { app, url, open, scrape } = await live(t, { LISTENER_PROBE_INTERVAL: '200' })
  const [alice, bob] = [await register(app), await register(app)]
  const conv = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id
  const ws = await open(bob)
  await ws.sync()
  const before = await scrape()
  t.equal(before.get('parley_listener_replays_total'), 0)
  t.equal(before.get('parley_listener_connected'), 1)

  await dropListener(t, app, url)
  t.equal((await scrape()).get('parley_listener_connected'), 0, 'disconnected')
  // Sent while the listener is down: delivered by the replay, from the log (no notification time: the row's).
  const msg = (await client(app, alice).post('/messages', { conversation_id: conv, content: 'missed' })).json()
  await ws.next((f) => f.data?.id === msg.id)
  const after = await eventually(scrape, (m) => m.get('parley_listener_connected') === 1)
  t.equal(after.get('parley_listener_replays_total'), 1, 'one replay')
  t.equal(after.get('parley_listener_connected'), 1, 'connected again')
  t.ok(after.get('parley_listener_lag_seconds_count')! >= 1, 'a replayed event has a lag too')
})

t.test('each app has its own registry', async (t) => {
  const one = await buildTestApp(t)
  const two = await buildTestApp(t)
  await one.app.inject('/health/live')
  await one.app.inject('/health/live')
  const count = async (app: typeof one.app) =>
    parse((await app.inject('/metrics')).body).find((s) => s.name === 'parley_http_request_duration_seconds_count' && s.labels.route === '/health/live')?.value
  t.equal(await count(one.app), 2)
  t.equal(await count(two.app), undefined, 'the other app counted nothing')
})

t.test('a database that does not answer leaves the scrape working', async (t) => {
  // No listener either (no databaseUrl): the realtime metrics read as nothing yet.
  const { db } = createDatabase('postgres://nobody@127.0.0.1:1/nothing', 2)
  const app = await buildApp({ config: loadConfig({ NODE_ENV: 'test' }), db, jwtSecret: JWT_SECRET })
  t.teardown(async () => {
    await app.close()
    await db.destroy()
  })
  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  const samples = parse(res.body)
  const get = (name: string) => samples.find((s) => s.name === name)?.value
  t.ok(Number.isNaN(get('parley_pg_notification_queue_usage')), 'queue usage unknown: NaN')
  t.equal(get('parley_db_pool_max_clients'), 2)
  t.equal(get('parley_ws_open_sockets'), 0)
  t.equal(get('parley_listener_connected'), 0)
  t.equal(get('parley_listener_events_total'), 0)
  t.ok(get('process_resident_memory_bytes')! > 0, 'process metrics still there')
})

t.test('request ids: a plain X-Request-Id is kept and echoed, anything else replaced by a UUID', async (t) => {
  const { app } = await buildTestApp(t)
  const kept = await app.inject({ url: '/health/live', headers: { 'x-request-id': 'lb-1234.abc' } })
  t.equal(kept.headers['x-request-id'], 'lb-1234.abc')
  const made = await app.inject('/health/live')
  t.match(made.headers['x-request-id'], /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
  const odd = await app.inject({ url: '/health/live', headers: { 'x-request-id': 'x'.repeat(200) } })
  t.match(odd.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'too long: replaced')
  const notFound = await app.inject({ url: '/nowhere', headers: { 'x-request-id': 'lb-404' } })
  t.equal(notFound.headers['x-request-id'], 'lb-404', 'on a 404 too')
})
