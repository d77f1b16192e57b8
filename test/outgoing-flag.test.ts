// conversations.outgoing (issue 17, point 3): the event trigger looks for webhook and push jobs only in a
// conversation marked so. The mark may be true with nothing to find, never false with something: a conversation
// wrongly unmarked would silently lose its deliveries. Every way a webhook, a subscription or a member comes and
// goes is tried here, and a change racing another.
import { createECDH, randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import t, { type Test } from 'tap'
import webPush from 'web-push'
import type { DB } from '../src/database.ts'
import { buildApp } from '../src/app.ts'
import { buildTestApp, client, groupOf, JWT_SECRET, queuedJobs, register, sendAs } from './helper.ts'

const vapid = webPush.generateVAPIDKeys()
const ENV = { WEBHOOK_ALLOW_PRIVATE: 'true', VAPID_PUBLIC_KEY: vapid.publicKey, VAPID_PRIVATE_KEY: vapid.privateKey }

/** The app without a job worker (none is given the database's URL), so that what an event queued stays queued. */
async function workerless(t: Test) {
  const ctx = await buildTestApp(t, ENV)
  await ctx.app.close()
  const app = await buildApp({ config: ctx.config, db: ctx.db, jwtSecret: JWT_SECRET })
  t.teardown(() => app.close())
  return { ...ctx, app }
}

const marked = async (db: DB, id: string) =>
  (await db.selectFrom('conversations').select('outgoing').where('id', '=', id).executeTakeFirstOrThrow()).outgoing

const subscription = () => {
  const ecdh = createECDH('prime256v1')
  ecdh.generateKeys()
  return { endpoint: `http://127.0.0.1:9/push/${randomBytes(4).toString('hex')}`, keys: { p256dh: ecdh.getPublicKey('base64url'), auth: randomBytes(16).toString('base64url') } }
}

t.test('marked exactly while a webhook, a subscribed member or an account webhook is there', async (t) => {
  const { app, db } = await workerless(t)
  const [alice, bob, carol, dave] = await Promise.all([register(app), register(app), register(app), register(app)])
  const group = await groupOf(app, alice, [bob])
  t.equal(await marked(db, group), false, 'a new group has nothing')
  await sendAs(app, bob, group, 'nobody outside listens')
  t.equal(await queuedJobs(db), 0, 'an unmarked conversation queues no job')

  const hook = (await client(app, alice).post('/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['new_message'], conversation_id: group })).json()
  t.equal(await marked(db, group), true, 'its webhook registered')
  await sendAs(app, bob, group, 'the hook hears this')
  t.equal(await queuedJobs(db), 1, 'a marked one queues the delivery')
  await db.updateTable('webhooks').set({ disabled_at: new Date() }).where('id', '=', hook.id).execute()
  t.equal(await marked(db, group), false, 'its webhook disabled (as a failing receiver is)')
  await db.updateTable('webhooks').set({ disabled_at: null }).where('id', '=', hook.id).execute()
  t.equal(await marked(db, group), true, 'enabled again')
  t.equal((await client(app, alice).delete(`/webhooks/${hook.id}`)).statusCode, 204)
  t.equal(await marked(db, group), false, 'its webhook deleted')

  // An account webhook speaks for its owner's direct conversations, those before it and those after, not groups.
  const before = (await client(app, bob).post('/conversations', { participant_ids: [carol.user.id], is_group: false })).json().id
  const carolHook = (await client(app, carol).post('/webhooks', { url: 'http://127.0.0.1:9/carol', events: ['new_message'] })).json()
  t.equal(await marked(db, before), true, 'a direct conversation of the owner, made before')
  const after = (await client(app, alice).post('/conversations', { participant_ids: [carol.user.id], is_group: false })).json().id
  t.equal(await marked(db, after), true, 'and one made after')
  const carolsGroup = await groupOf(app, alice, [carol], 'with carol')
  t.equal(await marked(db, carolsGroup), false, 'not a group the owner is in')
  t.equal((await client(app, carol).delete(`/webhooks/${carolHook.id}`)).statusCode, 204)
  t.equal(await marked(db, before), false)
  t.equal(await marked(db, after), false)

  // A member's browsers: subscribing marks every conversation of theirs, the last unsubscribing unmarks them.
  const s1 = (await client(app, bob).post('/push/subscriptions', subscription())).json()
  const s2 = (await client(app, bob).post('/push/subscriptions', subscription())).json()
  t.same([await marked(db, group), await marked(db, before), await marked(db, after)], [true, true, false], "Bob's conversations")
  await client(app, bob).delete(`/push/subscriptions/${s1.id}`)
  t.equal(await marked(db, group), true, 'one browser left')
  await client(app, bob).delete(`/push/subscriptions/${s2.id}`)
  t.same([await marked(db, group), await marked(db, before)], [false, false], 'none left')

  // A member who joins with a browser subscribed, or with an account webhook in a direct conversation, and leaves.
  await client(app, dave).post('/push/subscriptions', subscription())
  t.equal((await client(app, alice).post(`/conversations/${group}/participants`, { user_ids: [dave.user.id] })).statusCode, 200)
  t.equal(await marked(db, group), true, 'Dave joined, subscribed')
  t.equal((await client(app, alice).delete(`/conversations/${group}/participants/${dave.user.id}`)).statusCode, 204)
  t.equal(await marked(db, group), false, 'Dave removed')
})

t.test('a webhook added while another is removed leaves the conversation marked', async (t) => {
  const { app, db, url } = await buildTestApp(t, ENV)
  const alice = await register(app)
  const group = await groupOf(app, alice, [])
  const old = (await client(app, alice).post('/webhooks', { url: 'http://127.0.0.1:9/old', events: ['new_message'], conversation_id: group })).json()
  const [adding, removing] = [new pg.Client({ connectionString: url }), new pg.Client({ connectionString: url })]
  await Promise.all([adding.connect(), removing.connect()])
  t.teardown(() => Promise.all([adding.end(), removing.end()]))

  // The new one is added first and not yet committed; the old one's removal then counts what is left.
  await adding.query('BEGIN')
  await adding.query(`INSERT INTO webhooks (owner_id, conversation_id, url, events, secret) VALUES ($1, $2, 'http://127.0.0.1:9/new', '{new_message}', 's')`, [alice.user.id, group])
  await removing.query('BEGIN')
  const { rows: [{ pid }] } = await removing.query('SELECT pg_backend_pid() AS pid')
  let settled = false
  const removal = removing.query('DELETE FROM webhooks WHERE id = $1', [old.id]).finally(() => { settled = true })
  // Until the removal has counted (it could not see the new one) or waits for the addition to commit.
  for (;;) {
    const { rows: [{ waiting }] } = await adding.query(`SELECT wait_event_type = 'Lock' AS waiting FROM pg_stat_activity WHERE pid = $1`, [pid])
    if (settled || waiting) break
    await sleep(10)
  }
  await adding.query('COMMIT')
  await removal
  await removing.query('COMMIT')
  const live = await db.selectFrom('webhooks').select('url').where('conversation_id', '=', group).execute()
  t.same(live, [{ url: 'http://127.0.0.1:9/new' }], 'the new webhook is there')
  t.equal(await marked(db, group), true, 'and its conversation marked')
})
