// `tsx bench/outgoing-cost.ts` (issue 17, point 3): what the outgoing probes (triggers/outgoing.sql) cost a message
// insert in the database, with 100 webhooks and 1,000 subscribed members registered in other conversations:
// inserts in one session, alternating parley_outgoing as it is and replaced by a no-op, on an embedded PostgreSQL.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { migrateToLatest } from '../db/migrate.ts'
import { createDatabase } from '../src/database.ts'
import { startEmbeddedPostgres } from '../src/embedded-postgres.ts'

const dir = await mkdtemp(path.join(tmpdir(), 'parley-outgoing-cost-'))
const database = await startEmbeddedPostgres(dir)
const url = database.url
const { db } = createDatabase(url, 2)
await migrateToLatest(db)
await db.destroy()
const c = new pg.Client({ connectionString: url })
await c.connect()
const { rows: [u] } = await c.query(`INSERT INTO users (username, display_name, password_hash) VALUES ('alice_cost','A','x') RETURNING id`)
const { rows: [g] } = await c.query(`INSERT INTO conversations (is_group, name, created_by) VALUES (true, 'g', $1) RETURNING id`, [u.id])
await c.query(`INSERT INTO participants (conversation_id, user_id, role) VALUES ($1, $2, 'admin')`, [g.id, u.id])
// 100 webhooks and 1,000 subscribed members elsewhere
await c.query(`INSERT INTO users (username, display_name, password_hash) SELECT 'out_'||i, 'O', 'x' FROM generate_series(1,1000) i`)
await c.query(`INSERT INTO conversations (is_group, name, created_by) SELECT true, 'other '||i, $1 FROM generate_series(1,100) i`, [u.id])
await c.query(`INSERT INTO participants (conversation_id, user_id, role) SELECT c.id, o.id, 'member' FROM (SELECT id, row_number() OVER () r FROM conversations WHERE name LIKE 'other %') c JOIN (SELECT id, row_number() OVER () r FROM users WHERE username LIKE 'out\_%') o ON (o.r - 1) / 10 + 1 = c.r`)
await c.query(`INSERT INTO webhooks (owner_id, conversation_id, url, events, secret) SELECT $1, id, 'https://x.invalid', '{new_message}', 's' FROM conversations WHERE name LIKE 'other %'`, [u.id])
await c.query(`INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth) SELECT id, 'https://p.invalid/'||id, 'k', 'a' FROM users WHERE username LIKE 'out\_%'`)
const N = Number(process.env.BENCH_INSERTS ?? 4000)
const once = async () => {
  await c.query('TRUNCATE messages, conversation_events CASCADE')
  const t0 = performance.now()
  await c.query(`DO $$ BEGIN FOR i IN 1..${N} LOOP INSERT INTO messages (conversation_id, sender_id, message_type, content, seq) VALUES ('${g.id}', '${u.id}', 'text', 'hello ' || i, 0); END LOOP; END $$`)
  return (performance.now() - t0) / N * 1000
}
const { rows: [def] } = await c.query(`SELECT pg_get_functiondef('parley_outgoing(uuid,bigint,text)'::regprocedure) AS d`)
const noop = `CREATE OR REPLACE FUNCTION parley_outgoing(conv uuid, event_seq bigint, event_type text) RETURNS void LANGUAGE plpgsql AS $f$ BEGIN END $f$`
const withProbes: number[] = []
const without: number[] = []
await once()
for (let r = 0; r < 8; r++) {
  await c.query(def.d)
  withProbes.push(await once())
  await c.query(noop)
  without.push(await once())
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]
console.log(`µs per message insert, median of 8 alternating runs of ${N}: with the outgoing probes ${med(withProbes).toFixed(1)}, with a no-op ${med(without).toFixed(1)}; all: ${withProbes.map((x) => x.toFixed(0))} / ${without.map((x) => x.toFixed(0))}`)
await c.query(def.d)
await c.end()
await database.stop()
await rm(dir, { recursive: true, force: true })
