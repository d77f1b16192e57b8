// @parley/client and its tokens, against two real instances whose access tokens live 10 s: refreshed before
// expiry with the `auth` frame keeping the socket open, refreshed after a 4401, REST retried after a 401, and a
// refused refresh token ending in `signed_out`. Also `follow` on a live socket, which fetches what was missed.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import WebSocket from 'ws'
import { type ClientOptions, ParleyClient, unwrap } from '../client/src/index.ts'
import { JWT_SECRET } from './helper.ts'
import { directConversation, logOf, sdkClient, storedByClientId, until } from './client-sdk.ts'
import { call, startCluster } from './processes.ts'

t.setTimeout(180_000)
const cluster = await startCluster(t, { JWT_SECRET, ACCESS_TOKEN_TTL: '10', AUTH_RATE_LIMIT_MAX: '1000' })
const alice = await cluster.user(cluster.a.base, 'alice')
const bob = await cluster.user(cluster.b.base, 'bob')
const conv = await directConversation(cluster.b.base, bob, alice)
// Bob's tokens expire too: he sends through an SDK client of his own, by REST (it never connects).
const bobSdk = sdkClient(t, { baseUrl: cluster.b.base })
await bobSdk.client.login(`bob_${process.pid}`, 'Passw0rd')
const restSend = (_base: string, _who: unknown, conversationId: string, content: string) => bobSdk.client.send(conversationId, content)
const login = async () => (await call(cluster.a.base, 'POST', '/auth/login', undefined, { username: `alice_${process.pid}`, password: 'Passw0rd' })).body
/** A token whose claims are real (its exp is ahead) but whose signature is not: the server refuses it. */
const forged = (token: string) => `${token.slice(0, token.lastIndexOf('.'))}.${'A'.repeat(43)}`

t.test('a socket outlives two access tokens: refreshed before expiry, sent with the auth frame, never closed', async (t) => {
  const { client, events, states } = sdkClient(t, { baseUrl: cluster.a.base })
  const refreshed: string[] = []
  client.on('tokens', (tokens) => refreshed.push(tokens.access_token))
  const first = await client.login(`alice_${process.pid}`, 'Passw0rd')
  client.follow(conv.id, conv.lastSeq)
  client.connect()
  await until(client, () => client.state === 'live', 'live')
  await restSend(cluster.b.base, bob, conv.id, 'with the first token')
  // Each token lives 10 s: the third one is issued after the first has expired.
  await until(client, () => refreshed.length >= 3, 'two refreshes', 60_000)
  await restSend(cluster.b.base, bob, conv.id, 'with the third token')
  const log = await logOf(cluster.url, conv.id, conv.lastSeq)
  await until(client, () => events.length >= log.length, 'the whole log')
  t.same(events.map((e) => [e.seq, e.type]), log, 'every event once, in order')
  t.same(states.map((s) => s.state), ['connecting', 'resuming', 'live'], 'one socket all along: no 4401 at expiry, no reconnect')
  t.not(client.tokens.tokens!.access_token, first.access_token, 'on a new token')
  const me = await client.rest.GET('/users/me')
  t.equal(me.data?.id, alice.id, 'REST calls carry the fresh token')
})

t.test('a token the server refuses (4401): refreshed, reconnected, resumed; REST retried once after its 401', async (t) => {
  await restSend(cluster.b.base, bob, conv.id, 'before the forged token')
  const tokens = await login()
  const { client, events, states } = sdkClient(t, { baseUrl: cluster.b.base, tokens: { access_token: forged(tokens.access_token), refresh_token: tokens.refresh_token } })
  const list = await client.rest.GET('/conversations', { params: { query: { limit: 50, archived: false } } })
  t.equal(list.response.status, 200, 'REST: a 401, a refresh, and the call again')
  const mine = list.data!.find((c) => c.id === conv.id)!
  client.follow(conv.id, mine.last_seq - 1)
  t.same(client.positions(), { [conv.id]: mine.last_seq - 1 }, 'followed from a position of its own')
  const sdk = sdkClient(t, { baseUrl: cluster.b.base, tokens: { access_token: forged(client.tokens.tokens!.access_token), refresh_token: client.tokens.tokens!.refresh_token } })
  client.close()
  sdk.client.follow(conv.id, mine.last_seq - 1)
  sdk.client.connect()
  await until(sdk.client, () => sdk.client.state === 'live', 'live after the refusal')
  t.match(sdk.states, [{ state: 'connecting' }, { state: 'resuming' }, { state: 'offline', code: 4401 }, { state: 'connecting' }, { state: 'resuming' }, { state: 'live' }], 'closed 4401, refreshed, resumed')
  await until(sdk.client, () => sdk.events.length >= 1, 'the replayed event')
  t.same(sdk.events.map((e) => e.seq), [mine.last_seq], 'the event after its position, replayed by resume')
  t.equal(events.length, 0, 'the closed client emitted nothing')
  t.same(states.map((s) => s.state), ['closed'], 'it never connected')
})

t.test('follow on a live socket fetches what was missed at once', async (t) => {
  const { client, events } = sdkClient(t, { baseUrl: cluster.a.base })
  await client.login(`alice_${process.pid}`, 'Passw0rd')
  client.connect()
  await until(client, () => client.state === 'live', 'live')
  const before = (await logOf(cluster.url, conv.id, 0)).at(-1)![0]
  await restSend(cluster.b.base, bob, conv.id, 'missed 1')
  await restSend(cluster.b.base, bob, conv.id, 'missed 2')
  client.follow(conv.id, before)
  await restSend(cluster.b.base, bob, conv.id, 'live')
  const log = await logOf(cluster.url, conv.id, before)
  await until(client, () => events.length >= log.length, 'the missed and the live')
  t.same(events.map((e) => [e.seq, e.type]), log, 'the two missed, then the live one: each once, in order')
})

t.test('a refresh token the server refuses ends the session: signed_out, and the client stops', async (t) => {
  const tokens = await login()
  const spent = tokens.refresh_token
  await call(cluster.a.base, 'POST', '/auth/refresh', undefined, { refresh_token: spent })
  const { client, states } = sdkClient(t, { baseUrl: cluster.a.base, tokens: { access_token: forged(tokens.access_token), refresh_token: spent } })
  const signedOut = client.next('signed_out')
  client.connect()
  const err = await signedOut
  t.equal(err.status, 401, 'the refresh was refused')
  await until(client, () => client.state === 'closed', 'closed')
  t.equal(states.filter((s) => s.state === 'connecting').length, 1, 'no reconnect without a session')
  await t.rejects(client.send(conv.id, 'never'), { code: 'SIGNED_OUT' }, 'a send after it is refused at once, not retried forever')
})

t.test('a kept session whose access token has expired is refreshed before the socket opens (no 4401)', async (t) => {
  const tokens = await login()
  const { client, states } = sdkClient(t, { baseUrl: cluster.a.base, tokens: { access_token: tokens.access_token, refresh_token: tokens.refresh_token, expires_at: Date.now() - 1 } })
  client.connect()
  await until(client, () => client.state === 'live', 'live')
  t.same(states.map((s) => s.state), ['connecting', 'live'], 'straight to live')
  t.not(client.tokens.tokens!.refresh_token, tokens.refresh_token, 'on a refreshed pair')
})

t.test('a send refused for good (not a member) rejects, emits failed and leaves the outbox, by REST and by socket', async (t) => {
  const stranger = await cluster.user(cluster.a.base, 'stranger')
  const tokens = (await call(cluster.a.base, 'POST', '/auth/login', undefined, { username: `stranger_${process.pid}`, password: 'Passw0rd' })).body
  const { client } = sdkClient(t, { baseUrl: cluster.a.base, tokens: { access_token: tokens.access_token, refresh_token: tokens.refresh_token } })
  const failed: string[] = []
  client.on('failed', ({ error }) => failed.push(error.code))
  await t.rejects(client.send(conv.id, 'by REST'), { code: 'CONVERSATION_NOT_FOUND', status: 404 }, 'by REST: the API\'s code and status')
  client.connect()
  await until(client, () => client.state === 'live', 'live')
  await t.rejects(client.send(conv.id, 'by socket'), { code: 'CONVERSATION_NOT_FOUND' }, 'by socket: the error frame\'s code')
  t.same(failed, ['CONVERSATION_NOT_FOUND', 'CONVERSATION_NOT_FOUND'], 'each emitted failed')
  t.same(await client.outbox.storage.all(), [], 'and left the outbox')
  t.equal((await storedByClientId(cluster.url, stranger.id)).size, 0, 'nothing stored')
})

t.test('a resume naming more conversations than one frame may (1000) goes as several, one after another', async (t) => {
  const frames: Array<Record<string, number>> = []
  class Counting extends WebSocket {
    send(data: string) {
      const frame = JSON.parse(data)
      if (frame.type === 'resume') frames.push(frame.conversations)
      super.send(data)
    }
  }
  const { client, events } = sdkClient(t, { baseUrl: cluster.a.base, WebSocket: Counting as unknown as ClientOptions['WebSocket'] })
  await client.login(`alice_${process.pid}`, 'Passw0rd')
  const before = (await logOf(cluster.url, conv.id, 0)).at(-1)![0]
  // Conversations the server does not know are passed over; the real one comes last, in the second frame.
  for (let i = 0; i < 1499; i++) client.follow(randomUUID(), 1)
  client.follow(conv.id, before)
  await restSend(cluster.b.base, bob, conv.id, 'missed while away')
  const log = await logOf(cluster.url, conv.id, before)
  client.connect()
  await until(client, () => client.state === 'live' && events.length >= log.length, 'live, with the missed event')
  t.same(frames.map((f) => Object.keys(f).length), [1000, 500], 'two resume frames, the second after the first was answered')
  t.same(events.map((e) => [e.seq, e.type]), log, 'what was missed, once')
})

t.test('typing reaches the other member; logout ends the session on the server', async (t) => {
  const { client } = sdkClient(t, { baseUrl: cluster.a.base })
  await client.login(`alice_${process.pid}`, 'Passw0rd')
  const watcher = sdkClient(t, { baseUrl: cluster.b.base })
  await watcher.client.login(`bob_${process.pid}`, 'Passw0rd')
  client.connect()
  watcher.client.connect()
  await until(client, () => client.state === 'live', 'live')
  await until(watcher.client, () => watcher.client.state === 'live', 'bob live')
  const seen = watcher.client.next('typing_indicator', (e) => e.data.is_typing && e.conversation_id === conv.id)
  client.typing(conv.id, true)
  t.equal((await seen).data.user_id, alice.id, "Alice's typing, on Bob's instance")

  const refresh = client.tokens.tokens!.refresh_token
  await client.logout()
  t.equal(client.state, 'closed', 'the client is closed')
  const after = await call(cluster.a.base, 'POST', '/auth/refresh', undefined, { refresh_token: refresh })
  t.equal(after.status, 401, 'and its refresh token no longer works')
})

t.test("the API's error details reach the app; a refused refresh before a call is that refusal, not a network error", async (t) => {
  const fresh = new ParleyClient({ baseUrl: cluster.a.base, WebSocket: WebSocket as unknown as ClientOptions['WebSocket'] })
  t.teardown(() => fresh.close())
  const weak = await fresh.register({ username: `weak_${process.pid}`, password: 'short' }).catch((e) => e)
  t.equal(weak.status, 400)
  t.ok(weak.details.some((d: string) => d.includes('password')), `details name the field (${weak.details})`)
  const stale = new ParleyClient({ baseUrl: cluster.a.base, WebSocket: WebSocket as unknown as ClientOptions['WebSocket'], tokens: { access_token: '', refresh_token: 'not-a-token', expires_at: 0 } })
  t.teardown(() => stale.close())
  const refused = await unwrap(stale.rest.GET('/users/me')).catch((e) => e)
  t.equal(refused.status, 401, `the refresh's 401 (${refused.code})`)
  t.not(refused.code, 'NETWORK')
})
