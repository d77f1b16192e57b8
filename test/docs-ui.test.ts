import t from 'tap'
import { launchBrowser, WAIT } from './browser.ts'
import { buildTestApp } from './helper.ts'

// Swagger UI as a new user tries it: "Try it out" on POST /auth/register, then on GET /users/me, with nothing
// typed but the clicks: the examples are the inputs, and the sign-in authorizes the page by itself.

t.test('/docs: register with the example, then GET /users/me is authorized', async (t) => {
  const { app } = await buildTestApp(t)
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const browser = await launchBrowser(t)
  if (!browser) return
  const page = await browser.newPage()
  // Script errors only: Swagger UI's own inline styles are refused by its CSP (staticCSP), as before.
  const problems: string[] = []
  page.on('pageerror', (e) => problems.push(e.message))
  page.setDefaultTimeout(WAIT)
  await page.goto(`${base}/docs/`)

  const run = async (id: string) => {
    const op = page.locator(`#${id}`)
    await op.locator('.opblock-summary').first().click()
    await op.getByRole('button', { name: 'Try it out' }).click()
    await op.getByRole('button', { name: 'Execute' }).click()
    return op.locator('.live-responses-table .response .response-col_status').first()
  }
  t.equal(await (await run('operations-auth-register')).innerText(), '201', 'POST /auth/register with its example: 201')
  t.equal(await page.locator('.btn.authorize.locked').count(), 1, 'the Authorize button shows the page authorized')
  const me = await run('operations-users-getMe')
  t.equal(await me.innerText(), '200', 'GET /users/me: 200, with the token of the sign-in')
  t.match(await page.locator('#operations-users-getMe .live-responses-table').innerText(), /"username": "alice"/, 'the profile of the user the example registered')

  // The Authorize dialog: the bearer token, nothing else.
  await page.locator('.btn.authorize').first().click()
  const dialog = page.locator('.dialog-ux')
  t.match(await dialog.innerText(), /bearer/)
  t.notMatch(await dialog.innerText(), /client_secret|client_id|scopes/i, 'no client secret, client id or scopes')
  t.same(problems, [], 'no script error')
})
