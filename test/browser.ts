// What the browser tests share: Debian's Chromium, driven by playwright-core, and a few ways of using the page.
import { existsSync } from 'node:fs'
import { type Browser, chromium, type Locator, type Page } from 'playwright-core'
import type { Test } from 'tap'

export const CHROMIUM = '/usr/bin/chromium'
export const WAIT = 20_000

/** Chromium, closed when the test ends; undefined (and the test failed) when it is not installed. */
export function launchBrowser(t: Test): Promise<Browser> | undefined {
  if (!existsSync(CHROMIUM)) {
    t.fail(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run the browser tests`)
    return undefined
  }
  const launching = chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
  t.teardown(async () => (await launching).close())
  return launching
}

/**
 * Collects what must not happen on a page: dialogs (an alert() from injected markup), script errors, CSP
 * violations; `expected` names console errors the test causes on purpose.
 */
export function watch(page: Page, name: string, problems: string[], expected?: RegExp) {
  page.on('dialog', (d) => {
    problems.push(`${name}: dialog ${d.type()} "${d.message()}"`)
    d.dismiss().catch(() => {})
  })
  page.on('pageerror', (e) => problems.push(`${name}: page error ${e.message}`))
  page.on('console', (m) => {
    // Expected: the 400 of the refused weak password, the 401 and 403 of wrong passwords, and a dropped
    // socket while its instance restarts or its account goes.
    if (m.type() === 'error' && !/status of 40[013]|WebSocket|ERR_CONNECTION_REFUSED/.test(m.text()) && !expected?.test(m.text())) problems.push(`${name}: console ${m.text()}`)
  })
}

/**
 * The text frames a page's WebSockets receive from now on (so call it before the page connects); `next(test)`
 * resolves on the first frame after the call that passes `test`.
 */
export function receivedFrames(page: Page) {
  const waiters = new Set<{ test(text: string): boolean; resolve(): void }>()
  page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
    for (const w of waiters) if (w.test(String(payload))) { waiters.delete(w); w.resolve() }
  }))
  return { next: (test: (text: string) => boolean) => new Promise<void>((resolve) => waiters.add({ test, resolve })) }
}

export async function signIn(page: Page, username: string, password: string) {
  const form = page.locator('#login-form')
  await form.getByLabel('Username').fill(username)
  await form.getByLabel('Password').fill(password)
  await form.getByRole('button', { name: 'Sign in' }).click()
}

export const bubble = (page: Page, text: string | RegExp, who: 'own' | 'theirs') =>
  page.locator(`#message-list li.message.${who}`).filter({ has: page.locator('.text', { hasText: text }) })
/** Picks an action from a message's menu: the "…" button shows on hover (or focus), then the menu item. */
export async function menuAction(page: Page, item: Locator, action: string) {
  await item.hover()
  await item.getByRole('button', { name: 'Message actions' }).click()
  await item.getByRole('menuitem', { name: action, exact: true }).click()
}
