// The `parley` CLI (issue 16, point 3) as a user runs it: the bin as a real process against a real instance,
// behind a TCP proxy standing for the network. Each person has their own session file.
import { spawn } from 'node:child_process'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { buildLiveApp, tempDir } from './helper.ts'
import { BIN, cliEnv, follow, parley, spawnParley } from './cli-run.ts'
import { tcpProxy } from './tcp-proxy.ts'

t.setTimeout(120_000)
const { base } = await buildLiveApp(t)
const proxy = await tcpProxy(t, [base])
const dir = await tempDir(t, 'parley-cli-')
const alice = join(dir, 'alice', 'session.json')
const bob = join(dir, 'bob.json')
const names = { alice: `alice_${process.pid}`, bob: `bob_${process.pid}` }
const password = 'Passw0rd'
const json = (s: string) => JSON.parse(s)
let conversationId = ''

t.test('register and login keep the session in a file of the owner only', async (t) => {
  const reg = await parley(alice, ['register', '-u', names.alice, '-p', password, '--display-name', 'Alice', '--url', proxy.base])
  t.equal(reg.code, 0, reg.stderr)
  t.equal(reg.stdout, `signed in to ${proxy.base} as @${names.alice}\n`, 'a short human line')
  t.equal((await stat(alice)).mode & 0o777, 0o600, 'the session file is mode 0600')
  const kept = json(await readFile(alice, 'utf8'))
  t.equal(kept.url, proxy.base, 'it keeps the instance')
  t.ok(kept.refresh_token, 'and the refresh token')

  const bobReg = await parley(bob, ['register', '--json', '-u', names.bob, '-p', password], { PARLEY_URL: base })
  t.equal(bobReg.code, 0, bobReg.stderr)
  t.equal(json(bobReg.stdout).user.username, names.bob, '--json: one JSON value, the user (PARLEY_URL gave the instance)')

  const login = await parley(alice, ['login', '--json', '-u', names.alice, '--url', proxy.base], { PARLEY_PASSWORD: password })
  t.equal(login.code, 0, login.stderr)
  t.equal(json(login.stdout).user.display_name, 'Alice', 'login: the password from PARLEY_PASSWORD')
  t.not(json(await readFile(alice, 'utf8')).refresh_token, kept.refresh_token, 'the new session replaced the old one')
})

t.test('on a terminal, register asks for the username and the password, and does not echo the password', async (t) => {
  // util-linux `script` gives the CLI a pseudo-terminal; what we write to it is typed on that terminal.
  const file = join(dir, 'erin.json')
  const child = spawn('script', ['-qec', `${BIN} register --url ${base}`, '/dev/null'], { env: cliEnv(file), stdio: ['pipe', 'pipe', 'pipe'] })
  t.teardown(() => child.exitCode === null && child.kill('SIGKILL'))
  const term = follow(child)
  const screen = () => term.out.join('\n')
  await term.until(() => term.shown.text.includes('username: '), 'the username prompt')
  child.stdin!.write(`erin_${process.pid}\r`)
  await term.until(() => term.shown.text.includes('password: '), 'the password prompt')
  child.stdin!.write('Secret0pw\r')
  t.equal(await term.exited, 0, screen())
  t.match(screen(), `signed in to ${base} as @erin_${process.pid}`, 'signed in')
  t.notMatch(term.shown.text, 'Secret0pw', 'the password was not shown')
  t.ok(JSON.parse(await readFile(file, 'utf8')).refresh_token, 'and the session kept')
})

t.test('send to @user opens the direct conversation, with a client_id; the other lists it with its unread count', async (t) => {
  const sent = await parley(alice, ['send', '--json', `@${names.bob}`, 'hello bob'])
  t.equal(sent.code, 0, sent.stderr)
  const message = json(sent.stdout)
  t.match(message, { content: 'hello bob', seq: Number, client_id: /^[0-9a-f-]{36}$/ }, 'the stored message, sent with a client_id')
  conversationId = message.conversation_id

  const again = await parley(alice, ['send', '--json', '--client-id', message.client_id, conversationId, 'hello bob'])
  t.equal(json(again.stdout).id, message.id, 'the same client_id again: the first message, not a second one')

  const listed = await parley(bob, ['conversations', '--json'])
  const [c] = json(listed.stdout)
  t.match(c, { id: conversationId, unread_count: 1, last_message: { content: 'hello bob' } }, 'bob sees it, one unread')
  const human = await parley(bob, ['conversations'])
  t.equal(human.stdout, `${conversationId}  Alice (@${names.alice})  1 unread  Alice: hello bob\n`, 'the other person, unread count, last message')
})

t.test('tail prints what another user sends, and after its socket is cut, what was sent meanwhile, once each', async (t) => {
  const child = spawnParley(alice, ['tail', '--json', conversationId])
  t.teardown(() => child.exitCode === null && child.kill('SIGKILL'))
  const tail = follow(child)
  const notes = () => tail.err.map(json)
  const messages = () => tail.out.map(json).filter((e) => e.type === 'new_message').map((e) => e.data.content)
  await tail.until(() => notes().some((n) => n.state === 'live'), 'the socket live')

  t.equal((await parley(bob, ['send', conversationId, 'while you tail'])).code, 0)
  await tail.until(() => messages().includes('while you tail'), 'the live message')

  proxy.block()
  proxy.cut()
  await tail.until(() => notes().some((n) => n.state === 'offline'), 'the cut seen')
  for (const text of ['gap 1', 'gap 2', 'gap 3']) t.equal((await parley(bob, ['send', conversationId, text])).code, 0)
  proxy.unblock()
  await tail.until(() => messages().includes('gap 3'), 'the messages sent meanwhile')
  await parley(bob, ['send', conversationId, 'after'])
  await tail.until(() => messages().includes('after'), 'a message after the resume')

  t.same(messages(), ['while you tail', 'gap 1', 'gap 2', 'gap 3', 'after'], 'every message once, in order')
  const seqs = tail.out.map(json).map((e) => e.seq)
  t.same(seqs, [...seqs].sort((a, b) => a - b), 'one JSON event a line, in seq order')
  t.equal(new Set(seqs).size, seqs.length, 'no event twice')
  t.ok(notes().filter((n) => n.state === 'live').length >= 2, 'live again after the cut (on stderr, stdout stays data)')

  child.kill('SIGINT')
  t.equal(await tail.exited, 0, 'Ctrl+C ends it cleanly')
})

t.test('tail without --json: a short line for each message', async (t) => {
  const child = spawnParley(alice, ['tail', conversationId])
  t.teardown(() => child.exitCode === null && child.kill('SIGKILL'))
  const tail = follow(child)
  await tail.until(() => tail.err.includes('parley: live'), 'the socket live')
  await parley(bob, ['send', conversationId, 'in plain text'])
  await tail.until(() => tail.out.length > 0, 'a line')
  t.match(tail.out, [/^\d\d:\d\d bob_\d+: in plain text$/], 'time, sender, text')
  child.kill('SIGINT')
  t.equal(await tail.exited, 0)
})

t.test('upload sends a file with its caption', async (t) => {
  const file = join(dir, 'notes.txt')
  await writeFile(file, 'the minutes\n')
  const up = await parley(alice, ['upload', '--json', conversationId, file, '--caption', 'minutes'])
  t.equal(up.code, 0, up.stderr)
  t.match(json(up.stdout), { message_type: 'file', file_name: 'notes.txt', file_size: 12, content: 'minutes', conversation_id: conversationId })
  const human = await parley(bob, ['upload', `@${names.alice}`, file])
  t.match(human.stdout, /^\d\d:\d\d bob_\d+: \[file notes\.txt\]  \(.+, 12 bytes\)\n$/, 'a short human line')
})

t.test('errors: one line on stderr, a non-zero exit code, the API code with --json', async (t) => {
  const missing = await parley(alice, ['send', '--json', '00000000-0000-4000-8000-000000000000', 'hi'])
  t.equal(missing.code, 1)
  t.equal(missing.stdout, '', 'nothing on stdout')
  t.same(json(missing.stderr), { error: 'Conversation not found', code: 'CONVERSATION_NOT_FOUND' }, 'one JSON line: the API\'s error')
  const nobody = await parley(alice, ['send', '@nobody_here', 'hi'])
  t.same([nobody.code, nobody.stderr], [1, 'parley: no user @nobody_here (USER_NOT_FOUND)\n'], 'a human line')
  const wrong = await parley(alice, ['send', conversationId])
  t.equal(wrong.code, 2, 'a wrong command line: exit code 2')
  t.equal(wrong.stderr, "parley: missing required argument 'text' (see --help)\n", 'one line')
  const bad = await parley(alice, ['conversations', '--json', '--limit', 'many'])
  t.same([bad.code, JSON.parse(bad.stderr)], [2, { error: "option '--limit <n>' argument 'many' is invalid. a whole number, 1 or more", code: 'USAGE' }], 'with --json, as JSON')
  const refused = await parley(join(dir, 'x.json'), ['login', '--json', '-u', names.alice, '-p', 'Wrong0pass', '--url', base])
  t.same([refused.code, json(refused.stderr).code], [1, 'INVALID_CREDENTIALS'], 'a refused login')
})

t.test('logout ends the session on the server and forgets it', async (t) => {
  const { refresh_token } = json(await readFile(alice, 'utf8'))
  t.equal((await parley(alice, ['logout'])).code, 0)
  await t.rejects(stat(alice), 'the session file is gone')
  const res = await fetch(`${base}/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token }) })
  t.equal(res.status, 401, 'its refresh token no longer works')
  const after = await parley(alice, ['conversations', '--json'])
  t.same([after.code, json(after.stderr).code], [1, 'SIGNED_OUT'])
})
