// `tsx bench/outgoing-cost.ts` (issue 17, point 3): what the outgoing probes (triggers/outgoing.sql) cost a message
// insert in the database, with 100 webhooks and 1,000 subscribed members registered in other conversations:
// inserts in one session, alternating the event trigger as it is and as it was before the issue (without its look
// for outgoing jobs), on an embedded PostgreSQL.
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
// Each insert commits, as each send does (one transaction holding thousands of versions of the conversation row
// would make every look at that row walk them); without waiting for the disk, which is not what is compared.
await c.query('SET synchronous_commit = off')
const once = async () => {
  await c.query('TRUNCATE messages, conversation_events CASCADE')
  const t0 = performance.now()
  await c.query(`DO $$ BEGIN FOR i IN 1..${N} LOOP INSERT INTO messages (conversation_id, sender_id, message_type, content, seq) VALUES ('${g.id}', '${u.id}', 'text', 'hello ' || i, 0); COMMIT; END LOOP; END $$`)
  return (performance.now() - t0) / N * 1000
}
const { rows: [def] } = await c.query(`SELECT pg_get_functiondef('parley_log_event(uuid,bigint,text,jsonb,text)'::regprocedure) AS d`)
const look = /\n\s*IF EXISTS \(SELECT 1 FROM conversations WHERE id = conv AND outgoing\) THEN\n\s*PERFORM parley_outgoing\(conv, event_seq, event_type\);\n\s*END IF;/
if (!look.test(def.d)) throw new Error('parley_log_event no longer looks for outgoing jobs as this bench expects')
// Three forms of the event trigger: as it is (the look gated by conversations.outgoing), as it was before the
// issue (no look), and the look ungated (three index searches per event: this first version).
const forms = {
  now: def.d,
  before: def.d.replace(look, ''),
  ungated: def.d.replace(look, '\n  PERFORM parley_outgoing(conv, event_seq, event_type);'),
}
const times: Record<keyof typeof forms, number[]> = { now: [], before: [], ungated: [] }
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 12)
await once()
for (let r = 0; r < ROUNDS; r++) {
  for (const form of Object.keys(forms) as (keyof typeof forms)[]) {
    await c.query(forms[form])
    times[form].push(await once())
  }
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]
// Paired by round: a round's three runs share the machine's state at that moment.
const over = (form: keyof typeof forms) => med(times[form].map((x, i) => x - times.before[i])).toFixed(1)
console.log(`µs per message insert (each its own transaction), median of ${ROUNDS} rounds of ${N}: before issue 17 ${med(times.before).toFixed(1)}, now ${med(times.now).toFixed(1)} (${over('now')} over before, paired median), ungated probes ${med(times.ungated).toFixed(1)} (${over('ungated')} over before)`)
await c.query(def.d)
await c.end()
await database.stop()
await rm(dir, { recursive: true, force: true })
