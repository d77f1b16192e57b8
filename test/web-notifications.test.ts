// The web client and Web Push, in Chromium: the service worker is registered at sign-in, permission is asked only
// when the person presses the button, the browser's subscription reaches the server, and a message sent while
// the page is closed arrives at the push endpoint, decrypted here with the browser's own key. Chromium's push
// service (Google's FCM) cannot be reached from this machine, so the browser's PushManager is replaced by one
// that makes the subscription a real browser would (a P-256 key pair and an auth secret, by WebCrypto) with an
// endpoint on a local receiver; everything of the client and the server is the real thing.
import { createECDH } from 'node:crypto'
import * as ece from 'http_ece'
import pg from 'pg'
import t from 'tap'
import webPush from 'web-push'
import { launchBrowser, signIn, WAIT, watch } from './browser.ts'
import { testDatabase } from './helper.ts'
import { call, startServer } from './processes.ts'
import { receiver } from './receiver.ts'

const vapid = webPush.generateVAPIDKeys()

/** Runs in the page before its scripts: counts permission prompts, and stands in for the push service. */
const PUSH_SERVICE = (endpoint: string) => `(() => {
  window.__prompts = 0
  const ask = Notification.requestPermission.bind(Notification)
  Notification.requestPermission = (...a) => { window.__prompts++; return ask(...a) }
  let current = null
  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '')
  PushManager.prototype.getSubscription = async function () { return current }
  PushManager.prototype.subscribe = async function (options) {
    const pair = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits'])
    const p256dh = b64(await crypto.subtle.exportKey('raw', pair.publicKey))
    const auth = b64(crypto.getRandomValues(new Uint8Array(16)))
    window.__push = { applicationServerKey: options.applicationServerKey, userVisibleOnly: options.userVisibleOnly, key: await crypto.subtle.exportKey('jwk', pair.privateKey), auth }
    const url = ${JSON.stringify(endpoint)} + '/' + crypto.randomUUID()
    current = { endpoint: url, unsubscribe: async () => { current = null; return true }, toJSON: () => ({ endpoint: url, expirationTime: null, keys: { p256dh, auth } }) }
    return current
  }
})()`

t.test('notifications: asked for on a click, subscribed, and a message sent while the page is closed arrives encrypted', async (t) => {
  const launching = launchBrowser(t)
  if (!launching) return
  const rx = await receiver(t)
  const url = await testDatabase(t)
  const server = await startServer(t, {
    JWT_SECRET: 'web-notifications-test-secret-at-least-32', RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000',
    DATABASE_URL: url, WEBHOOK_ALLOW_PRIVATE: 'true', JOBS_POLL_INTERVAL: '100', PRESENCE_HEARTBEAT: '300', PRESENCE_TTL: '1000',
    VAPID_PUBLIC_KEY: vapid.publicKey, VAPID_PRIVATE_KEY: vapid.privateKey,
  })
  const signUp = (username: string) =>
    call(server.base, 'POST', '/auth/register', undefined, { username, password: 'Passw0rd1', display_name: username }).then((r) => r.body)
  const [alice, bob] = await Promise.all([signUp('alice'), signUp('bob')])
  const subscriptions = async () => {
    const db = new pg.Client({ connectionString: url })
    await db.connect()
    try {
      return Number((await db.query('SELECT count(*) AS n FROM push_subscriptions WHERE user_id = $1', [alice.user.id])).rows[0].n)
    } finally {
      await db.end()
    }
  }

  const browser = await launching
  const context = await browser.newContext()
  await context.grantPermissions(['notifications'], { origin: server.base })
  await context.addInitScript(PUSH_SERVICE(`${rx.base}/ok/push`))
  const problems: string[] = []
  const page = await context.newPage()
  watch(page, 'alice', problems)
  await page.goto(`${server.base}/`)
  await signIn(page, 'alice', 'Passw0rd1')
  await page.locator('#chat').waitFor({ state: 'visible', timeout: WAIT })
  // `ready` resolves once a worker is active (between its states, a registration may show none).
  t.match(await page.evaluate(() => navigator.serviceWorker.ready.then((r) => r.active!.scriptURL)), /\/sw\.js$/, 'the service worker is registered and active')
  t.equal(await page.evaluate(() => (window as unknown as { __prompts: number }).__prompts), 0, 'no permission asked on load or sign-in')

  await page.getByRole('button', { name: 'Profile' }).click()
  const toggle = page.getByRole('button', { name: 'Turn on notifications' })
  await toggle.click()
  await page.getByRole('button', { name: 'Turn off notifications' }).waitFor({ timeout: WAIT })
  const push = await page.evaluate(() => (window as unknown as { __push: { applicationServerKey: string; userVisibleOnly: boolean; key: { d: string }; auth: string } }).__push)
  t.equal(await page.evaluate(() => (window as unknown as { __prompts: number }).__prompts), 1, 'asked once, on the click')
  t.equal(push.applicationServerKey, vapid.publicKey, "subscribed with the server's VAPID key")
  t.equal(push.userVisibleOnly, true)

  // Alice closes the page: no socket of hers is open anywhere. Bob writes.
  await page.close()
  const conv = (await call(server.base, 'POST', '/conversations', bob.access_token, { participant_ids: [alice.user.id], is_group: false })).body
  const offline = async () => (await call(server.base, 'GET', `/users/${alice.user.id}`, bob.access_token)).body.is_online === false
  for (let i = 0; i < 200 && !(await offline()); i++) await new Promise((r) => setTimeout(r, 50))
  const sent = (await call(server.base, 'POST', '/messages', bob.access_token, { conversation_id: conv.id, content: 'see you at 6' })).body
  await rx.until(() => rx.to('/ok/push').length >= 1, 'the push')
  const ecdh = createECDH('prime256v1')
  ecdh.setPrivateKey(Buffer.from(push.key.d, 'base64url'))
  const notice = JSON.parse(ece.decrypt(rx.to('/ok/push')[0].body, { version: 'aes128gcm', privateKey: ecdh, authSecret: push.auth }).toString())
  t.match(notice, { conversation_id: conv.id, message_id: sent.id, title: 'bob', body: 'see you at 6' }, 'decrypted with the browser key')

  // Signing out takes this browser's subscription away: the next person here gets none of Alice's.
  t.equal(await subscriptions(), 1, "the closed page's subscription is still Alice's")
  const again = await context.newPage()
  watch(again, 'alice again', problems)
  await again.goto(`${server.base}/`)
  await signIn(again, 'alice', 'Passw0rd1')
  await again.locator('#chat').waitFor({ state: 'visible', timeout: WAIT })
  await again.getByRole('button', { name: 'Profile' }).click()
  await again.getByRole('button', { name: 'Turn on notifications' }).click()
  await again.getByRole('button', { name: 'Turn off notifications' }).waitFor({ timeout: WAIT })
  t.equal(await subscriptions(), 2)
  await again.keyboard.press('Escape')
  await again.getByRole('button', { name: 'Sign out' }).click()
  await again.locator('#login-form').waitFor({ timeout: WAIT })
  t.equal(await subscriptions(), 1, "signing out removed this page's subscription")
  t.same(problems, [], 'no dialogs, script errors or CSP violations')
})
