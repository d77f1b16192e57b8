// Messages that arrive together are written together (src/services/message-writer.ts): fewer notifying
// commits under load, and nothing a client sees changes.
import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import pg from 'pg'
import t, { type Test } from 'tap'
import { INSERT_MESSAGE, INSERT_MESSAGES } from '../src/services/message-writer.ts'
import { buildTestApp, client, register, type Session, type TestApp } from './helper.ts'

async function setup(t: Test, env: Record<string, string> = {}) {
  const ctx = await buildTestApp(t, env)
  const users: Session[] = []
  for (let i = 0; i < 4; i++) users.push(await register(ctx.app))
  const convs: string[] = []
  for (let i = 1; i < 4; i++) {
    const res = await client(ctx.app, users[0]).post('/conversations', { participant_ids: [users[i].user.id], is_group: true, name: `g${i}` })
    convs.push(res.json().id)
  }
  return { ...ctx, users, convs }
}

/** Fires `n` sends at once, spread over the conversations, each from its conversation's two members in turn. */
function burst(app: TestApp, users: Session[], convs: string[], n: number, extra: (i: number) => Record<string, unknown> = () => ({})) {
  return Promise.all(
    Array.from({ length: n }, (_, i) => {
      const c = i % convs.length
      const sender = i % 2 === 0 ? users[0] : users[c + 1]
      return client(app, sender).post('/messages', { conversation_id: convs[c], content: `burst ${i}`, ...extra(i) })
    }),
  )
}

/** How many transactions wrote these messages (rows inserted by one transaction share its xmin). */
async function transactions(db: Awaited<ReturnType<typeof buildTestApp>>['db'], ids: string[]) {
  const { rows } = await sql<{ n: number }>`SELECT count(DISTINCT xmin::text)::int AS n FROM messages WHERE id = ANY(${ids}::uuid[])`.execute(db)
  return rows[0].n
}

t.test('a burst of sends is written in fewer transactions, every message intact with its own seq', async (t) => {
  const { app, db, users, convs } = await setup(t)
  const responses = await burst(app, users, convs, 90)
  t.same(responses.map((r) => r.statusCode), Array(90).fill(201), 'every send is answered 201')
  const messages = responses.map((r) => r.json())
  messages.forEach((m, i) => t.equal(m.content, `burst ${i}`, `answer ${i} is its own message`))
  for (const conv of convs) {
    const seqs = messages.filter((m) => m.conversation_id === conv).map((m) => m.seq).sort((a, b) => a - b)
    t.same(seqs, Array.from({ length: seqs.length }, (_, k) => seqs[0] + k), 'seqs of a conversation are contiguous, no repeats')
    const logged = await db.selectFrom('conversation_events').select('seq').where('conversation_id', '=', conv).where('type', '=', 'new_message').where('seq', '>=', seqs[0]).orderBy('seq').execute()
    t.same(logged.map((e) => e.seq), seqs, 'each message is logged once, under its seq')
  }
  const txns = await transactions(db, messages.map((m) => m.id))
  t.ok(txns < 90 / 3, `90 messages took ${txns} transactions`)
})

t.test('MESSAGE_BATCH_MAX=1 writes each message on its own', async (t) => {
  const { app, db, users, convs } = await setup(t, { MESSAGE_BATCH_MAX: '1' })
  const responses = await burst(app, users, convs, 30)
  t.same(responses.map((r) => r.statusCode), Array(30).fill(201))
  t.equal(await transactions(db, responses.map((r) => r.json().id)), 30)
})

t.test('one bad row in a batch does not fail the others', async (t) => {
  const { app, db, users, convs } = await setup(t)
  // Four sends from one user with one client_id race inside a batch: the unique index refuses the batch,
  // each row is retried alone, and the repeats are answered with the first message.
  const responses = await burst(app, users, convs, 40, (i) => (i < 8 && i % 2 === 0 ? { client_id: 'same' } : {}))
  const statuses = responses.map((r) => r.statusCode)
  t.ok(statuses.every((s) => s === 201 || s === 200), 'no send fails')
  t.equal(statuses.filter((s) => s === 200).length, 3, 'the repeats of the client_id are answered 200')
  const same = [0, 2, 4, 6].map((i) => responses[i].json().id)
  t.equal(new Set(same).size, 1, 'with the one message that was stored')
  const count = await db.selectFrom('messages').select(db.fn.countAll<number>().as('n')).where('content', 'like', 'burst %').executeTakeFirstOrThrow()
  t.equal(Number(count.n), 40 - 3, 'the others were all stored')
})

t.test('a send is one statement: membership, blocks, reply target and client_id are checked by the insert itself', async (t) => {
  const { app, users, convs } = await setup(t)
  const [alice, bob] = users
  const first = (await client(app, alice).post('/messages', { conversation_id: convs[0], content: 'first' })).json()
  // Every statement this process sends on a pooled connection that reads or writes messages or memberships.
  const seen: string[] = []
  const original = pg.Client.prototype.query
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string })?.text ?? ''
    if (/\b(messages|participants)\b/.test(text)) seen.push(text)
    return (original as (...a: unknown[]) => unknown).apply(this, args)
  } as typeof original
  t.teardown(() => {
    pg.Client.prototype.query = original
  })
  const send = (body: Record<string, unknown>) => client(app, alice).post('/messages', { conversation_id: convs[0], ...body })

  const sent = await send({ content: 'one trip', client_id: 'c-1', reply_to_id: first.id })
  t.equal(sent.statusCode, 201)
  t.equal(seen.length, 1, 'a send with a client_id and a reply: one statement')
  seen.length = 0
  const again = await send({ content: 'one trip', client_id: 'c-1', reply_to_id: first.id })
  t.equal(again.statusCode, 200)
  t.equal(again.json().id, sent.json().id, 'a retry answers the first message')
  t.equal(seen.length, 1, 'in one statement too')

  const dm = (await client(app, alice).post('/conversations', { participant_ids: [bob.user.id] })).json().id
  seen.length = 0
  t.equal((await client(app, alice).post('/messages', { conversation_id: dm, content: 'direct' })).statusCode, 201)
  t.equal(seen.length, 1, 'a send to a direct conversation, its block check included: one statement')
  await client(app, bob).post(`/users/${alice.user.id}/block`)
  t.equal((await client(app, alice).post('/messages', { conversation_id: dm, content: 'refused' })).json().code, 'BLOCKED', 'refused by the statement, and told why')

  // Refusals still say why (a second look, off the hot path).
  t.equal((await client(app, bob).post('/messages', { conversation_id: convs[1], content: 'not mine' })).statusCode, 404, 'not a member')
  t.equal((await send({ content: 'bad reply', reply_to_id: randomUUID() })).json().code, 'INVALID_REPLY')
})

t.test('the send statement probes one row per check: no scan of messages or participants, however large', async (t) => {
  const { db, users, convs } = await setup(t)
  const filler = (n: number) => sql`INSERT INTO messages (conversation_id, sender_id, message_type, content)
    SELECT ${convs[0]}, ${users[0].user.id}, 'text', 'filler ' || g FROM generate_series(1, ${n}::int) g`.execute(db)
  // The generic plans, as prepared statements get them after their first executions (and keep until the next
  // ANALYZE): the batch's (rows as JSON) and the single row's (parameters), joined into one text to look through.
  const genericPlan = async () => {
    await sql`ANALYZE messages`.execute(db)
    await sql`ANALYZE participants`.execute(db)
    const { rows: [target] } = await sql<{ id: string }>`SELECT id FROM messages WHERE conversation_id = ${convs[0]} LIMIT 1`.execute(db)
    const row = {
      id: randomUUID(), conversation_id: convs[0], sender_id: users[0].user.id, message_type: 'text', content: 'a reply',
      reply_to_id: target.id, client_id: 'plan-check', file_id: null, file_url: null, file_name: null, file_size: null, mime_type: null,
      thread_id: target.id, mention_names: [], forwarded_sender_id: null, forwarded_created_at: null, i: 0,
    }
    // INSERT_MESSAGE's parameters, in its order ($1…$19), as SQL literals.
    const one = [row.id, row.conversation_id, row.sender_id, row.message_type, row.content, row.reply_to_id, row.client_id,
      null, null, null, null, null, null, null, null, row.thread_id, '{}', null, null].map((v) => (v === null ? 'NULL' : `'${v}'`)).join(', ')
    return db.connection().execute(async (conn) => {
      await sql`SET plan_cache_mode = force_generic_plan`.execute(conn)
      await sql.raw(`PREPARE send_check(jsonb) AS ${INSERT_MESSAGES}`).execute(conn)
      await sql.raw(`PREPARE send_one AS ${INSERT_MESSAGE}`).execute(conn)
      const { rows: batch } = await sql<{ 'QUERY PLAN': string }>`EXPLAIN EXECUTE send_check(${sql.lit(JSON.stringify([row]))})`.execute(conn)
      const { rows: single } = await sql.raw<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE send_one(${one})`).execute(conn)
      await sql`DEALLOCATE send_check`.execute(conn)
      await sql`DEALLOCATE send_one`.execute(conn)
      await sql`RESET plan_cache_mode`.execute(conn)
      return [...batch, ...single].map((r) => r['QUERY PLAN']).join('\n')
    })
  }
  // A middling table first: a plan made then is kept by every pooled connection while the table grows. A join on
  // messages (the thread's root, as a LATERAL join the planner pulled up) was hashed over a scan of them here.
  await filler(2000)
  t.notMatch(await genericPlan(), /Seq Scan on messages/, 'at 2,000 messages: no scan of messages')
  // Enough rows that reading a whole table is a choice the planner would have to make on purpose.
  await filler(3000)
  await sql`WITH u AS (INSERT INTO users (username, display_name, password_hash)
      SELECT 'filler_' || g, 'Filler', 'x' FROM generate_series(1, 3000) g RETURNING id)
    INSERT INTO participants (conversation_id, user_id) SELECT ${convs[1]}, id FROM u`.execute(db)
  // Blocks among them, so that reading the whole table is no accident of its size either.
  await sql`INSERT INTO blocks (blocker_id, blocked_id) SELECT a.id, b.id FROM users a JOIN users b ON b.username = 'filler_' || (substr(a.username, 8)::int % 3000 + 1)
    WHERE a.username LIKE 'filler\_%'`.execute(db)
  await sql`ANALYZE blocks`.execute(db)
  const plan = await genericPlan()
  t.notMatch(plan, /Seq Scan on messages/, 'no scan of messages (the reply target, the thread, the client_id)')
  t.notMatch(plan, /Seq Scan on participants/, 'no scan of participants (the membership)')
  t.match(plan, /Index (Only )?Scan using \w+ on participants/, 'the membership is probed by an index')
  t.match(plan, /Index Scan using messages_pkey on messages/, 'the reply target and the thread are probed by key')
  t.notMatch(plan, /Seq Scan on blocks/, 'no scan of blocks (a direct conversation\'s pair)')
  t.equal(plan.match(/Index (Only )?Scan using blocks_(pkey|blocked) on blocks/g)?.length, 4, 'a block either way is probed by an index on both ids, once each way, in each statement')
})

t.test('a release that changes what the send statement returns does not break the instances still running', async (t) => {
  const { app, db, users, convs } = await setup(t)
  const send = (content: string) => client(app, users[0]).post('/messages', { conversation_id: convs[0], content })
  t.equal((await send('prepared on this connection')).statusCode, 201)
  // As a newer release's scripts might: the Message's function made again with another result type. A
  // statement prepared before now fails with "cached plan must not change result type" on its connection.
  await sql`DROP FUNCTION parley_message_json(messages) CASCADE`.execute(db)
  await sql`CREATE FUNCTION parley_message_json(m messages) RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT parley_message_text(m)::jsonb $$`.execute(db)
  for (let i = 0; i < 6; i++) {
    const res = await send(`after the change ${i}`)
    t.equal(res.statusCode, 201, `send ${i} is written`)
    t.equal(res.json().content, `after the change ${i}`)
  }
})
