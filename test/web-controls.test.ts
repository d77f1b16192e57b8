import type { Browser, Page } from 'playwright-core'
import t from 'tap'
import { bubble, launchBrowser, menuAction, signIn, WAIT, watch } from './browser.ts'
import { testDatabase } from './helper.ts'
import { call, startServer } from './processes.ts'

// Issue 15 in the web client, in a real Chromium: finding a message, blocking, muting and archiving, marking
// unread and live profiles (image previews are in web.test.ts, with the other pictures). Alice has two devices (two pages, on two instances) so that what
// follows her on her other device is seen; Bob acts by the API, which is quicker than a third page.

const ENV = {
  JWT_SECRET: 'web-test-secret-that-is-at-least-32-chars',
  PRESENCE_HEARTBEAT: '500',
  PRESENCE_TTL: '3000',
  RATE_LIMIT_MAX: '100000',
  AUTH_RATE_LIMIT_MAX: '100000',
}

const register = async (base: string, username: string, display_name: string) => {
  const res = await call(base, 'POST', '/auth/register', undefined, { username, password: 'Passw0rd1', display_name })
  return { token: res.body.access_token as string, id: res.body.user.id as string }
}

const row = (page: Page, name: string) => page.locator('#conversations button.conversation', { has: page.locator('.name', { hasText: name }) })

t.test('finding, blocking, muting, archiving, marking unread and live profiles in the browser', async (t) => {
  const launching = launchBrowser(t)
  if (!launching) return
  const env = { ...ENV, DATABASE_URL: await testDatabase(t) }
  const [a, b] = await Promise.all([startServer(t, env), startServer(t, env)])
  const [alice, bob] = await Promise.all([register(a.base, 'alice', 'Alice'), register(b.base, 'bob', 'Bob')])
  const direct = (await call(a.base, 'POST', '/conversations', alice.token, { participant_ids: [bob.id], is_group: false })).body.id as string

  // An old message far back: sixty more come after it, more than the first page of the conversation.
  const send = (content: string) => call(b.base, 'POST', '/messages', bob.token, { conversation_id: direct, content })
  const old = (await send('Meet me at the café by the station')).body
  await send('<script>alert(1)</script> station news')
  for (let i = 0; i < 60; i++) await send(`filler ${i}`)

  const browser: Browser = await launching
  const problems: string[] = []
  const phone = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage()
  const laptop = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage()
  watch(phone, 'alice (phone)', problems)
  watch(laptop, 'alice (laptop)', problems)
  await Promise.all([phone.goto(`${a.base}/`), laptop.goto(`${b.base}/`)])
  await Promise.all([signIn(phone, 'alice', 'Passw0rd1'), signIn(laptop, 'alice', 'Passw0rd1')])
  await Promise.all([row(phone, 'Bob').waitFor({ timeout: WAIT }), row(laptop, 'Bob').waitFor({ timeout: WAIT })])

  // Search: "cafe" finds "café" (unaccented), the match is marked, markup in a message stays text.
  const search = phone.getByRole('searchbox', { name: 'Search messages' })
  await search.fill('cafe')
  const result = phone.getByRole('list', { name: 'Messages found' }).getByRole('button').filter({ hasText: 'by the station' })
  await result.waitFor({ timeout: WAIT })
  t.equal(await result.locator('mark').first().textContent(), 'café', 'the match is marked, as written')
  await search.fill('station')
  const scripted = phone.getByRole('list', { name: 'Messages found' }).getByRole('button').filter({ hasText: 'station news' })
  await scripted.waitFor({ timeout: WAIT })
  t.match(await scripted.locator('.passage').textContent(), /<script>alert\(1\)<\/script>/, 'a message’s markup shows as text')
  t.equal(await scripted.locator('script').count(), 0, 'and never becomes an element')
  // A click opens the conversation at the message, sixty messages back: the history around it is loaded.
  await search.fill('cafe')
  await result.click()
  const found = bubble(phone, 'Meet me at the café', 'theirs')
  await found.waitFor({ timeout: WAIT })
  t.ok(await found.evaluate((el) => el.classList.contains('highlight')), 'the message found is highlighted')
  t.ok(await found.isVisible(), 'and in view')
  t.notOk(await bubble(phone, 'filler 59', 'theirs').count(), 'the latest messages are not loaded with it')
  // Scrolling down brings the newer messages, up to the latest.
  for (let i = 0; i < 10 && !(await bubble(phone, 'filler 59', 'theirs').count()); i++) {
    await phone.locator('#messages').evaluate((box) => { box.scrollTop = box.scrollHeight })
    await phone.waitForTimeout(200)
  }
  await bubble(phone, 'filler 59', 'theirs').waitFor({ timeout: WAIT })
  t.pass('scrolling down loads the newer messages')

  // Mark as unread, from a message's menu: the conversation counts from there again, on the other device too.
  await menuAction(phone, bubble(phone, 'filler 58', 'theirs'), 'Mark as unread')
  await row(phone, 'Bob').locator('.badge', { hasText: '2' }).waitFor({ timeout: WAIT })
  await row(laptop, 'Bob').locator('.badge', { hasText: '2' }).waitFor({ timeout: WAIT })
  t.pass('two unread again, on both of Alice’s devices')
  // Reading on the laptop clears the phone's badge live (read_state).
  await row(laptop, 'Bob').click()
  await bubble(laptop, 'filler 59', 'theirs').waitFor({ timeout: WAIT })
  await row(phone, 'Bob').locator('.badge').waitFor({ state: 'detached', timeout: WAIT })
  t.pass('a read on one device clears the count on the other')

  // Mute from the conversation's menu: the list says so, on both devices.
  await laptop.getByRole('button', { name: 'Conversation options' }).click()
  await laptop.getByRole('menuitem', { name: 'Mute for 8 hours' }).click()
  await row(laptop, 'Bob').getByRole('img', { name: 'Muted' }).waitFor({ timeout: WAIT })
  await row(phone, 'Bob').getByRole('img', { name: 'Muted' }).waitFor({ timeout: WAIT })
  t.pass('muted, on both devices')

  // Block from Bob's profile: Bob can no longer write to Alice; unblocking lets him again.
  await laptop.getByRole('button', { name: 'Conversation options' }).click()
  await laptop.getByRole('menuitem', { name: 'View profile' }).click()
  const profile = laptop.getByRole('dialog', { name: 'Bob' })
  await profile.getByRole('button', { name: 'Block' }).click()
  await profile.getByRole('button', { name: 'Unblock' }).waitFor({ timeout: WAIT })
  t.equal((await send('can you read me?')).status, 403, 'blocked: Bob’s message is refused')
  await profile.getByRole('button', { name: 'Unblock' }).click()
  await profile.getByRole('button', { name: 'Block' }).waitFor({ timeout: WAIT })
  await profile.getByRole('button', { name: 'Close' }).click()
  t.equal((await send('and now?')).status, 201, 'unblocked: Bob writes again')

  // Live profiles: Bob's new name reaches both of Alice's devices without a reload.
  t.equal((await call(b.base, 'PATCH', '/users/me', bob.token, { display_name: 'Robert' })).status, 200)
  await row(phone, 'Robert').waitFor({ timeout: WAIT })
  await row(laptop, 'Robert').waitFor({ timeout: WAIT })
  t.pass('the new name shows live')

  // Archive: the conversation leaves the list, on both devices, and waits in "Archived".
  await laptop.getByRole('button', { name: 'Conversation options' }).click()
  await laptop.getByRole('menuitem', { name: 'Archive' }).click()
  await row(laptop, 'Robert').waitFor({ state: 'detached', timeout: WAIT })
  await row(phone, 'Robert').waitFor({ state: 'detached', timeout: WAIT })
  await phone.getByRole('button', { name: 'Archived' }).click()
  await row(phone, 'Robert').waitFor({ timeout: WAIT })
  t.equal(await phone.getByRole('heading', { name: 'Archived conversations' }).count(), 1, 'the archived view says what it is')
  await row(phone, 'Robert').click()
  await phone.getByRole('button', { name: 'Conversation options' }).click()
  await phone.getByRole('menuitem', { name: 'Unarchive' }).click()
  await phone.getByRole('button', { name: 'Archived' }).click()
  await row(phone, 'Robert').waitFor({ timeout: WAIT })
  await row(laptop, 'Robert').waitFor({ timeout: WAIT })
  t.pass('unarchived: back in the list, on both devices')

  t.same(problems, [], 'no dialogs, script errors or console errors')
})
