// @parley/client against two real instances (processes) behind a TCP proxy standing for the network: an instance
// killed mid-stream, a listener drop, a stalled network, a lost ack, a send made offline. In each, the events the
// SDK emits are the server's log, each once and in order, and every outbox send is stored exactly once.
import t, { type Test } from 'tap'
import { type Message, MemoryOutbox, type OutboxEntry, type OutboxStorage } from '../client/src/index.ts'
import { STALLED } from '../client/src/socket.ts'
import { JWT_SECRET } from './helper.ts'
import { directConversation, logOf, restSend, sdkClient, storedByClientId, until } from './client-sdk.ts'
import { startCluster } from './processes.ts'
import pg from 'pg'
import { tcpProxy } from './tcp-proxy.ts'

t.setTimeout(240_000)
const ENV = { JWT_SECRET, AUTH_RATE_LIMIT_MAX: '1000', LISTENER_PROBE_INTERVAL: '500' }
const cluster = await startCluster(t, ENV)
const password = 'Passw0rd'
let people = 0

/** Alice (on the SDK, through a proxy to A then B) and Bob (REST, on B) in a direct conversation. */
async function scene(t: Test) {
  const proxy = await tcpProxy(t, [cluster.a.base, cluster.b.base])
  const name = `alice${++people}`
  const alice = await cluster.user(cluster.b.base, name)
  const bob = await cluster.user(cluster.b.base, `bob${people}`)
  const conv = await directConversation(cluster.b.base, bob, alice)
  const sdk = sdkClient(t, { baseUrl: proxy.base })
  await sdk.client.login(`${name}_${process.pid}`, password)
  sdk.client.follow(conv.id, conv.lastSeq)
  sdk.client.connect()
  await until(sdk.client, () => sdk.client.state === 'live', 'the first socket')
  const bobSends = async (n: number, label: string) => {
    for (let i = 0; i < n; i++) await restSend(cluster.b.base, bob, conv.id, `${label} ${i}`)
  }
  /** Once every send is done: waits until the SDK has delivered the whole log, then compares: every event once, in seq order. */
  const assertStream = async (t: Test) => {
    const log = await logOf(cluster.url, conv.id, conv.lastSeq)
    await until(sdk.client, () => (sdk.events.at(-1)?.seq ?? 0) >= log.at(-1)![0], 'the last event of the log')
    t.same(sdk.events.map((e) => [e.seq, e.type]), log, 'the SDK emitted every event of the log, once each, in seq order')
  }
  /** Every send the SDK resolved is stored once, by its client_id, and is the message the SDK was given. */
  const assertSentOnce = async (t: Test, sent: Array<{ id: string; client_id: string | null }>) => {
    const stored = await storedByClientId(cluster.url, alice.id)
    t.equal(new Set(sent.map((m) => m.id)).size, sent.length, 'each send is its own message')
    t.same(sent.map((m) => stored.get(m.client_id!)), sent.map(() => 1), 'each outbox send is stored exactly once')
    const delivered = sdk.events.filter((e) => e.type === 'new_message' && e.data.sender_id === alice.id).map((e) => e.type === 'new_message' && e.data.id)
    t.same(delivered, sent.map((m) => m.id), 'and reached the sender\'s own stream once, in the order sent')
  }
  return { proxy, alice, bob, conv, ...sdk, bobSends, assertStream, assertSentOnce }
}

t.test('the listener connections dropped: the server replays, the SDK emits each event once, in order', async (t) => {
  const s = await scene(t)
  await s.bobSends(3, 'before')
  const admin = new pg.Client({ connectionString: cluster.url })
  await admin.connect()
  t.teardown(() => admin.end())
  const { rowCount } = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'parley-listener' AND datname = current_database()")
  t.equal(rowCount, 2, 'both instances lost their LISTEN connection')
  const sending = [s.client.send(s.conv.id, 'alice during the drop 1'), s.client.send(s.conv.id, 'alice during the drop 2')]
  await s.bobSends(4, 'during')
  const sent = await Promise.all(sending)
  await s.assertStream(t)
  await s.assertSentOnce(t, sent)
})

t.test('the network stalls: the silent socket is given up, a new one resumes, nothing is lost or doubled', async (t) => {
  const s = await scene(t)
  await s.bobSends(3, 'before')
  s.proxy.stall()
  // Made on a socket that still looks open: its frame goes nowhere, the watchdog replaces the socket, the outbox retries.
  const sending = [s.client.send(s.conv.id, 'alice into the stall 1'), s.client.send(s.conv.id, 'alice into the stall 2')]
  await s.bobSends(3, 'during')
  await until(s.client, () => s.states.some((st) => st.state === 'offline' && st.code === STALLED), 'the stalled socket given up')
  await s.bobSends(2, 'after')
  const sent = await Promise.all(sending)
  await s.assertStream(t)
  await s.assertSentOnce(t, sent)
  t.equal(s.client.state, 'live', 'live again')
})

t.test('an ack lost on the way back: the retry with the same client_id gets the first message, stored once', async (t) => {
  const s = await scene(t)
  await s.bobSends(2, 'before')
  // What the client sends still reaches the server; nothing comes back.
  s.proxy.stall({ downOnly: true })
  const sent = await s.client.send(s.conv.id, 'alice, ack lost')
  t.ok(s.states.some((st) => st.state === 'offline'), 'the socket that lost the ack was replaced')
  await s.bobSends(2, 'after')
  await s.assertStream(t)
  await s.assertSentOnce(t, [sent])
})

t.test('sends made offline wait in a pluggable outbox, survive the client, and land once when a client is back online', async (t) => {
  const s = await scene(t)
  await s.bobSends(2, 'before')
  // A storage of the app's own (as IndexedDB would be): outlives the first client.
  const kept = new MemoryOutbox()
  const storage: OutboxStorage & { puts: number } = {
    puts: 0,
    all: () => kept.all(),
    put: (e: OutboxEntry) => (storage.puts++, kept.put(e)),
    remove: (id: string) => kept.remove(id),
  }
  const offline = sdkClient(t, { baseUrl: s.proxy.base, outbox: storage, tokens: s.client.tokens.tokens })
  offline.client.follow(s.conv.id, s.conv.lastSeq)
  s.proxy.block()
  s.proxy.stall()
  void offline.client.send(s.conv.id, 'offline 1').catch(() => {})
  void offline.client.send(s.conv.id, 'offline 2').catch(() => {})
  offline.client.connect()
  await until(offline.client, () => offline.states.filter((st) => st.state === 'offline').length >= 2, 'two refused connects')
  t.equal(storage.puts, 2, 'both sends are in the storage')
  t.equal((await kept.all()).length, 2, 'and still there: nothing reached the server')
  offline.client.close()
  s.proxy.unblock()

  const later = sdkClient(t, { baseUrl: s.proxy.base, outbox: storage, tokens: s.client.tokens.tokens })
  const sent: Message[] = []
  later.client.on('sent', ({ message }) => sent.push(message))
  later.client.connect()
  await until(later.client, () => sent.length === 2, 'the two offline sends acknowledged')
  t.same(sent.map((m) => m.content), ['offline 1', 'offline 2'], 'in the order they were made')
  t.equal((await kept.all()).length, 0, 'the outbox is empty')
  await s.assertStream(t)
  await s.assertSentOnce(t, sent)
})

// Last: it kills instance A for good.
t.test('an instance killed mid-stream: the SDK reconnects to the other and misses nothing', async (t) => {
  const s = await scene(t)
  await s.bobSends(4, 'before')
  await until(s.client, () => s.events.length >= 4, 'the first events')
  cluster.a.proc.kill('SIGKILL')
  const sending = [1, 2, 3].map((i) => s.client.send(s.conv.id, `alice after the kill ${i}`))
  await s.bobSends(4, 'after')
  const sent = await Promise.all(sending)
  await s.assertStream(t)
  await s.assertSentOnce(t, sent)
  t.ok(s.states.some((st) => st.state === 'offline'), 'the socket on the killed instance closed')
  // Its last events may arrive a moment before the `resumed` frame that follows them: live once that is read.
  await until(s.client, () => s.client.state === 'live', 'the SDK live on the other instance')
  t.equal(s.client.state, 'live', 'and the SDK is live on the other one')
})
