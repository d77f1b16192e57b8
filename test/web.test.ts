import { randomBytes } from 'node:crypto'
import type { Browser, Locator, Page } from 'playwright-core'
import t from 'tap'
import { bubble, launchBrowser, menuAction, receivedFrames, signIn, WAIT, watch } from './browser.ts'
import { testDatabase } from './helper.ts'
import { call, startServer, stopServer } from './processes.ts'

// The bundled web client in a real Chromium: two people, two browser contexts, two instances (separate
// processes) on one database. Debian's chromium; CI installs it (.ci/run), and without it this test fails.

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
/** Sniffed as video/mp4 (an ftyp box); the rest is noise, so the player shows but plays nothing. */
const MP4 = Buffer.concat([Buffer.from('000000186674797069736f6d0000020069736f6d69736f32', 'hex'), randomBytes(20_000)])
/** Sniffed as application/pdf: a plain file. 400 KB, to take a visible while at the throttled upload speed. */
const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(400_000, ' '), Buffer.from('\n%%EOF\n')])
/** Every <img> matching the selector has loaded and decoded (naturalWidth > 0), and there is at least one. */
const imagesLoaded = (page: Page, selector: string) =>
  page.waitForFunction((sel) => {
    const imgs = [...document.querySelectorAll<HTMLImageElement>(sel)]
    return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0)
  }, selector, { timeout: WAIT })

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

const systemLine = (page: Page, text: string) => page.locator('#message-list li.system', { hasText: text })
/** The WCAG contrast ratio of two CSS rgb() colours. */
function contrast(a: string, b: string) {
  const lum = (c: string) => {
    const [r, g, bl] = c.match(/[\d.]+/g)!.slice(0, 3).map((v) => {
      const x = Number(v) / 255
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4
    })
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl
  }
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x)
  return (hi + 0.05) / (lo + 0.05)
}
/** An image's rendered size (CSS pixels) and its own. */
const imageBox = (img: Locator) =>
  img.evaluate((i: HTMLImageElement) => ({ width: i.getBoundingClientRect().width, height: i.getBoundingClientRect().height, naturalWidth: i.naturalWidth }))

t.test('two people chat in the browser across two instances', async (t) => {
  const started = Date.now()
  // Chromium starts while the database and the instances do.
  const launching = launchBrowser(t)
  if (!launching) return
  const env = { ...ENV, DATABASE_URL: await testDatabase(t) }
  const [a, b] = await Promise.all([startServer(t, env), startServer(t, env)])

  // The page has its own CSP; the API keeps its "allow nothing" one.
  const index = await fetch(`${a.base}/`)
  t.equal(index.status, 200)
  t.match(index.headers.get('content-security-policy'), /default-src 'self'.*connect-src 'self' ws: wss:/)
  t.match((await fetch(`${a.base}/health/live`)).headers.get('content-security-policy'), /default-src 'none'/)
  t.equal((await call(a.base, 'GET', '/no-such-page')).body.code, 'ROUTE_NOT_FOUND', 'unknown paths keep the API 404')

  const browser: Browser = await launching
  const problems: string[] = []
  const alice = await (await browser.newContext({ viewport: { width: 1100, height: 720 } })).newPage()
  const bob = await (await browser.newContext({ viewport: { width: 375, height: 780 } })).newPage() // phone width
  watch(alice, 'alice', problems)
  watch(bob, 'bob', problems)
  const aliceFrames = receivedFrames(alice)
  await Promise.all([alice.goto(`${a.base}/`), bob.goto(`${b.base}/`)])
  // Carol uses the API only (a third browser would cost seconds): she joins the group later and reads in it.
  const [carol] = await Promise.all([
    call(a.base, 'POST', '/auth/register', undefined, { username: 'carol', password: 'Passw0rd1', display_name: 'Carol' }).then((r) => r.body),
    register(alice, 'alice', 'Alice'),
    register(bob, 'bob', 'Bob'),
  ])

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

  // Alice edits one message and deletes another: Bob sees both. Her edit's frame is let in before the PATCH's
  // answer (held until then), as it can come on a busy box: the editor still closes on the new text.
  await menuAction(alice, bubble(alice, 'Hello Bob', 'own'), 'Edit')
  const edit = alice.locator('#message-list textarea.edit-input')
  const editFrame = aliceFrames.next((f) => f.includes('"type":"message_edited"'))
  await alice.route('**/messages/*', async (route) => {
    if (route.request().method() !== 'PATCH') return route.fallback()
    const response = await route.fetch()
    await editFrame
    await route.fulfill({ response })
  })
  await edit.fill('Hello Bob, edited')
  await edit.press('Enter')
  await bubble(alice, 'Hello Bob, edited', 'own').waitFor({ timeout: WAIT })
  await edit.waitFor({ state: 'detached', timeout: WAIT })
  await alice.unroute('**/messages/*')
  await bob.locator('#message-list li.message.theirs').filter({ hasText: 'Hello Bob, edited' }).locator('.edited').waitFor({ timeout: WAIT })
  await composer.fill('Oops, wrong chat')
  await composer.press('Enter')
  await bubble(bob, 'Oops, wrong chat', 'theirs').waitFor({ timeout: WAIT })
  const oops = bubble(alice, 'Oops, wrong chat', 'own')
  await menuAction(alice, oops, 'Delete')
  await alice.locator('#delete-dialog').getByRole('button', { name: 'Delete', exact: true }).click()
  // The dialog is modal until the DELETE is answered, which can be after the deletion's frame: the page behind
  // it takes no typing until then, so Alice waits for it to close, as a person would.
  await alice.locator('#delete-dialog').waitFor({ state: 'hidden', timeout: WAIT })
  await bob.locator('#message-list li.message .text.deleted', { hasText: 'This message was deleted' }).waitFor({ timeout: WAIT })
  await alice.locator('#message-list li.message.own .text.deleted').waitFor({ timeout: WAIT })

  // Bob's instance restarts: a banner while it is away, then every message once, nothing twice.
  const port = new URL(b.base).port
  await stopServer(b.proc, 'SIGKILL')
  await bob.locator('#banner').waitFor({ state: 'visible', timeout: WAIT })
  await composer.fill('While you were away')
  await composer.press('Enter')
  await bubble(alice, 'While you were away', 'own').waitFor({ timeout: WAIT })
  const restarting = startServer(t, { ...env, PORT: port })

  // Meanwhile Alice sets her avatar and a new name (Bob sees them below, though no frame announces them).
  t.equal(await alice.locator('#me-avatar img').count(), 0, 'initials before')
  await alice.getByRole('button', { name: 'Profile' }).click()
  const profile = alice.locator('#profile-dialog')
  await profile.getByLabel('Avatar', { exact: true }).setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: PNG })
  await imagesLoaded(alice, '#me-avatar img')
  await imagesLoaded(alice, '#profile-avatar img')
  await profile.getByLabel('Display name').fill('Alice Liddell')
  await profile.getByRole('button', { name: 'Save name' }).click()
  await alice.locator('#me', { hasText: 'Alice Liddell' }).waitFor({ timeout: WAIT })
  await alice.keyboard.press('Escape')
  await profile.waitFor({ state: 'hidden', timeout: WAIT })
  await restarting
  await bubble(bob, 'While you were away', 'theirs').waitFor({ timeout: WAIT })
  await bob.locator('#banner').waitFor({ state: 'hidden', timeout: WAIT })
  await composer.fill('And after')
  await composer.press('Enter')
  await bubble(bob, 'And after', 'theirs').waitFor({ timeout: WAIT })
  const texts = await bob.locator('#message-list li.message .text').allTextContents()
  t.same(texts, ['Hello Bob, edited', XSS, 'Hi Alice\nhow are you?', 'This message was deleted', 'While you were away', 'And after'], 'every message once, in order')

  // ---- What people do with messages (issue 14), in the direct chat: Alice on a desktop, Bob on a phone ----

  // The basics first. The day line is a list item (the list stays a list: only <li>, none with another role).
  const listShape = await bob.locator('#message-list').evaluate((ol) => [...ol.children].map((c) => `${c.tagName}:${c.getAttribute('role') ?? ''}:${c.className.split(' ')[0]}`))
  t.ok(listShape.length > 6 && listShape.every((s) => /^LI::/.test(s)), `the message list holds list items only (${listShape.join(' ')})`)
  t.ok(listShape.some((s) => s.endsWith(':day')), 'with a day line among them')
  // The composer's placeholder fits at 375 px.
  const fits = await bob.locator('#composer-input').evaluate((el: HTMLTextAreaElement) => {
    const style = getComputedStyle(el)
    const g = document.createElement('canvas').getContext('2d')!
    g.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`
    const room = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight)
    return { text: g.measureText(el.placeholder).width, room, viewport: innerWidth }
  })
  t.equal(fits.viewport, 375)
  t.ok(fits.text <= fits.room, `the placeholder fits (${fits.text.toFixed(0)} of ${fits.room.toFixed(0)} px)`)
  // Initials on their avatar have a contrast of at least 4.5:1 (WCAG AA, as axe-core checks).
  const initialsColours = await bob.locator('#conversations span.avatar').first().evaluate((el) => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor])
  t.ok(contrast(initialsColours[0], initialsColours[1]) >= 4.5, `avatar initials contrast ${contrast(initialsColours[0], initialsColours[1]).toFixed(2)}:1`)
  t.match(await bob.evaluate(() => getComputedStyle(document.body).fontFamily), /"Noto Color Emoji"/, 'the font stack names a colour emoji font')

  // A message's actions are in a menu that shows on hover, not always-visible buttons.
  const hello = bubble(bob, 'Hello Bob, edited', 'theirs')
  const opacity = (l: Locator) => l.getByRole('button', { name: 'Message actions' }).evaluate((b) => getComputedStyle(b).opacity)
  await bob.locator('#conv-title').hover()
  t.equal(await opacity(hello), '0', 'the menu button is hidden until hover')
  await hello.hover()
  await bob.waitForFunction((sel) => [...document.querySelectorAll(sel)].some((b) => getComputedStyle(b).opacity === '1'), '#message-list li.message .menu-button', { timeout: WAIT })
  t.equal(await hello.getByRole('button', { name: /^(Edit|Delete)( message)?$/ }).count(), 0, 'no edit or delete buttons on the bubble')

  // "edited" opens the history: the first wording, then the current one.
  await hello.getByRole('button', { name: 'Edited: show the history' }).click()
  const history = bob.locator('#history-dialog')
  await history.locator('li.version.current', { hasText: 'Hello Bob, edited' }).waitFor({ timeout: WAIT })
  t.same(await history.locator('li.version .text').allTextContents(), ['Hello Bob', 'Hello Bob, edited'], 'the edit history, oldest first')
  await bob.keyboard.press('Escape')
  await history.waitFor({ state: 'hidden', timeout: WAIT })

  // Bob long-presses the message: the menu, then the reaction picker with recent emoji first.
  const box = (await hello.locator('.text').boundingBox())!
  await bob.mouse.move(box.x + 5, box.y + box.height / 2)
  await bob.mouse.down()
  await hello.getByRole('menu').waitFor({ timeout: WAIT })
  await bob.mouse.up()
  await hello.getByRole('menuitem', { name: 'Add reaction' }).click()
  const picker = hello.getByRole('dialog', { name: 'Add a reaction' })
  t.equal(await picker.locator('.recent button').first().textContent(), '👍', 'recent emoji before any use: the usual first')
  await picker.locator('.all').getByRole('button', { name: 'React with 🎉' }).click()
  const aliceHello = bubble(alice, 'Hello Bob, edited', 'own')
  const chip = (l: Locator, emoji: string) => l.locator('button.reaction', { has: l.page().locator('.emoji', { hasText: emoji }) })
  await chip(aliceHello, '🎉').filter({ hasText: '1' }).waitFor({ timeout: WAIT })
  t.equal(await chip(aliceHello, '🎉').getAttribute('aria-pressed'), 'false', 'not Alice’s own reaction')
  t.equal(await chip(hello, '🎉').getAttribute('aria-pressed'), 'true', 'Bob’s own reaction is highlighted')
  // Read from the page in one go: a chip re-rendered (a live frame) between finding it and reading it has no style.
  const chipFont = await bob.waitForFunction(() => {
    const e = document.querySelector('#message-list .reaction[data-emoji="🎉"] .emoji')
    return e?.isConnected && getComputedStyle(e).fontFamily
  }, undefined, { timeout: WAIT }).then((h) => h.jsonValue())
  t.match(chipFont, /Noto Color Emoji/, `a reaction's emoji asks for a colour emoji font (${chipFont})`)
  // Alice's chip toggles: her reaction joins Bob's, then goes again; Bob sees both changes live.
  await chip(aliceHello, '🎉').click()
  await chip(aliceHello, '🎉').filter({ hasText: '2' }).and(alice.locator('[aria-pressed="true"]')).waitFor({ timeout: WAIT })
  await chip(hello, '🎉').filter({ hasText: '2' }).waitFor({ timeout: WAIT })
  await chip(aliceHello, '🎉').click()
  await chip(aliceHello, '🎉').filter({ hasText: '1' }).and(alice.locator('[aria-pressed="false"]')).waitFor({ timeout: WAIT })
  await chip(hello, '🎉').filter({ hasText: '1' }).and(bob.locator('[aria-pressed="true"]')).waitFor({ timeout: WAIT })
  // Bob's picker now offers 🎉 first.
  await hello.hover()
  await hello.getByRole('button', { name: 'Message actions' }).click()
  await hello.getByRole('menuitem', { name: 'Add reaction' }).click()
  t.equal(await picker.locator('.recent button').first().textContent(), '🎉', 'the emoji used last comes first')
  await bob.keyboard.press('Escape')
  await picker.waitFor({ state: 'detached', timeout: WAIT })

  // The menu by keyboard: Enter opens it on its first item, arrows move, Esc closes it and gives focus back.
  const aliceMenuButton = bubble(alice, 'Hi Alice', 'theirs').getByRole('button', { name: 'Message actions' })
  await aliceMenuButton.focus()
  await alice.keyboard.press('Enter')
  const focused = () => alice.evaluate(() => document.activeElement?.textContent)
  await alice.waitForFunction(() => document.activeElement?.getAttribute('role') === 'menuitem', undefined, { timeout: WAIT })
  t.equal(await focused(), 'Add reaction')
  await alice.keyboard.press('ArrowDown')
  t.equal(await focused(), 'Reply')
  await alice.keyboard.press('Escape')
  await alice.locator('#message-list [role=menu]').waitFor({ state: 'detached', timeout: WAIT })
  t.ok(await aliceMenuButton.evaluate((b) => b === document.activeElement), 'focus is back on the menu button')

  // Bob replies to Alice's message: a quote in the composer, then on his message; a click on it shows the original.
  await menuAction(bob, hello, 'Reply')
  await bob.locator('#reply-preview', { hasText: 'Hello Bob, edited' }).waitFor({ timeout: WAIT })
  await bobComposer.fill('Replying to that')
  await bobComposer.press('Enter')
  await bob.locator('#reply-preview').waitFor({ state: 'hidden', timeout: WAIT })
  const reply = bubble(alice, 'Replying to that', 'theirs')
  await reply.locator('.quote', { hasText: 'Hello Bob, edited' }).waitFor({ timeout: WAIT })
  await bubble(bob, 'Replying to that', 'own').locator('.quote', { hasText: 'Hello Bob, edited' }).waitFor({ timeout: WAIT })
  await alice.locator('#messages').evaluate((el) => { el.scrollTop = el.scrollHeight })
  await reply.locator('.quote').click()
  await aliceHello.and(alice.locator('.highlight')).waitFor({ timeout: WAIT })
  t.ok(await aliceHello.evaluate((el) => el === document.activeElement), 'the original is shown and focused')
  await aliceHello.evaluate((el) => {
    const box = el.getBoundingClientRect()
    const view = document.querySelector('#messages')!.getBoundingClientRect()
    if (box.top < view.top || box.bottom > view.bottom) throw new Error('the original is not scrolled into view')
  })

  // Links are links, safely; javascript: stays text. Two messages in a row from Alice make one group.
  await composer.fill('Docs: https://example.com/a?b=1, or mailto:help@example.com — not javascript:alert(1)')
  await composer.press('Enter')
  await composer.fill('(that was two links)')
  await composer.press('Enter')
  const linked = bubble(bob, 'Docs:', 'theirs')
  await bubble(bob, '(that was two links)', 'theirs').waitFor({ timeout: WAIT })
  const anchors = await linked.locator('.text a').evaluateAll((as: HTMLAnchorElement[]) => as.map((a) => [a.getAttribute('href'), a.target, a.rel, a.textContent]))
  t.same(anchors, [
    ['https://example.com/a?b=1', '_blank', 'noopener noreferrer', 'https://example.com/a?b=1'],
    ['mailto:help@example.com', '_blank', 'noopener noreferrer', 'mailto:help@example.com'],
  ], 'http(s) and mailto become links that open safely; javascript: does not')
  t.match(await linked.locator('.text').textContent(), /not javascript:alert\(1\)$/)
  t.notOk(await linked.evaluate((el) => el.classList.contains('grouped')), 'a message after someone else’s starts a group')
  t.ok(await bubble(bob, '(that was two links)', 'theirs').evaluate((el) => el.classList.contains('grouped')), 'the next one from the same sender joins it')

  // A thread: Alice answers Bob's question in one; Bob sees the count on the root, opens it and answers there.
  const question = bubble(alice, 'Hi Alice', 'theirs')
  await menuAction(alice, question, 'Reply in thread')
  const aliceThread = alice.locator('#thread')
  await aliceThread.locator('li.message', { hasText: 'how are you?' }).waitFor({ timeout: WAIT })
  await aliceThread.getByLabel('Reply in thread').fill('Fine, thanks')
  await aliceThread.getByLabel('Reply in thread').press('Enter')
  await aliceThread.locator('#thread-list > li.message', { hasText: 'Fine, thanks' }).waitFor({ timeout: WAIT })
  const bobQuestion = bubble(bob, 'Hi Alice', 'own')
  await bobQuestion.getByRole('button', { name: /^1 reply/ }).click({ timeout: WAIT })
  const bobThread = bob.locator('#thread')
  await bobThread.locator('#thread-list > li.message', { hasText: 'Fine, thanks' }).waitFor({ timeout: WAIT })
  await bobThread.getByLabel('Reply in thread').fill('Glad to hear')
  await bobThread.getByLabel('Reply in thread').press('Enter')
  await aliceThread.locator('#thread-list > li.message.theirs', { hasText: 'Glad to hear' }).waitFor({ timeout: WAIT })
  await question.getByRole('button', { name: /^2 replies/ }).waitFor({ timeout: WAIT })
  t.equal(await alice.locator('#message-list li.message', { hasText: /Fine, thanks|Glad to hear/ }).count(), 0, 'replies stay in the thread')
  await bobThread.getByRole('button', { name: 'Close thread' }).click()
  await alice.getByRole('button', { name: 'Close thread' }).click()

  // Alice pins Bob's question: Bob sees the pinned bar, opens the list, jumps to it, and unpins it from the menu.
  await menuAction(alice, question, 'Pin')
  const bar = bob.locator('#pinned-bar')
  await bar.filter({ hasText: '1 pinned' }).filter({ hasText: 'how are you?' }).waitFor({ timeout: WAIT })
  await bar.getByRole('button').click()
  const pins = bob.locator('#pins-dialog')
  await pins.getByRole('button', { name: /how are you\?/ }).click({ timeout: WAIT })
  await pins.waitFor({ state: 'hidden', timeout: WAIT })
  await bobQuestion.and(bob.locator('.highlight')).waitFor({ timeout: WAIT })
  await menuAction(bob, bobQuestion, 'Unpin')
  await alice.locator('#pinned-bar').waitFor({ state: 'hidden', timeout: WAIT })
  await bar.waitFor({ state: 'hidden', timeout: WAIT })

  // A draft survives a reload; a "New messages" line marks where Bob stopped reading.
  await bobComposer.fill('Half a thought')
  await bob.waitForFunction(() => Object.keys(localStorage).some((k) => k.startsWith('parley.draft.')), undefined, { timeout: WAIT })
  await bob.reload()
  await item.click({ timeout: WAIT })
  await bob.locator('#message-list li.message').first().waitFor({ timeout: WAIT })
  t.equal(await bobComposer.inputValue(), 'Half a thought', 'the draft is back after a reload')
  await bob.getByRole('button', { name: 'Back to conversations' }).click()
  await composer.fill('Are you there?')
  await composer.press('Enter')
  await composer.fill('Hello?')
  await composer.press('Enter')
  await item.locator('.badge', { hasText: '2' }).waitFor({ timeout: WAIT })
  await item.click()
  await bubble(bob, 'Hello?', 'theirs').waitFor({ timeout: WAIT })
  t.match(await bob.locator('#message-list li.unread-divider + li.message').textContent(), /^Are you there\?/, 'the line is just before the first unread')
  t.equal(await bob.locator('#message-list li.unread-divider').count(), 1)
  await bobComposer.fill('')

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
  // The new group brings Alice's profile as it is now: Bob's list shows her new name and picture.
  await item.locator('.name', { hasText: /^Alice Liddell$/ }).waitFor({ timeout: WAIT })
  await imagesLoaded(bob, '#conversations img.avatar')
  await alice.getByRole('button', { name: 'Group settings' }).click()
  const settings = alice.locator('#settings-dialog')
  await settings.locator('#settings-members li', { hasText: 'Bob' }).filter({ hasText: 'member' }).waitFor({ timeout: WAIT })
  await settings.locator('#settings-members li', { hasText: 'Alice Liddell (you)' }).filter({ hasText: 'admin' }).waitFor({ timeout: WAIT })
  await settings.getByLabel('Group name').fill('Weekend plans')
  await settings.getByRole('button', { name: 'Rename' }).click()
  await alice.locator('#conv-title').filter({ hasText: 'Weekend plans' }).waitFor({ timeout: WAIT })
  await bobGroup.locator('.name', { hasText: 'Weekend plans' }).waitFor({ timeout: WAIT })
  await alice.keyboard.press('Escape')
  await settings.waitFor({ state: 'hidden', timeout: WAIT })
  await bobGroup.click()
  await bob.locator('#conv-title').filter({ hasText: 'Weekend plans' }).waitFor({ timeout: WAIT })


  // Alice adds Carol and makes Bob an admin: Bob sees both live, and gets an admin's controls.
  await alice.getByRole('button', { name: 'Group settings' }).click()
  await settings.getByLabel('Add members').fill('carol')
  await settings.locator('#settings-results').getByRole('button', { name: /Carol/ }).click({ timeout: WAIT })
  await settings.locator('#settings-members li', { hasText: 'Carol' }).waitFor({ timeout: WAIT })
  await systemLine(bob, 'Alice Liddell added Carol').waitFor({ timeout: WAIT })
  await bob.locator('#conv-status', { hasText: /^3 members$/ }).waitFor({ timeout: WAIT })
  await settings.getByRole('button', { name: 'Make Bob an admin' }).click()
  await settings.locator('#settings-members li', { hasText: 'Bob' }).filter({ hasText: 'admin' }).waitFor({ timeout: WAIT })
  await alice.keyboard.press('Escape')
  await systemLine(bob, 'Alice Liddell made Bob an admin').waitFor({ timeout: WAIT })
  await bob.getByRole('button', { name: 'Group settings' }).click()
  const bobSettings = bob.locator('#settings-dialog')
  await bobSettings.locator('#settings-members li', { hasText: 'Bob (you)' }).filter({ hasText: 'admin' }).waitFor({ timeout: WAIT })
  await bobSettings.getByRole('button', { name: 'Rename' }).waitFor({ timeout: WAIT })
  await bob.keyboard.press('Escape')
  await bobSettings.waitFor({ state: 'hidden', timeout: WAIT })

  // System messages are rendered from their ids with the names known now: Carol's new name shows in the old line.
  t.equal((await call(a.base, 'PATCH', '/users/me', carol.access_token, { display_name: 'Carol Ng' })).status, 200)
  await bob.getByRole('button', { name: 'Back to conversations' }).click()
  await bobGroup.click()
  await systemLine(bob, 'Alice Liddell added Carol Ng').waitFor({ timeout: WAIT })

  // Mentions: Bob names Alice with the @ autocomplete while she reads the direct chat; her list shows an @ badge.
  const aliceDm = alice.locator('#conversations button.conversation').filter({ has: alice.locator('.name', { hasText: /^Bob$/ }) })
  const aliceGroup = alice.locator('#conversations button.conversation').filter({ has: alice.locator('.name', { hasText: /^Weekend plans$/ }) })
  await aliceDm.click()
  await alice.locator('#conv-title', { hasText: /^Bob$/ }).waitFor({ timeout: WAIT })
  await bobComposer.pressSequentially('Over to @al')
  await bob.getByRole('option', { name: /Alice Liddell/ }).waitFor({ timeout: WAIT })
  t.equal(await bob.getByRole('option').count(), 1, 'the members that match, only')
  await bobComposer.press('Enter')
  t.equal(await bobComposer.inputValue(), 'Over to @alice ', 'Enter picks the member')
  await bobComposer.pressSequentially('for the plan')
  await bobComposer.press('Enter')
  await bubble(bob, 'Over to @alice for the plan', 'own').locator('.mention', { hasText: '@alice' }).waitFor({ timeout: WAIT })
  await aliceGroup.locator('.mention-badge').waitFor({ timeout: WAIT })

  // Alice forwards a message of the direct chat to the group: Bob sees it there, marked as forwarded.
  await menuAction(alice, bubble(alice, 'Hello Bob, edited', 'own'), 'Forward')
  const forward = alice.locator('#forward-dialog')
  await forward.getByRole('button', { name: 'Weekend plans' }).click()
  await forward.waitFor({ state: 'hidden', timeout: WAIT })
  await bubble(bob, 'Hello Bob, edited', 'theirs').locator('.forwarded', { hasText: 'Forwarded' }).waitFor({ timeout: WAIT })

  // Alice opens the group: the mention of her is highlighted, and the badge is gone.
  await aliceGroup.click()
  await bubble(alice, 'Over to', 'theirs').locator('.mention.me', { hasText: '@alice' }).waitFor({ timeout: WAIT })
  await aliceGroup.locator('.mention-badge').waitFor({ state: 'detached', timeout: WAIT })

  // Alice sends a wide image with a caption: both see a bounded preview of the right shape.
  const wide = Buffer.from(await alice.evaluate(() => {
    const canvas = document.createElement('canvas')
    canvas.width = 800
    canvas.height = 400
    const g = canvas.getContext('2d')!
    const fill = g.createLinearGradient(0, 0, 800, 400)
    fill.addColorStop(0, '#2f6fde')
    fill.addColorStop(1, '#f2b134')
    g.fillStyle = fill
    g.fillRect(0, 0, 800, 400)
    return canvas.toDataURL('image/png').split(',')[1]
  }), 'base64')
  await composer.fill('A picture')
  await alice.getByLabel('Attach a file').setInputFiles({ name: 'wide.png', mimeType: 'image/png', buffer: wide })
  await bubble(bob, 'A picture', 'theirs').locator('img').waitFor({ timeout: WAIT })
  await imagesLoaded(bob, '#message-list li.message.theirs img')
  await imagesLoaded(alice, '#message-list li.message.own img')
  t.equal(await composer.inputValue(), '', 'the caption went with the image')
  // The list's preview shows the caption, not the file's name.
  await aliceGroup.locator('.preview', { hasText: /^You: A picture$/ }).waitFor({ timeout: WAIT })
  for (const [page, who] of [[bob, 'theirs'], [alice, 'own']] as const) {
    const preview = await imageBox(bubble(page, 'A picture', who).locator('img'))
    t.equal(preview.naturalWidth, 480, `${who}: the list loads the server's preview (480 wide), not the whole image`)
    t.match(await bubble(page, 'A picture', who).locator('img').getAttribute('src'), /\/thumbnail\?/, `${who}: by the file's signed URL`)
    t.ok(preview.width <= 288 && preview.height <= 224, `${who}: the preview is bounded (${preview.width}×${preview.height})`)
    t.ok(Math.abs(preview.width / preview.height - 2) < 0.02, `${who}: the preview keeps the aspect`)
    // Its place is kept before it loads (from the Message's width and height): the same element with nothing
    // to load takes the same box, so the list does not jump when the picture arrives.
    const reserved = await bubble(page, 'A picture', who).locator('img').evaluate((i: HTMLImageElement) => {
      const empty = i.cloneNode() as HTMLImageElement
      empty.removeAttribute('src')
      empty.alt = ''
      empty.style.display = 'block'
      document.body.append(empty)
      const box = empty.getBoundingClientRect()
      empty.remove()
      return { width: box.width, height: box.height }
    })
    t.ok(Math.abs(reserved.width - preview.width) < 1 && Math.abs(reserved.height - preview.height) < 1,
      `${who}: its box is kept before it loads (${reserved.width}×${reserved.height} for ${preview.width}×${preview.height})`)
  }

  // Who read it: Bob has the group open, so he read it at once; Carol reads it through the API. Live. (Alice
  // opened the group again since Carol's rename, so she knows Carol's new name.)
  const picture = bubble(alice, 'A picture', 'own')
  await picture.locator('.read-by', { hasText: /^Read by Bob$/ }).waitFor({ timeout: WAIT })
  const group = (await call(a.base, 'GET', '/conversations', carol.access_token)).body.find((c: { is_group: boolean }) => c.is_group)
  const carolPage = (await call(a.base, 'GET', `/conversations/${group.id}/messages?limit=5`, carol.access_token)).body
  const sent = carolPage.find((m: { file_name: string }) => m.file_name === 'wide.png')
  t.equal((await call(a.base, 'POST', `/messages/${sent.id}/read`, carol.access_token)).status, 204)
  await picture.locator('.read-by', { hasText: /^Read by Bob, Carol Ng$/ }).waitFor({ timeout: WAIT })

  // A click opens the image at full size; Esc closes it and gives focus back to the preview.
  await picture.locator('a.media').click()
  const viewer = alice.locator('#image-dialog')
  await viewer.waitFor({ timeout: WAIT })
  await imagesLoaded(alice, '#viewer-img')
  const full = await imageBox(viewer.locator('img'))
  t.same([full.width, full.height], [800, 400], 'the viewer shows the image at its own size')
  await alice.keyboard.press('Escape')
  await viewer.waitFor({ state: 'hidden', timeout: WAIT })
  t.ok(await picture.locator('a.media').evaluate((a) => a === document.activeElement), 'focus is back on the preview')

  // Keyboard only from there: Tab to the composer, Shift+Enter for a new line, Enter sends.
  for (let i = 0; i < 20 && !(await composer.evaluate((e) => e === document.activeElement)); i++) await alice.keyboard.press('Tab')
  t.ok(await composer.evaluate((e) => e === document.activeElement), 'Tab reaches the composer')
  await alice.keyboard.type('Line one')
  await alice.keyboard.press('Shift+Enter')
  await alice.keyboard.type('line two')
  await alice.keyboard.press('Enter')
  await bubble(bob, 'Line one\nline two', 'theirs').waitFor({ timeout: WAIT })
  // The read-by line moves to Alice's newest message: Bob has read it, Carol not yet; the picture's ticks still know both.
  await bubble(alice, 'Line one\nline two', 'own').locator('.read-by', { hasText: /^Read by Bob$/ }).waitFor({ timeout: WAIT })
  t.equal(await picture.locator('.read-by').count(), 0, 'one read-by line, under the newest message')
  t.equal(await picture.locator('.ticks').getAttribute('title'), 'Read by Bob, Carol Ng')

  // A video and a file: Bob gets a player and a download link. The file goes up slowly enough to see progress.
  await alice.getByLabel('Attach a file').setInputFiles({ name: 'clip.mp4', mimeType: 'video/mp4', buffer: MP4 })
  const video = bob.locator('#message-list li.message.theirs video')
  await video.waitFor({ timeout: WAIT })
  t.ok(await video.evaluate((v: HTMLVideoElement) => v.controls && new URL(v.src).pathname.startsWith('/files/')), 'a player for the video')
  const cdp = await alice.context().newCDPSession(alice)
  await cdp.send('Network.enable')
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1_000_000 })
  await alice.getByLabel('Attach a file').setInputFiles({ name: 'report.pdf', mimeType: 'application/pdf', buffer: PDF })
  await alice.getByRole('progressbar', { name: 'Uploading report.pdf' }).waitFor({ timeout: WAIT })
  await alice.waitForFunction(() => {
    const bar = document.querySelector<HTMLProgressElement>('#uploads progress')
    return bar && bar.value > 0 && bar.value < 1 && /\d+%$/.test(bar.nextElementSibling!.textContent!)
  }, undefined, { timeout: WAIT })
  await alice.locator('#uploads li').waitFor({ state: 'detached', timeout: WAIT })
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 })
  const download = bob.locator('#message-list li.message.theirs a.file', { hasText: 'report.pdf' })
  await download.waitFor({ timeout: WAIT })
  t.equal(await download.getAttribute('download'), 'report.pdf', 'a download link for the file')
  t.equal(await download.evaluate((a: HTMLAnchorElement) => fetch(a.href).then((r) => r.status)), 200, 'and it works')
  await alice.locator('#message-list a.file', { hasText: 'report.pdf' }).waitFor({ timeout: WAIT })

  // Paste a picture into the composer, drop a file on the conversation: both are sent.
  await composer.evaluate((el, bytes) => {
    const dt = new DataTransfer()
    dt.items.add(new File([new Uint8Array(bytes)], 'pasted.png', { type: 'image/png' }))
    el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }))
  }, [...PNG])
  await bob.locator('#message-list li.message.theirs img[alt="pasted.png"]').waitFor({ timeout: WAIT })
  await alice.locator('#messages').evaluate((el, bytes) => {
    const dt = new DataTransfer()
    dt.items.add(new File([new Uint8Array(bytes)], 'dropped.txt', { type: 'text/plain' }))
    el.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }))
    el.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }))
  }, [...Buffer.from('dropped text\n')])
  await bob.locator('#message-list a.file', { hasText: 'dropped.txt' }).waitFor({ timeout: WAIT })
  // A file's icon is an SVG, not an emoji that may render as a box.
  t.equal(await download.locator('svg.icon-file').count(), 1, 'an SVG icon on the file')
  t.notMatch(await download.textContent(), /\p{Extended_Pictographic}/u, 'no emoji in the file link')

  // Alice removes Carol, then Bob leaves: each sees the other's change live.
  await alice.getByRole('button', { name: 'Group settings' }).click()
  await settings.getByRole('button', { name: 'Remove Carol' }).click()
  await systemLine(bob, 'Alice Liddell removed Carol').waitFor({ timeout: WAIT })
  await bob.locator('#conv-status', { hasText: /^2 members$/ }).waitFor({ timeout: WAIT })
  await bob.getByRole('button', { name: 'Group settings' }).click()
  await bobSettings.getByRole('button', { name: 'Leave group' }).click()
  await bobGroup.waitFor({ state: 'detached', timeout: WAIT })
  await settings.locator('#settings-members li', { hasText: 'Bob' }).waitFor({ state: 'detached', timeout: WAIT })
  await systemLine(alice, 'Bob left').waitFor({ timeout: WAIT })
  await alice.locator('#conv-status', { hasText: /^1 member$/ }).waitFor({ timeout: WAIT })
  await alice.keyboard.press('Escape')

  // Bob changes his password (a wrong current one is refused next to its field); then only the new one signs in.
  await bob.getByRole('button', { name: 'Profile' }).click()
  const bobProfile = bob.locator('#profile-dialog')
  const changePassword = async (current: string, next: string) => {
    await bobProfile.getByLabel('Current password').fill(current)
    await bobProfile.getByLabel('New password').fill(next)
    await bobProfile.getByRole('button', { name: 'Change password' }).click()
  }
  await changePassword('Wr0ngPassword', 'N3wPassword')
  await bob.locator('#profile-current_password-error', { hasText: 'incorrect' }).waitFor({ timeout: WAIT })
  await changePassword('Passw0rd1', 'N3wPassword')
  await bobProfile.locator('.form-error', { hasText: 'Password changed' }).waitFor({ timeout: WAIT })
  await bob.keyboard.press('Escape')
  await bob.getByRole('button', { name: 'Sign out' }).click()
  await signIn(bob, 'bob', 'Passw0rd1')
  await bob.locator('#login-form .form-error', { hasText: 'Wrong username or password' }).waitFor({ timeout: WAIT })
  await signIn(bob, 'bob', 'N3wPassword')
  await bob.locator('#me', { hasText: 'Bob' }).waitFor({ timeout: WAIT })

  // Bob deletes his account: he is signed out, and cannot sign in again.
  await bob.getByRole('button', { name: 'Profile' }).click()
  await bobProfile.getByRole('button', { name: 'Delete account' }).click()
  await bobProfile.getByRole('button', { name: 'Confirm delete account' }).click()
  await bob.locator('#login-form').waitFor({ timeout: WAIT })
  t.equal(await bob.locator('#delete-error').textContent(), '', 'the deletion reported no error')
  await signIn(bob, 'bob', 'N3wPassword')
  await bob.locator('#login-form .form-error', { hasText: 'Wrong username or password' }).waitFor({ timeout: WAIT })

  t.same(problems, [], 'no dialogs, script errors or CSP violations')
  t.comment(`browser test wall time: ${((Date.now() - started) / 1000).toFixed(1)} s`)
})
