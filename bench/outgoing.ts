// Issue 17, point 3: sends must not slow down because webhooks and push subscriptions exist. This registers 100
// webhooks (one per group, every event type) and 1,000 push subscriptions (every member of those groups) in
// conversations the load does not write to, straight into the tables, and returns how to remove them. The
// load's sends then pay what every send pays for outgoing deliveries: the trigger's probes for webhooks and
// subscribed members (triggers/outgoing.sql); no delivery is made.
import pg from 'pg'
import { LOG_EVENT_TYPES } from '../src/realtime/protocol.ts'

export async function registerOutgoing(databaseUrl: string, webhooks = 100, subscriptions = 1000): Promise<() => Promise<void>> {
  const db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  const run = `o${Date.now().toString(36)}`
  const perGroup = subscriptions / webhooks
  await db.query('BEGIN')
  const { rows: users } = await db.query<{ id: string }>(
    `INSERT INTO users (username, display_name, password_hash)
     SELECT $1 || '_' || i, 'Outgoing ' || i, 'not-a-hash' FROM generate_series(1, $2::int) i RETURNING id`, [run, subscriptions])
  const ids = users.map((u) => u.id)
  const { rows: groups } = await db.query<{ id: string }>(
    `INSERT INTO conversations (is_group, name, created_by) SELECT true, $1 || ' ' || g, $2 FROM generate_series(1, $3::int) g RETURNING id`, [run, ids[0], webhooks])
  await db.query(
    `INSERT INTO participants (conversation_id, user_id, role)
     SELECT (($2::uuid[])[1 + (i - 1) / $3]), ($1::uuid[])[i], CASE WHEN (i - 1) % $3 = 0 THEN 'admin' ELSE 'member' END
     FROM generate_series(1, array_length($1::uuid[], 1)) i`, [ids, groups.map((g) => g.id), perGroup])
  await db.query(
    `INSERT INTO webhooks (owner_id, conversation_id, url, events, secret)
     SELECT p.user_id, p.conversation_id, 'https://hooks.bench.invalid/' || p.conversation_id, $2::text[], 'whsec_bench'
     FROM participants p WHERE p.conversation_id = ANY ($1::uuid[]) AND p.role = 'admin'`, [groups.map((g) => g.id), LOG_EVENT_TYPES])
  await db.query(
    `INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth)
     SELECT u, 'https://push.bench.invalid/' || u, 'B' || repeat('A', 86), repeat('A', 22) FROM unnest($1::uuid[]) u`, [ids])
  await db.query('COMMIT')
  return async () => {
    await db.query('DELETE FROM webhooks WHERE url LIKE $1', ['https://hooks.bench.invalid/%'])
    await db.query('DELETE FROM push_subscriptions WHERE endpoint LIKE $1', ['https://push.bench.invalid/%'])
    await db.end()
  }
}
