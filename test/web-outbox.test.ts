// The web client's sends go through the SDK's outbox in IndexedDB: a message written while the network is down
// is shown as "Sending…", survives the page being left and opened again, and lands once when the way is back.
import t from 'tap'
import { bubble, launchBrowser, signIn, WAIT, watch } from './browser.ts'
import { testDatabase } from './helper.ts'
import { call, startServer } from './processes.ts'
import { tcpProxy } from './tcp-proxy.ts'

const ENV = {
  JWT_SECRET: 'web-outbox-test-secret-at-least-32-chars',
  RATE_LIMIT_MAX: '100000',
  AUTH_RATE_LIMIT_MAX: '100000',
}

t.test('a message written offline lands once, after the page was left and opened again', async (t) => {
  const launching = launchBrowser(t)
  if (!launching) return
  const server = await startServer(t, { ...ENV, DATABASE_URL: await testDatabase(t) })
  // The page reaches the instance through this proxy: the network, which the test takes away and gives back.
  const net = await tcpProxy(t, [server.base])
  const signUp = (username: string) =>
    call(server.base, 'POST', '/auth/register', undefined, { username, password: 'Passw0rd1', display_name: username }).then((r) => r.body)
  const [alice, bob] = await Promise.all([signUp('alice'), signUp('bob')])
  const { body: conv } = await call(server.base, 'POST', '/conversations', bob.access_token, { participant_ids: [alice.user.id], is_group: false })
  await call(server.base, 'POST', '/messages', bob.access_token, { conversation_id: conv.id, content: 'Are you there?' })
  const contents = async () => {
    const { body } = await call(server.base, 'GET', `/conversations/${conv.id}/messages?limit=50`, bob.access_token)
    return (body as { content: string }[]).map((m) => m.content)
  }

  // The SDK the page imports, bundled from client/src by the server; a browser asks again with its ETag.
  const sdk = await fetch(`${server.base}/parley-client.js`)
  t.equal(sdk.status, 200)
  t.match(sdk.headers.get('content-type'), /^text\/javascript/)
  t.match(await sdk.text(), /ParleyClient = class/, 'the SDK itself')
  const again = await fetch(`${server.base}/parley-client.js`, { headers: { 'if-none-match': sdk.headers.get('etag')! } })
  t.equal(again.status, 304, 'unchanged: not sent again')

  const browser = await launching
  const problems: string[] = []
  const page = await (await browser.newContext()).newPage()
  watch(page, 'alice', problems, /net::ERR_SOCKET_NOT_CONNECTED|net::ERR_EMPTY_RESPONSE|net::ERR_CONNECTION_RESET/) // the network taken away
  await page.goto(`${net.base}/`)
  await signIn(page, 'alice', 'Passw0rd1')
  await page.locator('#conversations button.conversation').filter({ hasText: 'bob' }).click({ timeout: WAIT })
  await bubble(page, 'Are you there?', 'theirs').waitFor({ timeout: WAIT })

  // The network goes: the socket drops and nothing new connects.
  net.block()
  net.cut()
  await page.locator('#banner').waitFor({ state: 'visible', timeout: WAIT })
  const composer = page.getByLabel('Message', { exact: true })
  await composer.fill('Written offline')
  await composer.press('Enter')
  const sending = page.locator('#pending-list li.pending', { hasText: 'Written offline' })
  await sending.waitFor({ timeout: WAIT })
  t.match(await sending.textContent(), /Sending…/, 'shown as on its way')
  t.equal(await composer.inputValue(), '', 'the composer is free for the next one')
  // The tab leaves the page while offline: what the page held in memory is gone.
  await page.goto(`${net.base}/`).catch(() => {})
  await page.waitForURL(/^chrome-error:/, { timeout: WAIT }) // Chromium's "this site can't be reached"
  t.notOk((await contents()).includes('Written offline'), 'nothing reached the server while offline')

  // Back online, the page opens again: the session and the outbox are still there, and the send goes out.
  net.unblock()
  await page.goto(`${net.base}/`)
  await page.locator('#chat').waitFor({ state: 'visible', timeout: WAIT })
  await page.locator('#conversations button.conversation').filter({ hasText: 'bob' }).click({ timeout: WAIT })
  await bubble(page, 'Written offline', 'own').waitFor({ timeout: WAIT })
  t.equal(await page.locator('#pending-list li').count(), 0, 'nothing is left "Sending…"')
  t.same((await contents()).filter((c) => c === 'Written offline'), ['Written offline'], 'stored once')
  t.equal(await bubble(page, 'Written offline', 'own').count(), 1, 'and shown once')
  // The outbox is empty: a later page of this account sends nothing again.
  const left = await page.evaluate(`new Promise((resolve, reject) => {
    const open = indexedDB.open('parley-outbox.${alice.user.id}', 1)
    open.onerror = () => reject(open.error)
    open.onsuccess = () => {
      const count = open.result.transaction('entries', 'readonly').objectStore('entries').count()
      count.onsuccess = () => resolve(count.result)
    }
  })`)
  t.equal(left, 0, 'the outbox is empty')
  t.same(problems, [], 'no dialogs, script errors or CSP violations')
})
