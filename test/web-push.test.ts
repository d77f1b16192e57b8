// Web Push (issue 17): a browser subscribes; a new message for a member connected nowhere sends it a notification,
// encrypted for that browser (RFC 8291) and signed with the server's VAPID key (RFC 8292). Here the "browser" is
// a P-256 key pair and an auth secret made by the test, and the "push service" a local receiver; the test decrypts
// what it received with the browser's private key, as the browser would.
import { createECDH, createPublicKey, randomBytes, verify as verifySignature } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import * as ece from 'http_ece'
import t, { type Test } from 'tap'
import webPush from 'web-push'
import type { DB } from '../src/database.ts'
import { assertError, buildLiveApp, buildTestApp, client, groupOf, queuedJobs, register, type Session } from './helper.ts'
import { type Received, receiver } from './receiver.ts'

const vapid = webPush.generateVAPIDKeys()
const ENV = {
  WEBHOOK_ALLOW_PRIVATE: 'true', JOBS_POLL_INTERVAL: '100', PUSH_INTERVAL: '60',
  VAPID_PUBLIC_KEY: vapid.publicKey, VAPID_PRIVATE_KEY: vapid.privateKey, VAPID_SUBJECT: 'mailto:ops@parley.test',
}

/** A browser's side of a subscription: its key pair and auth secret, and how it reads a push. */
function browser(endpoint: string) {
  const ecdh = createECDH('prime256v1')
  ecdh.generateKeys()
  const auth = randomBytes(16).toString('base64url')
  return {
    subscription: { endpoint, keys: { p256dh: ecdh.getPublicKey('base64url'), auth }, expirationTime: null },
    read: (r: Received) => JSON.parse(ece.decrypt(r.body, { version: 'aes128gcm', privateKey: ecdh, authSecret: auth }).toString()),
  }
}

/** Waits until every queued job is done (graphile-worker deletes each once it ran). */
async function drained(db: DB) {
  for (let i = 0; i < 600; i++) {
    if ((await queuedJobs(db)) === 0) return
    await sleep(50)
  }
  throw new Error('the job queue did not empty')
}

t.test('without VAPID keys push is off, and says so', async (t) => {
  const { app } = await buildTestApp(t, { WEBHOOK_ALLOW_PRIVATE: 'true' })
  const alice = await register(app)
  assertError(t, await client(app, alice).get('/push/vapid-public-key'), 404, 'PUSH_NOT_CONFIGURED')
  assertError(t, await client(app, alice).post('/push/subscriptions', browser('http://127.0.0.1:9/p').subscription), 404, 'PUSH_NOT_CONFIGURED')
})

t.test('subscriptions: validated, private endpoints refused unless allowed, one per endpoint, owned', async (t) => {
  const strict = await buildTestApp(t, { VAPID_PUBLIC_KEY: vapid.publicKey, VAPID_PRIVATE_KEY: vapid.privateKey })
  const someone = await register(strict.app)
  assertError(t, await client(strict.app, someone).post('/push/subscriptions', browser('https://127.0.0.1/push').subscription), 400, 'URL_NOT_ALLOWED')

  const { app } = await buildTestApp(t, ENV)
  const [alice, bob] = await Promise.all([register(app), register(app)])
  t.same((await client(app, alice).get('/push/vapid-public-key')).json(), { public_key: vapid.publicKey })
  const b = browser('http://127.0.0.1:9/push/one')
  assertError(t, await client(app, alice).post('/push/subscriptions', { ...b.subscription, keys: { p256dh: 'short', auth: b.subscription.keys.auth } }), 400, 'VALIDATION_ERROR')
  const notAKey = await client(app, alice).post('/push/subscriptions', { ...b.subscription, keys: { p256dh: 'A'.repeat(87), auth: 'A'.repeat(21) } })
  assertError(t, notAKey, 400, 'VALIDATION_ERROR')
  t.same(notAKey.json().details, ['/keys/p256dh must be an uncompressed P-256 public key (65 bytes), base64url', '/keys/auth must be 16 bytes, base64url'])
  const first = await client(app, alice).post('/push/subscriptions', b.subscription)
  t.equal(first.statusCode, 201)
  t.match(first.json(), { endpoint: b.subscription.endpoint })
  // The same browser signs in as Bob: the endpoint is now his.
  const again = await client(app, bob).post('/push/subscriptions', b.subscription)
  t.equal(again.json().id, first.json().id, 'one subscription per endpoint')
  assertError(t, await client(app, alice).delete(`/push/subscriptions/${first.json().id}`), 404, 'PUSH_SUBSCRIPTION_NOT_FOUND')
  t.equal((await client(app, bob).delete(`/push/subscriptions/${first.json().id}`)).statusCode, 204)
})

t.test('a new message for someone connected nowhere: one encrypted, signed notification per conversation a minute', async (t) => {
  const rx = await receiver(t)
  const { app, db, open } = await buildLiveApp(t, ENV)
  const [alice, bob] = await Promise.all([register(app, undefined, { display_name: 'Alice' }), register(app, undefined, { display_name: 'Bob' })])
  const phone = browser(`${rx.base}/ok/bob-phone`)
  t.equal((await client(app, bob).post('/push/subscriptions', phone.subscription)).statusCode, 201)
  const direct = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id], is_group: false })).json().id
  const sent = (await client(app, alice).post('/messages', { conversation_id: direct, content: 'are you there?' })).json()
  await rx.until(() => rx.to('/ok/bob-phone').length >= 1, 'the push')
  const [push] = rx.to('/ok/bob-phone')
  t.same(phone.read(push), { conversation_id: direct, message_id: sent.id, title: 'Alice', body: 'are you there?', mention: false, reply: false }, 'decrypted with the browser\'s key')
  t.equal(push.headers['content-encoding'], 'aes128gcm')
  t.ok(Number(push.headers.ttl) > 0, 'with a TTL')
  checkVapid(t, push, rx.base)

  // Within the minute, the same conversation notifies no more; a group, with a mention, does.
  await client(app, alice).post('/messages', { conversation_id: direct, content: 'hello?' })
  const group = await groupOf(app, alice, [bob], 'Team')
  const mention = (await client(app, alice).post('/messages', { conversation_id: group, content: `@${bob.user.username} look` })).json()
  await drained(db)
  const pushes = rx.to('/ok/bob-phone').map(phone.read)
  t.equal(pushes.length, 2, 'two conversations, two notifications')
  t.match(pushes[1], { conversation_id: group, message_id: mention.id, title: 'Alice in Team', mention: true })
  t.notOk(pushes.some((p) => p.body === 'hello?'), 'the second message of a minute is not pushed')

  // Bob connects: nothing is pushed while he has a socket open anywhere.
  const socket = await open(bob)
  await waitOnline(db, bob, true)
  const other = await groupOf(app, alice, [bob], 'Live')
  await client(app, alice).post('/messages', { conversation_id: other, content: 'you are here' })
  await drained(db)
  t.equal(rx.to('/ok/bob-phone').length, 2, 'no push while connected')
  socket.close()
  await waitOnline(db, bob, false)

  // Muted: nothing either.
  const muted = await groupOf(app, alice, [bob], 'Muted')
  await client(app, bob).patch(`/conversations/${muted}/settings`, { muted_until: '9999-12-31T00:00:00.000Z' })
  await client(app, alice).post('/messages', { conversation_id: muted, content: 'shh' })
  await drained(db)
  t.equal(rx.to('/ok/bob-phone').length, 2, 'no push for a muted conversation')

  // The sender is never notified of their own message.
  const alicePhone = browser(`${rx.base}/ok/alice-phone`)
  await client(app, alice).post('/push/subscriptions', alicePhone.subscription)
  await client(app, alice).post('/messages', { conversation_id: (await groupOf(app, alice, [bob], 'Own')), content: 'mine' })
  await drained(db)
  t.equal(rx.to('/ok/alice-phone').length, 0, 'not to the sender')
})

t.test('a push service answering 410 has dropped the subscription: it is removed; none left, nothing is queued', async (t) => {
  const rx = await receiver(t)
  const { app, db } = await buildTestApp(t, ENV)
  const [alice, carol] = await Promise.all([register(app), register(app)])
  const gone = browser(`${rx.base}/gone/carol`)
  await client(app, carol).post('/push/subscriptions', gone.subscription)
  const direct = (await client(app, alice).post('/conversations', { participant_ids: [carol.user.id], is_group: false })).json().id
  await client(app, alice).post('/messages', { conversation_id: direct, content: 'hi' })
  await rx.until(() => rx.to('/gone/carol').length === 1, 'the push')
  await drained(db)
  const left = await db.selectFrom('push_subscriptions').select('id').where('user_id', '=', carol.user.id).execute()
  t.same(left, [], 'the subscription is gone')
  await client(app, alice).post('/messages', { conversation_id: direct, content: 'again' })
  t.equal(await queuedJobs(db), 0, 'with no subscribed member, a message queues no push job')
})

/** The Authorization header is `vapid t=<JWT>, k=<public key>`, the JWT signed (ES256) by that key for the push service's origin. */
function checkVapid(t: Test, push: Received, origin: string) {
  const m = /^vapid t=([^,]+), k=(.+)$/.exec(String(push.headers.authorization))
  t.ok(m, `a VAPID authorization (${push.headers.authorization})`)
  if (!m) return
  const [jwt, key] = [m[1], m[2]]
  t.equal(key, vapid.publicKey, "the server's public key")
  const [head, claims, signature] = jwt.split('.')
  const point = Buffer.from(key, 'base64url')
  const publicKey = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') }, format: 'jwk' })
  t.ok(verifySignature('sha256', Buffer.from(`${head}.${claims}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url')), 'signed by it')
  t.match(JSON.parse(Buffer.from(claims, 'base64url').toString()), { aud: origin, sub: 'mailto:ops@parley.test' })
}

async function waitOnline(db: DB, who: Session, online: boolean) {
  for (let i = 0; i < 600; i++) {
    const row = await db.selectFrom('users').select('is_online').where('id', '=', who.user.id).executeTakeFirstOrThrow()
    if (row.is_online === online) return
    await sleep(50)
  }
  throw new Error(`${who.user.username} did not become ${online ? 'online' : 'offline'}`)
}
