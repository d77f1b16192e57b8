import pg from 'pg'
import type { Test } from 'tap'
import WebSocket from 'ws'
import { type ClientOptions, type LogEvent, type Message, ParleyClient } from '../client/src/index.ts'
import { call } from './processes.ts'

/** An SDK client on Node 20 (the `ws` package as its WebSocket) with short timings, closed when the test ends; what it emits is recorded. */
export function sdkClient(t: Test, opts: Partial<ClientOptions> & { baseUrl: string }) {
  const client = new ParleyClient({
    WebSocket: WebSocket as unknown as ClientOptions['WebSocket'],
    pingIntervalMs: 300,
    ackTimeoutMs: 2000,
    requestTimeoutMs: 2000,
    backoff: { initialMs: 50, maxMs: 500 },
    ...opts,
  })
  t.teardown(() => client.close())
  const events: LogEvent[] = []
  const states: Array<{ state: string; code?: number }> = []
  client.on('event', (e) => e.seq !== undefined && events.push(e))
  client.on('state', (s) => states.push(s))
  return { client, events, states }
}

/** Resolves when `test()` holds, checked after each thing the client emits (fails after `ms`). */
export function until(client: ParleyClient, test: () => boolean, what: string, ms = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (test()) return resolve()
    const stops = (['event', 'state', 'sent', 'tokens'] as const).map((type) => client.on(type, check))
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${what}`)), ms)
    function check() {
      if (test()) done()
    }
    function done(err?: Error) {
      clearTimeout(timer)
      stops.forEach((stop) => stop())
      if (err) reject(err)
      else resolve()
    }
  })
}

/** What the server's log holds for a conversation after `afterSeq`: [seq, type] in order. */
export async function logOf(url: string, conversationId: string, afterSeq: number): Promise<Array<[number, string]>> {
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  try {
    const { rows } = await db.query('SELECT seq::int, type FROM conversation_events WHERE conversation_id = $1 AND seq > $2 ORDER BY seq', [conversationId, afterSeq])
    return rows.map((r) => [r.seq, r.type])
  } finally {
    await db.end()
  }
}

/** How many messages the database holds of each client_id of a sender. */
export async function storedByClientId(url: string, senderId: string): Promise<Map<string, number>> {
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  try {
    const { rows } = await db.query('SELECT client_id, count(*)::int AS n FROM messages WHERE sender_id = $1 AND client_id IS NOT NULL GROUP BY client_id', [senderId])
    return new Map(rows.map((r) => [r.client_id, r.n]))
  } finally {
    await db.end()
  }
}

/** A direct conversation of two users, opened by REST; its id and the seq its log is at. */
export async function directConversation(base: string, a: { token: string }, b: { id: string }) {
  const res = await call(base, 'POST', '/conversations', a.token, { participant_ids: [b.id], is_group: false })
  return { id: res.body.id as string, lastSeq: res.body.last_seq as number }
}

/** Sends by REST as another user; the Message. */
export async function restSend(base: string, who: { token: string }, conversationId: string, content: string): Promise<Message> {
  const res = await call(base, 'POST', '/messages', who.token, { conversation_id: conversationId, content })
  if (res.status !== 201) throw new Error(`send failed: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body
}
