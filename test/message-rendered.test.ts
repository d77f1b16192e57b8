// Each message row keeps the Message as JSON text (`rendered`, triggers/messages.sql), and every read serves that
// copy: it must be what parley_render_message builds from the row now, whatever happened to the row or to the
// message it quotes.
import { sql } from 'kysely'
import t from 'tap'
import { migrateToLatest } from '../db/migrate.ts'
import { buildTestApp, client, groupOf, register, sendAs } from './helper.ts'

type DB = Awaited<ReturnType<typeof buildTestApp>>['db']

/** Messages whose kept copy is not what would be built from them now. */
const stale = async (db: DB) =>
  (await sql<{ id: string }>`SELECT id FROM messages m WHERE m.rendered IS DISTINCT FROM parley_render_message(m)`.execute(db)).rows

t.test('the kept copy follows every change of a message, and of the message it quotes', async (t) => {
  const { app, db } = await buildTestApp(t)
  const [alice, bob, carol] = [await register(app), await register(app), await register(app)]
  const group = await groupOf(app, alice, [bob, carol])
  const target = await sendAs(app, alice, group, 'the original words')
  const reply = await sendAs(app, bob, group, 'a reply to it', { reply_to_id: target.id })
  const root = await sendAs(app, carol, group, 'a thread root')
  const inThread = await sendAs(app, alice, group, 'in the thread', { thread_id: root.id })
  const served = async (id: string) => (await client(app, alice).get(`/messages/${id}`)).json()

  t.same(await stale(db), [], 'as written')
  t.equal((await served(reply.id)).reply_to.content, 'the original words')

  const edited = await client(app, alice).patch(`/messages/${target.id}`, { content: 'the edited words' })
  t.equal(edited.statusCode, 200, edited.body)
  t.equal((await served(reply.id)).reply_to.content, 'the edited words', "the reply's quote follows an edit of its target")
  t.equal((await client(app, bob).post(`/messages/${target.id}/reactions`, { emoji: '👍' })).statusCode, 200)
  t.same((await served(target.id)).reactions.map((r: { emoji: string }) => r.emoji), ['👍'], 'a reaction')
  t.equal((await client(app, alice).post(`/messages/${target.id}/pin`)).statusCode, 200)
  t.ok((await served(target.id)).pinned_at, 'a pin')
  t.equal((await served(root.id)).thread_reply_count, 1, "a thread's counters")
  t.equal((await client(app, alice).delete(`/messages/${inThread.id}`)).statusCode, 200)
  t.equal((await served(root.id)).thread_reply_count, 0, "a thread's counters after its reply is deleted")
  t.same(await stale(db), [], 'after the edit, the reaction, the pin and the thread')

  t.equal((await client(app, alice).delete(`/messages/${target.id}`)).statusCode, 200)
  const quote = (await served(reply.id)).reply_to
  t.equal(quote.is_deleted, true, "the reply's quote follows the deletion of its target")
  t.not(quote.content, 'the edited words', 'and no longer shows its words')
  t.equal((await client(app, alice).delete('/users/me')).statusCode, 204)
  t.same(await stale(db), [], 'after the deletion of the target and of its sender')

  // What a replay reads is the same copy.
  const { rows } = await sql<{ payload_text: string }>`SELECT payload_text FROM parley_served_events
    WHERE conversation_id = ${group} AND type = 'new_message' AND (payload->>'id')::uuid = ${reply.id}`.execute(db)
  t.equal(JSON.parse(rows[0].payload_text).reply_to.is_deleted, true, 'the replay serves the reply as it is now')
})

t.test('rows from before the copy existed are given one when the script runs', async (t) => {
  const { app, db } = await buildTestApp(t)
  const [alice, bob] = [await register(app), await register(app)]
  const group = await groupOf(app, alice, [bob])
  const first = await sendAs(app, alice, group, 'written before the upgrade')
  await sendAs(app, bob, group, 'and a reply', { reply_to_id: first.id })
  // As a release before the column left them.
  await db.transaction().execute(async (trx) => {
    await sql`ALTER TABLE messages DISABLE TRIGGER USER`.execute(trx)
    await sql`UPDATE messages SET rendered = NULL WHERE conversation_id = ${group}`.execute(trx)
    await sql`ALTER TABLE messages ENABLE TRIGGER USER`.execute(trx)
  })
  t.equal((await stale(db)).length, 3, 'three rows without their copy (the group\'s first line too)')
  await sql`UPDATE parley_repeatable SET checksum = 'changed' WHERE name = 'messages'`.execute(db)
  await migrateToLatest(db)
  t.same(await stale(db), [], 'every row has its copy again')
  const page = (await client(app, bob).get(`/conversations/${group}/messages`)).json()
  const texts = page.filter((m: { message_type: string }) => m.message_type === 'text').map((m: { content: string }) => m.content)
  t.same(texts.sort(), ['and a reply', 'written before the upgrade'], 'and is served from it')
})
