// `npm run screenshots`: the README's pictures of the web client, made on purpose from a realistic conversation
// (the browser tests' own conversations are full of the strings that try to break it). One instance on a
// throwaway embedded PostgreSQL, four people seeded over the REST API, then Debian's Chromium signed in as Alice.
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { chromium, type Page } from 'playwright-core'
import pg from 'pg'
import sharp from 'sharp'
import { CHROMIUM, signIn } from '../test/browser.ts'
import { APP_ROLE, startEmbeddedPostgres } from '../src/embedded-postgres.ts'

const OUT = path.resolve(import.meta.dirname, '../docs/screenshots')
const PASSWORD = 'Screenshots-2026'
const WAIT = 20_000

interface Person { token: string; id: string; username: string }

/** A round avatar: the initials on a colour. */
const avatarPng = (initials: string, colour: string) =>
  sharp(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256"><rect width="256" height="256" fill="${colour}"/>
    <text x="128" y="160" font-family="DejaVu Sans, sans-serif" font-size="104" font-weight="bold" fill="#fff" text-anchor="middle">${initials}</text></svg>`)).png().toBuffer()

/** A photo stand-in: hills under an evening sky. */
const landscapePng = () =>
  sharp(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="960" height="540">
    <defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#2b5876"/><stop offset="1" stop-color="#f7b267"/></linearGradient></defs>
    <rect width="960" height="540" fill="url(#sky)"/><circle cx="700" cy="330" r="60" fill="#ffe29a"/>
    <path d="M0 400 Q 200 300 420 390 T 960 360 V 540 H 0 Z" fill="#3d5a40"/><path d="M0 470 Q 300 380 620 460 T 960 440 V 540 H 0 Z" fill="#26402a"/></svg>`)).png().toBuffer()

async function startInstance(databaseUrl: string): Promise<{ base: string; stop: () => Promise<unknown> }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: path.resolve(import.meta.dirname, '..'),
    env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl, PORT: '0', LOG_LEVEL: 'warn', JWT_SECRET: 'screenshots-secret-that-is-long-enough', RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const base = await new Promise<string>((resolve, reject) => {
    let text = ''
    proc.once('exit', (code) => reject(new Error(`the instance exited with ${code}: ${text}`)))
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      text += d
      const m = /API docs: +(http\S+)\/docs/.exec(text)
      if (m) resolve(m[1])
    })
  })
  proc.removeAllListeners('exit')
  const exited = new Promise((resolve) => proc.once('exit', resolve))
  return { base, stop: () => (proc.kill('SIGTERM'), exited) }
}

function client(base: string) {
  const call = async (method: string, url: string, token?: string, body?: unknown) => {
    const form = body instanceof FormData
    const res = await fetch(`${base}${url}`, {
      method,
      headers: { ...(token && { authorization: `Bearer ${token}` }), ...(!form && body !== undefined && { 'content-type': 'application/json' }) },
      body: form ? body : body === undefined ? undefined : JSON.stringify(body),
    })
    if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`)
    return res.status === 204 ? undefined : res.json()
  }
  const person = async (username: string, displayName: string, colour: string): Promise<Person> => {
    const r = await call('POST', '/auth/register', undefined, { username, password: PASSWORD, display_name: displayName })
    const form = new FormData()
    form.append('file', new Blob([await avatarPng(displayName.split(' ').map((w) => w[0]).join(''), colour)], { type: 'image/png' }), 'avatar.png')
    await call('POST', '/users/me/avatar', r.access_token, form)
    return { token: r.access_token, id: r.user.id, username }
  }
  const say = async (who: Person, conversationId: string, content: string, extra: Record<string, unknown> = {}) =>
    (await call('POST', '/messages', who.token, { conversation_id: conversationId, content, ...extra })) as { id: string }
  return { call, person, say }
}

/** The people and their conversations, as Alice's week might have left them. */
async function seed(base: string) {
  const { call, person, say } = client(base)
  const alice = await person('alice', 'Alice Martin', '#7c4dff')
  const bob = await person('bob', 'Bob Chen', '#00897b')
  const carol = await person('carol', 'Carol Diaz', '#e65100')
  const dan = await person('dan', 'Dan Okafor', '#1565c0')
  const direct = async (a: Person, b: Person) => ((await call('POST', '/conversations', a.token, { participant_ids: [b.id] })) as { id: string }).id
  const react = (who: Person, messageId: string, emoji: string) => call('POST', `/messages/${messageId}/reactions`, who.token, { emoji })

  const withDan = await direct(dan, alice)
  await say(dan, withDan, 'Thanks again for the help with the move yesterday!')
  const withCarol = await direct(carol, alice)
  await say(carol, withCarol, 'I sent you the photos from the concert 📸')

  const hike = ((await call('POST', '/conversations', alice.token, { participant_ids: [bob.id, carol.id, dan.id], is_group: true, name: 'Weekend hike' })) as { id: string }).id
  const picture = new FormData()
  picture.append('file', new Blob([await landscapePng()], { type: 'image/png' }), 'hills.png')
  await call('POST', `/conversations/${hike}/avatar`, alice.token, picture)
  const sunny = await say(carol, hike, 'Saturday looks sunny ☀️ Who is in for the Ridge trail?')
  await say(dan, hike, "I'm in! What time do we start?")
  const meet = await say(alice, hike, "Let's meet at 8:00 at the north parking lot. It's about 4 hours there and back.")
  await call('POST', `/messages/${meet.id}/pin`, alice.token)
  for (const [who, emoji] of [[bob, '🎉'], [dan, '👍'], [carol, '👍']] as const) await react(who, meet.id, emoji)
  await say(bob, hike, `@${carol.username} could you bring the map? Mine got soaked last time.`)
  await say(carol, hike, "Sure, and I'll print a copy for everyone", { reply_to_id: meet.id })
  await say(carol, hike, "I'll check the forecast again on Friday", { thread_id: sunny.id })
  await say(dan, hike, "Don't forget sunscreen!", { thread_id: sunny.id })
  await say(alice, hike, 'And snacks 🍫', { thread_id: sunny.id })

  const withBob = await direct(bob, alice)
  const lunch = await say(bob, withBob, 'Are we still on for lunch tomorrow?')
  await say(alice, withBob, 'Yes! 12:30 at the usual place?')
  const table = await say(bob, withBob, "Perfect, I'll book a table")
  await react(alice, table.id, '👍')
  await say(alice, withBob, 'Could Carol join us? She is back from Lisbon.', { reply_to_id: lunch.id })
  await say(bob, withBob, 'Of course, the more the merrier 😄')
  const photo = new FormData()
  photo.append('file', new Blob([await landscapePng()], { type: 'image/png' }), 'view-from-the-office.png')
  await call('POST', `/messages/upload?conversation_id=${withBob}&caption=${encodeURIComponent('The view from the office tonight')}`, alice.token, photo)
  const last = await say(bob, withBob, 'Wow, that sky!')
  // Read on her phone already, so that the conversation opens at its newest message.
  await call('POST', `/messages/${last.id}/read`, alice.token)
  return { hike, withBob }
}

/**
 * Every image shown has loaded (one whose signed URL is still on its way has no src yet, and counts as
 * complete; the hidden dialogs' have none at all).
 */
const loaded = (page: Page) =>
  page.waitForFunction(() => [...document.images].filter((i) => i.getClientRects().length > 0).every((i) => i.complete && i.naturalWidth > 0 && i.getAttribute('src')), undefined, { timeout: WAIT })

/** Opens a conversation, once its newest message (`last`) is on the page and every picture has loaded. */
async function open(page: Page, name: string, last: string) {
  await page.locator('#conversations button.conversation').filter({ hasText: name }).click()
  await page.locator('#conv-title').filter({ hasText: name }).waitFor({ timeout: WAIT })
  await page.locator('#message-list li.message', { hasText: last }).waitFor({ timeout: WAIT })
  await loaded(page)
}

const dir = await mkdtemp(path.join(tmpdir(), 'parley-screenshots-'))
const database = await startEmbeddedPostgres(dir)
const admin = new pg.Client({ connectionString: database.adminUrl })
await admin.connect()
await admin.query(`CREATE DATABASE screenshots OWNER ${APP_ROLE}`)
await admin.end()
const instance = await startInstance(Object.assign(new URL(database.url), { pathname: '/screenshots' }).toString())
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] })
try {
  await seed(instance.base)
  const phone = await (await browser.newContext({ viewport: { width: 375, height: 780 } })).newPage()
  await phone.goto(`${instance.base}/`)
  await signIn(phone, 'alice', PASSWORD)
  await phone.locator('#conversations button.conversation').nth(3).waitFor({ timeout: WAIT })
  await loaded(phone)
  await phone.screenshot({ path: path.join(OUT, 'conversation-list.png') })

  const page = await (await browser.newContext({ viewport: { width: 1100, height: 720 } })).newPage()
  await page.goto(`${instance.base}/`)
  await signIn(page, 'alice', PASSWORD)
  await open(page, 'Bob Chen', 'Wow, that sky!')
  await page.screenshot({ path: path.join(OUT, 'conversation.png') })

  await open(page, 'Weekend hike', 'print a copy for everyone')
  await page.screenshot({ path: path.join(OUT, 'group-chat.png') })
  await page.locator('#message-list li.message').filter({ hasText: 'Saturday looks sunny' }).getByRole('button', { name: /^3 replies/ }).click({ timeout: WAIT })
  await page.locator('#thread-list > li.message', { hasText: 'And snacks' }).waitFor({ timeout: WAIT })
  await page.screenshot({ path: path.join(OUT, 'thread.png') })
  await page.getByRole('button', { name: 'Close thread' }).click()

  await page.getByRole('button', { name: 'Group settings' }).click()
  await page.locator('#settings-members li', { hasText: 'Dan Okafor' }).waitFor({ timeout: WAIT })
  await page.screenshot({ path: path.join(OUT, 'group.png') })
  console.log(`wrote ${['conversation-list', 'conversation', 'group-chat', 'thread', 'group'].map((n) => `docs/screenshots/${n}.png`).join(', ')}`)
} finally {
  await browser.close()
  await instance.stop()
  await database.stop()
  await rm(dir, { recursive: true, force: true })
}
