import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'
import t from 'tap'
import { testDatabase } from './helper.ts'
import { call, startServer, stopServer } from './processes.ts'

// The bundled web client in a real Chromium: two people, two browser contexts, two instances (separate
// processes) on one database. Debian's chromium; CI installs it (.ci/run), and without it this test fails.

const CHROMIUM = '/usr/bin/chromium'
const WAIT = 20_000
const SCREENSHOTS = path.resolve(import.meta.dirname, '../docs/screenshots')
const ENV = {
  JWT_SECRET: 'web-test-secret-that-is-at-least-32-chars',
  PRESENCE_HEARTBEAT: '500',
  PRESENCE_TTL: '3000',
  LISTENER_PROBE_INTERVAL: '500',
  RATE_LIMIT_MAX: '100000',
  AUTH_RATE_LIMIT_MAX: '100000',
}
const XSS = '<img src=x onerror=alert(1)>'
/** A valid 1×1 PNG. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64')
/** Every <img> matching the selector has loaded and decoded (naturalWidth > 0), and there is at least one. */
const imagesLoaded = (page: Page, selector: string) =>
  page.waitForFunction((sel) => {
    const imgs = [...document.querySelectorAll<HTMLImageElement>(sel)]
    return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0)
  }, selector, { timeout: WAIT })

/** Collects what must not happen on a page: dialogs (an alert() from injected markup), script errors, CSP violations. */
function watch(page: Page, name: string, problems: string[]) {
  page.on('dialog', (d) => {
    problems.push(`${name}: dialog ${d.type()} "${d.message()}"`)
    d.dismiss().catch(() => {})
  })
  page.on('pageerror', (e) => problems.push(`${name}: page error ${e.message}`))
  page.on('console', (m) => {
    // Expected: the 400 of the refused weak password, and a dropped socket while its instance restarts.
    if (m.type() === 'error' && !/status of 400|WebSocket|ERR_CONNECTION_REFUSED/.test(m.text())) problems.push(`${name}: console ${m.text()}`)
  })
}

async function register(page: Page, username: string, displayName: string) {
  await page.getByRole('tab', { name: 'Create account' }).click()
  const form = page.locator('#register-form')
  await form.getByLabel('Username').fill(username)
  await form.getByLabel('Display name (optional)').fill(displayName)
  await form.getByLabel('Password').fill('password')
  await page.getByRole('button', { name: 'Create account' }).click()
  // The API's validation message, next to its field.
  await page.locator('#register-password-error').filter({ hasText: 'upper-case' }).waitFor({ timeout: WAIT })
  await form.getByLabel('Password').fill('Passw0rd1')
  await page.getByRole('button', { name: 'Create account' }).click()
  await page.locator('#me').filter({ hasText: displayName }).waitFor({ timeout: WAIT })
}

const bubble = (page: Page, text: string | RegExp, who: 'own' | 'theirs') =>
  page.locator(`#message-list li.message.${who}`).filter({ has: page.locator('.text', { hasText: text }) })

t.test('two people chat in the browser across two instances', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run the browser tests`)
    return
  }
  const started = Date.now()
  const url = await testDatabase(t)
  const env = { ...ENV, DATABASE_URL: url }
  const [a, b] = await Promise.all([startServer(t, env), startServer(t, env)])

  // The page has its own CSP; the API keeps its "allow nothing" one.
  const index = await fetch(`${a.base}/`)
  t.equal(index.status, 200)
  t.match(index.headers.get('content-security-policy'), /default-src 'self'.*connect-src 'self' ws: wss:/)
  t.match((await fetch(`${a.base}/health/live`)).headers.get('content-security-policy'), /default-src 'none'/)
  t.equal((await call(a.base, 'GET', '/no-such-page')).body.code, 'ROUTE_NOT_FOUND', 'unknown paths keep the API 404')

  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
  t.teardown(() => browser.close())
  const problems: string[] = []
  const alice = await (await browser.newContext({ viewport: { width: 1100, height: 720 } })).newPage()
  const bob = await (await browser.newContext({ viewport: { width: 390, height: 780 } })).newPage() // phone width
  watch(alice, 'alice', problems)
  watch(bob, 'bob', problems)
  await Promise.all([alice.goto(`${a.base}/`), bob.goto(`${b.base}/`)])
  await Promise.all([register(alice, 'alice', 'Alice'), register(bob, 'bob', 'Bob')])

  // Alice finds Bob and starts a direct chat.
  await alice.getByRole('button', { name: 'New chat' }).click()
  await alice.getByLabel('Find people').fill('bob')
  await alice.locator('#search-results').getByRole('button', { name: /Bob/ }).click({ timeout: WAIT })
  await alice.locator('#conv-title').filter({ hasText: 'Bob' }).waitFor({ timeout: WAIT })
  const composer = alice.getByLabel('Message', { exact: true })
  await composer.fill('Hello Bob')
  await composer.press('Enter')
  await bubble(alice, 'Hello Bob', 'own').waitFor({ timeout: WAIT })

  // Bob, on the other instance, sees the chat appear with its preview, unread badge and Alice online.
  const item = bob.locator('#conversations button.conversation').filter({ hasText: 'Alice' })
  await item.filter({ hasText: 'Hello Bob' }).locator('.badge', { hasText: '1' }).waitFor({ timeout: WAIT })
  await item.locator('.dot.online').waitFor({ timeout: WAIT })
  await mkdir(SCREENSHOTS, { recursive: true })
  await bob.screenshot({ path: path.join(SCREENSHOTS, 'conversation-list.png') })
  await item.click()
  await bubble(bob, 'Hello Bob', 'theirs').waitFor({ timeout: WAIT })

  // Bob has read it: Alice sees ✓✓.
  await bubble(alice, 'Hello Bob', 'own').locator('.ticks.read').waitFor({ timeout: WAIT })

  // Alice types (Bob sees it), then sends markup, which Bob sees as text.
  await composer.pressSequentially(XSS, { delay: 15 })
  await bob.locator('#typing').filter({ hasText: 'Alice is typing' }).waitFor({ timeout: WAIT })
  await composer.press('Enter')
  const markup = bubble(bob, XSS, 'theirs')
  await markup.waitFor({ timeout: WAIT })
  t.equal(await markup.locator('.text').textContent(), XSS, 'shown literally')
  t.equal(await bob.locator('#message-list img').count(), 0, 'no element made from the message')
  await bob.locator('#typing').filter({ hasText: /^$/ }).waitFor({ state: 'attached', timeout: WAIT })

  // Bob replies with Enter; a Shift+Enter makes a new line, not a send.
  const bobComposer = bob.getByLabel('Message', { exact: true })
  await bobComposer.fill('Hi Alice')
  await bobComposer.press('Shift+Enter')
  await bobComposer.pressSequentially('how are you?')
  await bobComposer.press('Enter')
  await bubble(alice, 'Hi Alice\nhow are you?', 'theirs').waitFor({ timeout: WAIT })
  await bubble(alice, XSS, 'own').locator('.ticks.read').waitFor({ timeout: WAIT })

  // Alice edits one message and deletes another: Bob sees both.
  await bubble(alice, 'Hello Bob', 'own').getByRole('button', { name: 'Edit message' }).click()
  const edit = alice.locator('#message-list textarea.edit-input')
  await edit.fill('Hello Bob, edited')
  await edit.press('Enter')
  await bob.locator('#message-list li.message.theirs').filter({ hasText: 'Hello Bob, edited' }).locator('.edited').waitFor({ timeout: WAIT })
  await composer.fill('Oops, wrong chat')
  await composer.press('Enter')
  await bubble(bob, 'Oops, wrong chat', 'theirs').waitFor({ timeout: WAIT })
  const oops = bubble(alice, 'Oops, wrong chat', 'own')
  await oops.getByRole('button', { name: 'Delete message' }).click()
  await oops.getByRole('button', { name: 'Confirm delete' }).click()
  await bob.locator('#message-list li.message .text.deleted', { hasText: 'This message was deleted' }).waitFor({ timeout: WAIT })
  await alice.locator('#message-list li.message.own .text.deleted').waitFor({ timeout: WAIT })
  await alice.screenshot({ path: path.join(SCREENSHOTS, 'conversation.png') })

  // Bob's instance restarts: a banner while it is away, then every message once, nothing twice.
  const port = new URL(b.base).port
  await stopServer(b.proc, 'SIGKILL')
  await bob.locator('#banner').waitFor({ state: 'visible', timeout: WAIT })
  await composer.fill('While you were away')
  await composer.press('Enter')
  await bubble(alice, 'While you were away', 'own').waitFor({ timeout: WAIT })
  await startServer(t, { ...env, PORT: port })
  await bubble(bob, 'While you were away', 'theirs').waitFor({ timeout: WAIT })
  await bob.locator('#banner').waitFor({ state: 'hidden', timeout: WAIT })
  await composer.fill('And after')
  await composer.press('Enter')
  await bubble(bob, 'And after', 'theirs').waitFor({ timeout: WAIT })
  const texts = await bob.locator('#message-list li.message .text').allTextContents()
  t.same(texts, ['Hello Bob, edited', XSS, 'Hi Alice\nhow are you?', 'This message was deleted', 'While you were away', 'And after'], 'every message once, in order')

  // Alice makes a group with Bob; Bob sees it appear, and its new name live.
  await bob.getByRole('button', { name: 'Back to conversations' }).click()
  await alice.getByRole('button', { name: 'New group' }).click()
  const groupDialog = alice.locator('#group-dialog')
  await groupDialog.getByLabel('Group name').fill('Weekend')
  await groupDialog.getByLabel('Add people').fill('bob')
  await groupDialog.locator('#group-results').getByRole('button', { name: /Bob/ }).click({ timeout: WAIT })
  await groupDialog.locator('#group-picked', { hasText: 'Bob' }).waitFor({ timeout: WAIT })
  await groupDialog.getByRole('button', { name: 'Create group' }).click()
  await alice.locator('#conv-title').filter({ hasText: 'Weekend' }).waitFor({ timeout: WAIT })
  const bobGroup = bob.locator('#conversations button.conversation').filter({ has: bob.locator('.name', { hasText: /^Weekend/ }) })
  await bobGroup.locator('.name', { hasText: /^Weekend$/ }).waitFor({ timeout: WAIT })
  await alice.getByRole('button', { name: 'Group settings' }).click()
  const settings = alice.locator('#settings-dialog')
  await settings.locator('#settings-members li', { hasText: 'Bob' }).filter({ hasText: 'member' }).waitFor({ timeout: WAIT })
  await settings.locator('#settings-members li', { hasText: 'Alice (you)' }).filter({ hasText: 'admin' }).waitFor({ timeout: WAIT })
  await settings.getByLabel('Group name').fill('Weekend plans')
  await settings.getByRole('button', { name: 'Rename' }).click()
  await alice.locator('#conv-title').filter({ hasText: 'Weekend plans' }).waitFor({ timeout: WAIT })
  await bobGroup.locator('.name', { hasText: 'Weekend plans' }).waitFor({ timeout: WAIT })
  await alice.keyboard.press('Escape')
  await settings.waitFor({ state: 'hidden', timeout: WAIT })
  await bobGroup.click()
  await bob.locator('#conv-title').filter({ hasText: 'Weekend plans' }).waitFor({ timeout: WAIT })

  // Alice sends an image with a caption; Bob sees it rendered.
  const dir = await mkdtemp(path.join(tmpdir(), 'parley-web-'))
  const png = path.join(dir, 'dot.png')
  await writeFile(png, PNG)
  await composer.fill('A picture')
  await alice.getByLabel('Attach a file').setInputFiles(png)
  await bubble(bob, 'A picture', 'theirs').locator('img').waitFor({ timeout: WAIT })
  await imagesLoaded(bob, '#message-list li.message.theirs img')
  await imagesLoaded(alice, '#message-list li.message.own img')
  t.equal(await composer.inputValue(), '', 'the caption went with the image')

  // Alice sets her avatar in her profile: it replaces her initials.
  t.equal(await alice.locator('#me-avatar img').count(), 0, 'initials before')
  await alice.getByRole('button', { name: 'Profile' }).click()
  await alice.locator('#profile-dialog').getByLabel('Avatar', { exact: true }).setInputFiles(png)
  await imagesLoaded(alice, '#me-avatar img')
  await imagesLoaded(alice, '#profile-avatar img')
  await alice.keyboard.press('Escape')
  await alice.locator('#profile-dialog').waitFor({ state: 'hidden', timeout: WAIT })
  await alice.getByRole('button', { name: 'Group settings' }).click()
  await imagesLoaded(alice, '#settings-members img')
  await alice.screenshot({ path: path.join(SCREENSHOTS, 'group.png') })
  await alice.keyboard.press('Escape')

  t.same(problems, [], 'no dialogs, script errors or CSP violations')
  t.comment(`browser test wall time: ${((Date.now() - started) / 1000).toFixed(1)} s`)
})
