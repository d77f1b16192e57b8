// Outgoing webhooks (issue 17): registered by those who may, signed, delivered from graphile-worker's queue in
// PostgreSQL with the event's conversation_id and seq, retried, and disabled with a reason when they keep
// failing; never to a private address unless allowed; nothing of it in the send's way.
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import t from 'tap'
import { isPublicAddress, urlRefusal } from '../src/outgoing/address-guard.ts'
import { sign, verify } from '../src/outgoing/signature.ts'
import { buildApp } from '../src/app.ts'
import { assertError, buildTestApp, client, groupOf, JWT_SECRET, queuedJobs, register } from './helper.ts'
import { receiver } from './receiver.ts'

const ENV = { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_MAX_ATTEMPTS: '2', WEBHOOK_TIMEOUT_MS: '1000', JOBS_POLL_INTERVAL: '100', WEBHOOKS_PER_USER: '5' }

/** Waits until `test` holds, looking every 50 ms, for at most 30 s. */
async function eventually<T>(what: string, read: () => Promise<T>, test: (v: T) => boolean): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const v = await read()
    if (test(v)) return v
    await sleep(50)
  }
  throw new Error(`timed out waiting for ${what}`)
}


t.test('addresses: only the public internet, unless allowed', async (t) => {
  for (const ip of ['8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8']) t.ok(isPublicAddress(ip), `${ip} is public`)
  for (const ip of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '64:ff9b::a00:1', '224.0.0.1']) {
    t.notOk(isPublicAddress(ip), `${ip} is not`)
  }
  t.match(await urlRefusal('http://example.com/hook', false), /https/, 'plain http is refused')
  t.match(await urlRefusal('https://user:pw@example.com/', false), /credentials/)
  t.match(await urlRefusal('https://127.0.0.1/', false), /not a public address/)
  t.match(await urlRefusal('https://[::1]/', false), /not a public address/)
  t.match(await urlRefusal('https://localhost/', false), /not a public address/, 'a name is resolved, and its addresses checked')
  t.match(await urlRefusal('not a url', false), /not a URL/)
  t.equal(await urlRefusal('http://127.0.0.1:9/', true), undefined, 'WEBHOOK_ALLOW_PRIVATE lets a local receiver in')
  t.equal(await urlRefusal('https://localhost/', true), undefined)
  t.match(await urlRefusal('https://no-such-host.invalid/', true), /does not resolve/)
})

t.test('signatures: HMAC-SHA256 over "<t>.<body>", refused when changed or old', async (t) => {
  const now = Date.parse('2026-12-02T10:00:00Z')
  const header = sign('whsec_test', '{"a":1}', now)
  t.match(header, /^t=\d+,v1=[0-9a-f]{64}$/)
  t.ok(verify('whsec_test', '{"a":1}', header, 300, now))
  t.notOk(verify('whsec_test', '{"a":2}', header, 300, now), 'another body')
  t.notOk(verify('whsec_other', '{"a":1}', header, 300, now), 'another secret')
  t.notOk(verify('whsec_test', '{"a":1}', header, 300, now + 301_000), 'older than five minutes')
  t.notOk(verify('whsec_test', '{"a":1}', 'garbage', 300, now))
})

t.test('a private receiver is refused without WEBHOOK_ALLOW_PRIVATE', async (t) => {
  const { app } = await buildTestApp(t)
  const alice = await register(app)
  for (const url of ['http://127.0.0.1:8080/hook', 'https://127.0.0.1/hook', 'https://localhost/hook', 'https://[::1]/hook', 'https://169.254.169.254/latest']) {
    assertError(t, await client(app, alice).post('/webhooks', { url, events: ['new_message'] }), 400, 'URL_NOT_ALLOWED')
  }
})

t.test('registration: who may, what is shown, the limit', async (t) => {
  const { app } = await buildTestApp(t, ENV)
  const [admin, member, stranger] = await Promise.all([register(app), register(app), register(app)])
  const group = await groupOf(app, admin, [member])
  const body = { url: 'http://127.0.0.1:9/hook', events: ['new_message'], conversation_id: group }
  const made = await client(app, admin).post('/webhooks', body)
  t.equal(made.statusCode, 201)
  t.match(made.json(), { url: body.url, events: ['new_message'], conversation_id: group, disabled_at: null, secret: /^whsec_[\w-]{43}$/ })
  assertError(t, await client(app, member).post('/webhooks', body), 403, 'NOT_ADMIN')
  assertError(t, await client(app, stranger).post('/webhooks', body), 404, 'CONVERSATION_NOT_FOUND')
  assertError(t, await client(app, admin).post('/webhooks', { ...body, events: [] }), 400, 'VALIDATION_ERROR')
  assertError(t, await client(app, admin).post('/webhooks', { ...body, events: ['typing_indicator'] }), 400, 'VALIDATION_ERROR')
  const listed = (await client(app, admin).get('/webhooks')).json()
  t.equal(listed.length, 1)
  t.notOk('secret' in listed[0], 'the secret is shown once, when made')
  assertError(t, await client(app, member).get(`/webhooks/${made.json().id}`), 404, 'WEBHOOK_NOT_FOUND')
  assertError(t, await client(app, member).delete(`/webhooks/${made.json().id}`), 404, 'WEBHOOK_NOT_FOUND')
  for (let i = 0; i < 4; i++) t.equal((await client(app, admin).post('/webhooks', { url: body.url, events: ['new_message'] })).statusCode, 201)
  assertError(t, await client(app, admin).post('/webhooks', body), 409, 'TOO_MANY_WEBHOOKS')
  t.equal((await client(app, admin).delete(`/webhooks/${made.json().id}`)).statusCode, 204)
  t.equal((await client(app, admin).post('/webhooks', body)).statusCode, 201, 'room again after a delete')
})

t.test('deliveries: the event as the owner sees it, signed, once per event and type asked for', async (t) => {
  const rx = await receiver(t)
  const { app } = await buildTestApp(t, ENV)
  const [admin, bob, bot] = await Promise.all([register(app), register(app), register(app)])
  const group = await groupOf(app, admin, [bob])
  const groupHook = (await client(app, admin).post('/webhooks', { url: `${rx.base}/ok/group`, events: ['new_message', 'reaction_added'], conversation_id: group })).json()
  // The bot's account webhook: every direct conversation of the bot, none of its groups.
  const botHook = (await client(app, bot).post('/webhooks', { url: `${rx.base}/ok/bot`, events: ['new_message'] })).json()
  const direct = (await client(app, bob).post('/conversations', { participant_ids: [bot.user.id], is_group: false })).json().id
  await groupOf(app, bob, [bot], 'not for the bot')

  const sent = (await client(app, bob).post('/messages', { conversation_id: group, content: 'hello hooks' })).json()
  await client(app, admin).post(`/messages/${sent.id}/read`)
  await client(app, admin).post(`/messages/${sent.id}/reactions`, { emoji: '👍' })
  const dm = (await client(app, bob).post('/messages', { conversation_id: direct, content: 'hello bot' })).json()
  await rx.until(() => rx.to('/ok/group').length >= 2 && rx.to('/ok/bot').length >= 1, 'three deliveries')
  await eventually('the queue to empty', () => queuedJobs(app.db), (n) => n === 0)

  const group2 = rx.to('/ok/group')
  t.same(group2.map((r) => JSON.parse(r.body.toString()).type).sort(), ['new_message', 'reaction_added'], 'the types asked for, and no message_read')
  const delivery = group2.find((r) => JSON.parse(r.body.toString()).type === 'new_message')!
  const event = JSON.parse(delivery.body.toString())
  t.match(event, { type: 'new_message', conversation_id: group, seq: sent.seq, data: { id: sent.id, content: 'hello hooks', sender_id: bob.user.id } })
  t.equal(delivery.headers['parley-event-id'], `${group}:${sent.seq}`, 'the event id to dedupe by')
  t.equal(delivery.headers['content-type'], 'application/json')
  t.ok(verify(groupHook.secret, delivery.body.toString(), String(delivery.headers['parley-signature'])), 'signed with the secret')
  t.notOk(verify(botHook.secret, delivery.body.toString(), String(delivery.headers['parley-signature'])), 'not with another')
  t.same(rx.to('/ok/bot').map((r) => JSON.parse(r.body.toString()).data.id), [dm.id], "the bot's direct message only, not its group's")

  const shown = (await client(app, admin).get(`/webhooks/${groupHook.id}`)).json()
  t.equal(shown.deliveries.length, 2)
  t.match(shown.deliveries[0], { attempt: 1, status: 200, error: null })
  t.same(shown.deliveries.map((d: { event_id: string }) => d.event_id).sort(), [`${group}:${sent.seq}`, `${group}:${sent.seq + 2}`].sort(), 'each event once')
})

t.test('sending never waits: what is sent while no instance runs jobs is delivered by the next one that does', async (t) => {
  const rx = await receiver(t)
  const first = await buildTestApp(t, ENV)
  const [admin, bob] = await Promise.all([register(first.app), register(first.app)])
  const group = await groupOf(first.app, admin, [bob])
  await client(first.app, admin).post('/webhooks', { url: `${rx.base}/ok/later`, events: ['new_message'], conversation_id: group })
  // The instance with the worker goes (a restart); one without a worker takes the sends.
  await first.app.close()
  const workerless = await buildApp({ config: first.config, db: first.db, jwtSecret: JWT_SECRET })
  t.teardown(() => workerless.close())
  const ids: string[] = []
  for (let i = 0; i < 3; i++) ids.push((await client(workerless, bob).post('/messages', { conversation_id: group, content: `queued ${i}` })).json().id)
  t.equal(await queuedJobs(first.db), 3, 'three deliveries wait in PostgreSQL')
  t.equal(rx.received.length, 0, 'none made yet')
  // An instance with a worker, on the same database, delivers them.
  const next = await buildApp({ config: first.config, db: first.db, jwtSecret: JWT_SECRET, databaseUrl: first.url })
  t.teardown(() => next.close())
  await next.ready()
  await rx.until(() => rx.to('/ok/later').length >= 3, 'the queued deliveries')
  t.same(rx.to('/ok/later').map((r) => JSON.parse(r.body.toString()).data.id).sort(), [...ids].sort(), 'each once')
})

t.test('bad receivers cost nothing: each is retried, then disabled with a reason its owner reads', async (t) => {
  const rx = await receiver(t)
  const { app, db } = await buildTestApp(t, ENV)
  const [admin, bob] = await Promise.all([register(app), register(app)])
  const group = await groupOf(app, admin, [bob])
  const kinds = ['fail', 'slow', 'redirect', 'huge'] as const
  const hooks = Object.fromEntries(await Promise.all(kinds.map(async (k) => [k,
    (await client(app, admin).post('/webhooks', { url: `${rx.base}/${k}`, events: ['new_message'], conversation_id: group })).json().id as string])))
  const rssBefore = process.memoryUsage().rss
  const sent = await client(app, bob).post('/messages', { conversation_id: group, content: 'to bad receivers' })
  t.equal(sent.statusCode, 201, 'the send is answered at once, whatever the receivers do')
  const shown = async () => Promise.all(kinds.map(async (k) => (await client(app, admin).get(`/webhooks/${hooks[k]}`)).json()))
  const all = await eventually('all four disabled', shown, (list) => list.every((w) => w.disabled_at !== null))
  const byKind = Object.fromEntries(kinds.map((k, i) => [k, all[i]]))
  t.match(byKind.fail.disabled_reason, /^2 attempts to deliver .* failed; the last: HTTP 500: receiver broke$/)
  t.match(byKind.slow.disabled_reason, /no answer within 1000 ms/)
  t.match(byKind.redirect.disabled_reason, /HTTP 302 \(redirects are not followed: to http:\/\/127\.0\.0\.1:\d+\/ok\/redirected\)/)
  t.match(byKind.huge.disabled_reason, /HTTP 500/)
  for (const k of kinds) t.same(byKind[k].deliveries.map((d: { attempt: number }) => d.attempt), [2, 1], `${k}: tried twice (WEBHOOK_MAX_ATTEMPTS), newest first`)
  t.same(rx.to('/ok'), [], 'the redirect was not followed')
  t.equal(rx.to('/fail').length, 2)
  t.ok(process.memoryUsage().rss - rssBefore < 20 * 1024 * 1024, 'the 20 MB answers were not read')

  // Disabled, it gets nothing more: no job is even queued for it.
  await eventually('the queue to empty', () => queuedJobs(db), (n) => n === 0)
  await client(app, bob).post('/messages', { conversation_id: group, content: 'after' })
  t.equal(await queuedJobs(db), 0, 'nothing queued for disabled webhooks')
})

t.test('a webhook whose owner lost the right to it is disabled; an account deleted takes its webhooks along', async (t) => {
  const rx = await receiver(t)
  const { app, db } = await buildTestApp(t, ENV)
  const [admin, other, bob] = await Promise.all([register(app), register(app), register(app)])
  const group = await groupOf(app, admin, [other, bob])
  await client(app, admin).patch(`/conversations/${group}/participants/${other.user.id}`, { role: 'admin' })
  const hook = (await client(app, other).post('/webhooks', { url: `${rx.base}/ok/demoted`, events: ['new_message'], conversation_id: group })).json()
  await client(app, admin).patch(`/conversations/${group}/participants/${other.user.id}`, { role: 'member' })
  await client(app, bob).post('/messages', { conversation_id: group, content: 'not for a demoted admin' })
  const shown = await eventually('disabled', async () => (await client(app, other).get(`/webhooks/${hook.id}`)).json(), (w) => w.disabled_at !== null)
  t.equal(shown.disabled_reason, 'its owner is no longer an admin of the group')
  t.same(rx.to('/ok/demoted'), [], 'nothing delivered')

  await client(app, bob).post('/webhooks', { url: `${rx.base}/ok/bob`, events: ['new_message'] })
  t.equal((await client(app, bob).delete('/users/me')).statusCode, 204)
  t.equal(Number((await sql<{ n: string }>`SELECT count(*) AS n FROM webhooks WHERE owner_id = ${bob.user.id}`.execute(db)).rows[0].n), 0, "the deleted account's webhooks are gone")
})

t.test("the worker is woken through the instance's one LISTEN connection, and keeps none of its own", async (t) => {
  const rx = await receiver(t)
  // A poll a minute apart: a delivery sooner than that was woken by the queue's announcement.
  const { app, db } = await buildTestApp(t, { ...ENV, JOBS_POLL_INTERVAL: '60000' })
  const [admin, bob] = await Promise.all([register(app), register(app)])
  const group = await groupOf(app, admin, [bob])
  await client(app, admin).post('/webhooks', { url: `${rx.base}/ok/woken`, events: ['new_message'], conversation_id: group })
  for (let i = 0; i < 3; i++) {
    await client(app, bob).post('/messages', { conversation_id: group, content: `wake ${i}` })
    await rx.until(() => rx.to('/ok/woken').length === i + 1, `delivery ${i + 1}`, 20_000)
  }
  // Every NOTIFY wakes every backend listening in the database, on whatever channel: one listener per instance.
  const listening = await sql<{ application_name: string }>`
    SELECT application_name FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'`.execute(db)
  t.same(listening.rows.map((r) => r.application_name), ['parley-listener'])
})
