// One session file, several parley processes: refresh tokens rotate and a spent one used again ends the
// session, so a refresh one process made must be taken up by the others, not repeated with the old token.
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { buildLiveApp, tempDir } from './helper.ts'
import { follow, parley, spawnParley } from './cli-run.ts'

t.setTimeout(90_000)

t.test('a tail and a send in another terminal share the session across a refresh: neither is signed out', async (t) => {
  // Access tokens of 10 s: the tail's SDK refreshes about 7 s after sign-in.
  const { base } = await buildLiveApp(t, { ACCESS_TOKEN_TTL: '10' })
  const dir = await tempDir(t, 'parley-cli-')
  const carol = join(dir, 'carol.json')
  const dave = join(dir, 'dave.json')
  const names = { carol: `carol_${process.pid}`, dave: `dave_${process.pid}` }
  for (const [file, name] of [[carol, names.carol], [dave, names.dave]]) {
    const reg = await parley(file, ['register', '-u', name, '-p', 'Passw0rd', '--url', base])
    t.equal(reg.code, 0, reg.stderr)
  }
  const first = JSON.parse((await parley(dave, ['send', '--json', `@${names.carol}`, 'hi carol'])).stdout)
  const child = spawnParley(carol, ['tail', '--json', first.conversation_id])
  t.teardown(() => child.exitCode === null && child.kill('SIGKILL'))
  const tail = follow(child)
  const notes = () => tail.err.map((l) => JSON.parse(l))
  const messages = () => tail.out.map((l) => JSON.parse(l)).filter((e) => e.type === 'new_message').map((e) => e.data.content)
  await tail.until(() => notes().some((n) => n.state === 'live'), 'the tail live')

  // Another terminal finds the access token spent and refreshes: the tail's refresh token in memory is now spent.
  const kept = JSON.parse(await readFile(carol, 'utf8'))
  await writeFile(carol, JSON.stringify({ ...kept, expires_at: 0 }))
  const other = await parley(carol, ['send', first.conversation_id, 'from another terminal'])
  t.equal(other.code, 0, other.stderr)
  t.not(JSON.parse(await readFile(carol, 'utf8')).refresh_token, kept.refresh_token, 'the send refreshed and kept the new pair')

  await tail.until(() => notes().some((n) => n.session === 'refreshed'), 'the tail\'s own refresh')
  t.equal((await parley(dave, ['send', first.conversation_id, 'after the refresh'])).code, 0)
  await tail.until(() => messages().includes('after the refresh'), 'a message after the tail\'s refresh')
  t.same(messages(), ['from another terminal', 'after the refresh'], 'the tail is still signed in and live')
  const again = await parley(carol, ['send', '--json', first.conversation_id, 'still signed in'])
  t.equal(again.code, 0, `the other terminal too: ${again.stderr}`)
  child.kill('SIGINT')
  t.equal(await tail.exited, 0)
})
