import { once } from 'node:events'
import net from 'node:net'
import t, { type Test } from 'tap'
import { Listener } from '../src/realtime/listener.ts'
import { type ConversationEvent, parseAnnouncement } from '../src/realtime/events.ts'
import { buildTestApp, client, register } from './helper.ts'

/** A TCP proxy to PostgreSQL whose open connections can be made to go silent, like a half-open TCP path. */
async function silenceableProxy(target: URL) {
  const live = new Set<{ frozen: boolean; sockets: net.Socket[] }>()
  let held: Array<() => void> | undefined
  const server = net.createServer((inbound) => {
    const outbound = net.connect(Number(target.port), target.hostname)
    const conn = { frozen: false, sockets: [inbound, outbound] }
    live.add(conn)
    inbound.on('data', (d) => conn.frozen || outbound.write(d))
    outbound.on('data', (d) => {
      if (held) held.push(() => inbound.write(d))
      else if (!conn.frozen) inbound.write(d)
    })
    for (const s of conn.sockets) {
      s.on('error', () => {})
      s.on('close', () => conn.sockets.forEach((o) => o.destroy()))
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const url = new URL(target)
  url.port = String((server.address() as net.AddressInfo).port)
  return {
    url: url.toString(),
    /** Every connection open now stops carrying bytes, without a FIN or a reset. */
    silence: () => live.forEach((c) => (c.frozen = true)),
    /** What the server sends waits in the proxy (a slow path), until release() passes it all on in order. */
    hold: () => (held = []),
    release: () => {
      const writes = held ?? []
      held = undefined
      writes.forEach((write) => write())
    },
    close: () => {
      live.forEach((c) => c.sockets.forEach((s) => s.destroy()))
      server.close()
    },
  }
}

/** A listener following one direct conversation from its last seq, connected through a proxy; `send` posts to it. */
async function followedThroughProxy(t: Test, opts: { probeIntervalMs?: number; probeTimeoutMs?: number } = {}) {
  const { app, db, url } = await buildTestApp(t)
  const [alice, bob] = [await register(app), await register(app)]
  const conv: string = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id
  const proxy = await silenceableProxy(new URL(url))
  t.teardown(proxy.close)
  const listener = new Listener({ connectionString: proxy.url, db, served: () => [conv], ...opts })
  t.teardown(() => listener.stop())
  const { last_seq } = await db.selectFrom('conversations').select('last_seq').where('id', '=', conv).executeTakeFirstOrThrow()
  listener.follow(conv, last_seq)
  const got: ConversationEvent[] = []
  listener.on('event', (e: ConversationEvent) => e.conversation_id === conv && got.push(e))
  await listener.start()
  const send = async (content: string) => (await client(app, alice).post('/messages', { conversation_id: conv, content })).json()
  return { listener, proxy, conv, last_seq, got, send }
}

t.test('a listener connection that dies silently is found by the probe, and the missed events are replayed', async (t) => {
  const { listener, proxy, last_seq, got, send } = await followedThroughProxy(t, { probeIntervalMs: 200, probeTimeoutMs: 300 })
  const first = await send('before')
  while (got.length < 1) await new Promise((r) => setTimeout(r, 20))

  const down = once(listener, 'down')
  proxy.silence()
  const [err] = await down
  t.match((err as Error).message, /probe timed out/, 'found by the probe, not by the socket closing')
  t.notOk(listener.up)
  const during = [await send('during 1'), await send('during 2'), await send('during 3')]
  await once(listener, 'up')
  const after = await send('after')
  while (got.length < 5) await new Promise((r) => setTimeout(r, 20))
  t.same(got.map((e) => e.payload.id), [first, ...during, after].map((m) => m.id), 'every event once, in order')
  t.same(got.map((e) => e.seq), got.map((_, i) => last_seq + 1 + i), 'contiguous seqs')
  t.equal(listener.replays, 1)
})

t.test('a fresher snapshot of a followed conversation does not skip the events still on their way', async (t) => {
  const { listener, proxy, conv, last_seq, got, send } = await followedThroughProxy(t)
  // Three messages commit while their notifications are still on the way; meanwhile another member connects to
  // this instance, and the hub follows the conversation again from its fresher last_seq.
  proxy.hold()
  const inFlight = [await send('one'), await send('two'), await send('three')]
  listener.follow(conv, last_seq + 3)
  proxy.release()
  const after = await send('four')
  while (!got.some((e) => e.payload.id === after.id)) await new Promise((r) => setTimeout(r, 20))
  t.same(got.map((e) => e.payload.id), [...inFlight, after].map((m) => m.id), 'the members already here get every event, once, in order')
})

t.test("a notification's head is read and its data kept as the text it came in", async (t) => {
  const conv = '2ab33454-10dc-4900-bb30-cb716422a5f3'
  // The data itself may hold the text that ends the head: only the first one counts.
  const data = '{"id":"m1","content":"say ,\\"data\\": here","reactions": [{"emoji": "👍", "count": 2}]}'
  const note = `{"conversation_id":"${conv}","seq":42,"type":"new_message","ts":1764876900123,"data":${data}}`
  const read = parseAnnouncement(note)
  t.same(read, { conversation_id: conv, seq: 42, type: 'new_message', ts: 1764876900123, data }, 'the head, and the data as it was written')
  t.same(JSON.parse(read!.data!), JSON.parse(note).data, 'the data is the JSON the whole notification holds')
  t.same(parseAnnouncement(`{"conversation_id":"${conv}","seq":43,"type":"new_message"}`),
    { conversation_id: conv, seq: 43, type: 'new_message', ts: undefined, data: undefined }, 'too large to announce: no data, to be read from the log')
  t.equal(parseAnnouncement('not json'), undefined, 'not JSON')
  t.equal(parseAnnouncement('{"seq":1,"type":"x","data":{}}'), undefined, 'no conversation')
})
