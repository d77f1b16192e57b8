import { execFile } from 'node:child_process'
import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { type Kysely, sql } from 'kysely'
import t from 'tap'
import pg from 'pg'
import { MIGRATION_LOCK, migrateToLatest } from '../db/migrate.ts'
import { createDatabase } from '../src/database.ts'
import { testDatabase } from './helper.ts'

// Migrations are history: a database made by the previous release and upgraded must have exactly the schema of a
// database made fresh by this one (tables, columns, indexes, constraints, functions, triggers, views).

/** The last release before the trigger SQL became repeatable scripts (issue 11's base). */
const PREVIOUS_RELEASE = '5b18539c69778bd880dd72358b21e62485dc94ea'

const run = promisify(execFile)
const root = path.resolve(import.meta.dirname, '..')

/** The release's db/ and triggers/, from git, inside this checkout so that its imports resolve to its node_modules. */
async function checkout(rev: string): Promise<string> {
  const dir = path.join(root, '.cache', 'releases', rev)
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  const { stdout } = await run('git', ['archive', '--format=tar', rev, 'db', 'triggers'], { cwd: root, encoding: 'buffer', maxBuffer: 64 << 20 })
  await new Promise<void>((resolve, reject) => {
    const tar = execFile('tar', ['-x', '-C', dir], (err) => (err ? reject(err) : resolve()))
    tar.stdin!.end(stdout)
  })
  return dir
}

interface SchemaItem {
  kind: string
  name: string
  definition: string
}

/** Everything in the public schema that a migration or a script makes, as text; extensions' own objects left out. */
async function schemaOf(db: Kysely<any>): Promise<SchemaItem[]> {
  const { rows } = await sql<SchemaItem>`
    SELECT 'column' AS kind, table_name || '.' || column_name AS name,
           concat_ws(' ', ordinal_position, data_type, is_nullable, column_default) AS definition
    FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL
    SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL
    SELECT 'constraint', conrelid::regclass || '.' || conname, pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'function', p.oid::regprocedure::text, pg_get_functiondef(p.oid)
    FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.prokind IN ('f', 'p')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    UNION ALL
    SELECT 'trigger', tgrelid::regclass || '.' || tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT 'view', viewname, definition FROM pg_views WHERE schemaname = 'public'
    ORDER BY 1, 2`.execute(db)
  return rows
}

t.test("a database of the previous release, upgraded, has this release's schema exactly", async (t) => {
  const release = await checkout(PREVIOUS_RELEASE)
  const { migrateToLatest: migrateToRelease } = (await import(path.join(release, 'db', 'migrate.ts'))) as typeof import('../db/migrate.ts')

  const upgradedUrl = await testDatabase(t)
  const upgraded = createDatabase(upgradedUrl, 2).db
  t.teardown(() => upgraded.destroy())
  await migrateToRelease(upgraded)
  const before = await schemaOf(upgraded)
  t.ok(before.some((i) => i.kind === 'function' && i.name.startsWith('parley_log_event(')), 'the release made its own event-log function')
  await migrateToLatest(upgraded)

  const freshUrl = await testDatabase(t)
  const fresh = createDatabase(freshUrl, 2).db
  t.teardown(() => fresh.destroy())
  await migrateToLatest(fresh)

  const [got, want] = [await schemaOf(upgraded), await schemaOf(fresh)]
  t.ok(want.length > 50, `the fresh schema has ${want.length} items`)
  const key = (i: SchemaItem) => `${i.kind} ${i.name}`
  const wanted = new Map(want.map((i) => [key(i), i.definition]))
  const found = new Map(got.map((i) => [key(i), i.definition]))
  t.same([...found.keys()].filter((k) => !wanted.has(k)), [], 'nothing the fresh database lacks (an old function left behind, say)')
  t.same([...wanted.keys()].filter((k) => !found.has(k)), [], 'nothing missing from the upgraded one')
  t.same([...wanted].filter(([k, d]) => found.has(k) && found.get(k) !== d).map(([k]) => k), [], 'every definition equal')

  // Applying again changes nothing: the scripts are applied only when they change.
  await migrateToLatest(fresh)
  t.same(await schemaOf(fresh), want, 'a second run is a no-op')
})

t.test('a changed script runs again with every script after it, which may build on what it makes', async (t) => {
  const db = createDatabase(await testDatabase(t), 2).db
  t.teardown(() => db.destroy())
  await migrateToLatest(db)
  const want = await schemaOf(db)
  // As if only triggers/messages.sql had changed: it drops parley_message_text with CASCADE, and with it the
  // view of event-replay.sql, a later script whose own text did not change.
  await sql`UPDATE parley_repeatable SET checksum = 'changed' WHERE name = 'messages'`.execute(db)
  await migrateToLatest(db)
  t.ok((await schemaOf(db)).some((i) => i.kind === 'view' && i.name === 'parley_served_events'), 'the view of a later script is there again')
  t.same(await schemaOf(db), want, 'the schema is whole')
})

t.test('an instance starting while another migrates waits for the whole of it, doing nothing meanwhile', async (t) => {
  // The failure this prevents: a second instance's Kysely migrator reads every table's columns before taking its
  // own lock, and a job-queue migration that swaps a table under it failed its start (column "job_count" of
  // relation "job_queues" does not exist). Here the other instance is a session that holds the migration lock.
  const url = await testDatabase(t)
  const other = new pg.Client({ connectionString: url })
  await other.connect()
  t.teardown(() => other.end())
  await other.query('SELECT pg_advisory_lock(hashtext($1))', [MIGRATION_LOCK])
  const { db } = createDatabase(url, 2)
  t.teardown(() => db.destroy())
  let settled = false
  const migrating = migrateToLatest(db).finally(() => { settled = true })
  const waiting = async () =>
    (await other.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'`)).rows[0].n > 0
  while (!settled && !(await waiting())) await new Promise((r) => setTimeout(r, 20))
  t.notOk(settled, 'it waits for the other instance rather than migrating beside it')
  const made = await other.query(`SELECT to_regclass('public.kysely_migration') AS kysely, to_regnamespace('graphile_worker') AS jobs`)
  t.same(made.rows[0], { kysely: null, jobs: null }, 'not even its migration tables are made while it waits')
  await other.query('SELECT pg_advisory_unlock(hashtext($1))', [MIGRATION_LOCK])
  await migrating
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM kysely_migration`.execute(db)
  t.ok(rows[0].n >= 22, 'then it migrates')
  t.ok((await schemaOf(db)).some((i) => i.kind === 'trigger'), 'the repeatable scripts too')
})

t.test('0019 gives each message written out of time order the time of the latest message before it', async (t) => {
  const { db } = createDatabase(await testDatabase(t), 2)
  t.teardown(() => db.destroy())
  await migrateToLatest(db)
  const [user] = (await sql<{ id: string }>`INSERT INTO users (username, display_name, password_hash) VALUES ('m19', 'M', 'x') RETURNING id`.execute(db)).rows
  const [conv] = (await sql<{ id: string }>`INSERT INTO conversations (is_group, name, created_by) VALUES (true, 'c', ${user.id}) RETURNING id`.execute(db)).rows
  for (const content of ['one', 'two', 'three', 'four']) {
    await sql`INSERT INTO messages (conversation_id, sender_id, message_type, content) VALUES (${conv.id}, ${user.id}, 'text', ${content})`.execute(db)
  }
  // As an older release could leave them: two, and three after it, earlier than one.
  await sql`UPDATE messages SET created_at = CASE content WHEN 'one' THEN '2026-01-01T10:00:00Z' WHEN 'two' THEN '2026-01-01T09:00:00Z'
    WHEN 'three' THEN '2026-01-01T09:30:00Z' ELSE '2026-01-01T11:00:00Z' END::timestamptz, updated_at = '2026-01-01T09:00:00Z'
    WHERE conversation_id = ${conv.id}`.execute(db)
  const { up } = await import('../db/migrations/0019-monotonic-message-times.ts')
  await up(db)
  const { rows } = await sql<{ content: string; created_at: Date; updated_at: Date }>`
    SELECT content, created_at, updated_at FROM messages WHERE conversation_id = ${conv.id} ORDER BY seq`.execute(db)
  t.same(rows.map((r) => [r.content, r.created_at.toISOString()]), [
    ['one', '2026-01-01T10:00:00.000Z'],
    ['two', '2026-01-01T10:00:00.000Z'],
    ['three', '2026-01-01T10:00:00.000Z'],
    ['four', '2026-01-01T11:00:00.000Z'],
  ], 'times never decrease with seq, and a message already in order keeps its own')
  t.same(rows.map((r) => r.updated_at >= r.created_at), [false, true, true, false], 'a moved message is no older than its new time; the others untouched')
})
