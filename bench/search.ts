// The search phase of `npm run bench` (issue 15, point 2): `GET /search/messages` through one running Parley,
// on a database of SEARCH_MESSAGES messages in SEARCH_CONVERSATIONS conversations, one reader a member of 50.
//
// The words: a vocabulary of 20,000 made-up words (and some accented ones at chosen ranks), each message 1 to 24
// of them drawn by Zipf's law (the word of rank r with probability ∝ 1/r), so a few words are in most messages
// and most words in few. Conversations are Zipf-sized too (the biggest has about a tenth of all messages): the
// reader is in the biggest one and in 49 drawn at random.
//
// Seeding is set-based and skips what a send does beyond the row: the messages go in with their seqs assigned,
// unnest()ed from arrays 50,000 rows a statement, with the triggers of messages and participants disabled (no
// events, no notifications; `DISABLE TRIGGER USER`, the table owner's equivalent of session_replication_role = replica,
// which needs a superuser) but `messages_render`, which keeps each row's Message text, and the search index built once
// at the end. The generated column is computed as on any insert.
import pg from 'pg'
import { createDatabase } from '../src/database.ts'
import { pageQuery, shapeFor } from '../src/services/search-query.ts'
import { authedGet, mintToken, percentile, round } from './lib.ts'
import { startParley } from './systems.ts'

export interface SearchOptions {
  logDir: string
  messages: number
  conversations: number
  /** Searches per case (after a few to warm up). */
  queries: number
  log: (line: string) => void
}

const VOCABULARY = 20_000
const MEMBER_OF = 50
const SENDERS = 500
const ACCENTED: Record<number, string> = { 8: 'café', 40: 'déjà', 150: 'résumé', 600: 'naïve', 2500: 'jalapeño', 9000: 'façade' }

/** A small deterministic PRNG (mulberry32), so that every run seeds the same words. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function vocabulary(random: () => number): string[] {
  const syllables = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'ze', 'pa', 'do', 'gi', 'hu', 'ba', 'fe', 'ri', 'tor', 'lan', 'mes', 'kin', 'dar', 'vel', 'os', 'um']
  const words = new Set<string>()
  while (words.size < VOCABULARY) {
    let w = ''
    for (let n = 2 + Math.floor(random() * 3); n > 0; n--) w += syllables[Math.floor(random() * syllables.length)]
    words.add(w)
  }
  const list = [...words]
  for (const [rank, word] of Object.entries(ACCENTED)) list[Number(rank) - 1] = word
  return list
}

/** A rank by Zipf's law with s = 1: log-uniform, P(rank ≤ k) = ln(k + 1) / ln(n + 1). */
const zipf = (random: () => number, n: number) => Math.min(n, Math.floor(Math.exp(random() * Math.log(n + 1))))

/**
 * Starts one Parley on the search's own database and seeds it at once; `measure()` runs the searches. The seeding
 * (≈ 40 s) can overlap a phase that measures bytes, not time, such as the idle sockets': it is in another
 * database, behind another instance, and holds its tables' locks only there.
 */
export function searchPhase(databaseUrl: string, opts: SearchOptions) {
  const ready = (async () => {
    const sys = await startParley(databaseUrl, 1, { logDir: opts.logDir })
    const db = new pg.Client({ connectionString: databaseUrl })
    db.on('error', () => {})
    try {
      await db.connect()
      const began = performance.now()
      const world = await seed(db, opts)
      opts.log(`search: ${opts.messages} messages in ${opts.conversations} conversations seeded and indexed in ${((performance.now() - began) / 1000).toFixed(0)} s; the reader sees ${world.visible}`)
      return { sys, world }
    } catch (err) {
      await sys.stop()
      throw err
    } finally {
      await db.end().catch(() => {})
    }
  })()
  // Awaited by `seeded` or `measure`; until then a failure must not count as unhandled.
  ready.catch(() => {})
  let stopping: Promise<void> | undefined
  const stop = () => (stopping ??= ready.then(({ sys }) => sys.stop(), () => undefined))
  return {
    seeded: ready.then(() => undefined),
    stop,
    measure: async () => {
      const { sys, world } = await ready
      try {
        return await measureSearches(databaseUrl, sys.bases[0], world, opts)
      } finally {
        await stop()
      }
    },
  }
}

async function measureSearches(databaseUrl: string, base: string, world: World, opts: SearchOptions) {
  const token = mintToken(world.reader, world.session)
  const { get, close } = authedGet(base, token)
  const rows = []
  for (const [kind, queries] of Object.entries(world.cases)) {
    for (const scope of ['all', 'one'] as const) {
      const times: number[] = []
      let hits = 0
      let slowest = { q: queries[0], ms: 0 }
      for (let i = 0; i < opts.queries + 5; i++) {
        const q = queries[i % queries.length]
        const path = `/search/messages?q=${encodeURIComponent(q)}&limit=20${scope === 'one' ? `&conversation_id=${world.biggest}` : ''}`
        const t0 = performance.now()
        const res = await get(path)
        const ms = performance.now() - t0
        if (res.status !== 200) throw new Error(`search: ${res.status} ${res.body.slice(0, 200)}`)
        if (i >= 5) {
          times.push(ms)
          if (ms > slowest.ms) slowest = { q, ms }
          hits += (JSON.parse(res.body) as { results: unknown[] }).results.length
        }
      }
      times.sort((a, b) => a - b)
      rows.push({ case: kind, scope: scope === 'all' ? `all ${MEMBER_OF} conversations` : 'the biggest one', queries: times.length, 'results/query': round(hits / times.length, 1), 'p50 ms': round(percentile(times, 50), 2), 'p95 ms': round(percentile(times, 95), 2), slowest: slowest.q })
    }
  }
  close()
  console.log(`\nSearch: GET /search/messages?limit=20 over ${opts.messages} messages in ${opts.conversations} conversations; the reader is in ${MEMBER_OF} (${world.visible} messages), the biggest holding ${world.biggestSize}`)
  console.table(rows)
  const slowest = rows.reduce((a, b) => ((b['p95 ms'] ?? 0) > (a['p95 ms'] ?? 0) ? b : a))
  const plan = await explain(databaseUrl, world, slowest.slowest, slowest.scope.startsWith('all') ? undefined : world.biggest)
  opts.log(`search: the slowest case, ${slowest.case} on ${slowest.scope} (p95 ${slowest['p95 ms']} ms), EXPLAIN ANALYZE:\n${plan}`)
  return { messages: opts.messages, conversations: opts.conversations, member_of: MEMBER_OF, visible: world.visible, biggest: world.biggestSize, cases: rows, slowest_plan: plan }
}

interface World {
  reader: string
  session: string
  biggest: string
  biggestSize: number
  visible: number
  cases: Record<'common word' | 'rare word' | 'phrase' | 'prefix', string[]>
}

async function seed(db: pg.Client, opts: SearchOptions): Promise<World> {
  const random = prng(15)
  const words = vocabulary(random)
  const run = Date.now().toString(36)
  const { rows: users } = await db.query<{ id: string }>(
    `INSERT INTO users (username, display_name, password_hash) SELECT 's' || $1 || '_' || i, 'Searcher ' || i, 'not-a-hash' FROM generate_series(0, $2::int) i RETURNING id`,
    [run, SENDERS])
  const reader = users[0].id
  const { rows: [{ id: session }] } = await db.query<{ id: string }>(`INSERT INTO sessions (id, user_id, user_agent) VALUES (gen_random_uuid(), $1, 'parley-bench') RETURNING id`, [reader])
  // Conversation sizes by Zipf's law (rank r gets ∝ 1/r), at least one message each.
  const weights = Array.from({ length: opts.conversations }, (_, r) => 1 / (r + 1))
  const total = weights.reduce((a, b) => a + b, 0)
  const sizes = weights.map((w) => Math.max(1, Math.round((w / total) * opts.messages)))
  const { rows: convs } = await db.query<{ id: string }>(
    `INSERT INTO conversations (is_group, name, created_by, last_seq) SELECT true, 'search ' || n, $1, n FROM unnest($2::int[]) n RETURNING id`,
    [reader, sizes])
  const mine = new Set([0])
  while (mine.size < MEMBER_OF) mine.add(1 + Math.floor(random() * (opts.conversations - 1)))
  // Each conversation: three senders (not the reader), and the reader in MEMBER_OF of them.
  const members: [string, string][] = []
  convs.forEach((c, i) => {
    for (let k = 0; k < 3; k++) members.push([c.id, users[1 + ((i * 3 + k) % SENDERS)].id])
    if (mine.has(i)) members.push([c.id, reader])
  })
  await db.query('BEGIN')
  // Members without their events (a participant's trigger logs and notifies each row; 35,000 notifications in one
  // transaction take minutes), as the messages below.
  await db.query('ALTER TABLE participants DISABLE TRIGGER USER')
  await db.query(`INSERT INTO participants (conversation_id, user_id, role) SELECT * , 'member' FROM unnest($1::uuid[], $2::uuid[])`, [members.map((m) => m[0]), members.map((m) => m[1])])
  await db.query('ALTER TABLE participants ENABLE TRIGGER USER')
  const { rows: [{ def }] } = await db.query<{ def: string }>(`SELECT pg_get_indexdef('messages_search'::regclass) AS def`)
  await db.query('DROP INDEX messages_search')
  await db.query('ALTER TABLE messages DISABLE TRIGGER USER')
  await db.query('ALTER TABLE messages ENABLE TRIGGER messages_render') // the Message's text, which a result reads
  const year = 365 * 24 * 3600 * 1000
  const start = Date.now() - year
  let batch: { c: string[]; s: string[]; q: number[]; text: string[]; at: string[] } = { c: [], s: [], q: [], text: [], at: [] }
  const flush = async () => {
    await db.query(
      `INSERT INTO messages (conversation_id, sender_id, seq, message_type, content, created_at, updated_at)
       SELECT c, s, q, 'text', t, a, a FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::timestamptz[]) AS x(c, s, q, t, a)`,
      [batch.c, batch.s, batch.q, batch.text, batch.at])
    batch = { c: [], s: [], q: [], text: [], at: [] }
  }
  for (let i = 0; i < convs.length; i++) {
    const n = sizes[i]
    for (let seq = 1; seq <= n; seq++) {
      const length = 1 + Math.floor(random() * 24)
      const text: string[] = []
      for (let k = 0; k < length; k++) text.push(words[zipf(random, VOCABULARY) - 1])
      batch.c.push(convs[i].id)
      batch.s.push(users[1 + ((i * 3 + (seq % 3)) % SENDERS)].id)
      batch.q.push(seq)
      batch.text.push(text.join(' '))
      batch.at.push(new Date(start + Math.floor((seq / n) * year) - (i % 1000)).toISOString())
      if (batch.c.length === 50_000) await flush()
    }
  }
  if (batch.c.length > 0) await flush()
  await db.query('ALTER TABLE messages ENABLE TRIGGER USER')
  await db.query('COMMIT')
  await db.query("SET maintenance_work_mem = '256MB'")
  await db.query(def)
  // VACUUM as well: a million new rows are autovacuum's next job, which would otherwise run during a timed phase.
  await db.query('VACUUM (ANALYZE) messages, participants')

  const biggest = convs[0].id
  const visible = [...mine].reduce((a, i) => a + sizes[i], 0)
  // Phrases: two adjacent words of a message the reader can see; prefixes: the first letters of mid-ranked words.
  const { rows: samples } = await db.query<{ content: string }>(
    `SELECT content FROM messages WHERE conversation_id = ANY($1::uuid[]) AND array_length(regexp_split_to_array(content, ' '), 1) >= 4 ORDER BY random() LIMIT 20`,
    [[...mine].map((i) => convs[i].id)])
  const phrase = (c: string) => `"${c.split(' ').slice(1, 3).join(' ')}"`
  return {
    reader,
    session,
    biggest,
    biggestSize: sizes[0],
    visible,
    cases: {
      'common word': [1, 2, 3, 5, 8, 13].map((r) => words[r - 1]),
      'rare word': [12_000, 14_000, 16_000, 18_000, 19_000, 20_000].map((r) => words[r - 1]),
      phrase: samples.map((s) => phrase(s.content)),
      prefix: [100, 200, 400, 9000].map((r) => words[r - 1].slice(0, 3)),
    },
  }
}

/** The search's own statement (pageQuery, as the service runs it) under EXPLAIN (ANALYZE, BUFFERS), for one query. */
async function explain(databaseUrl: string, world: World, q: string, conversationId?: string): Promise<string> {
  const { db: kysely, pool } = createDatabase(databaseUrl, 1)
  try {
    const input = { q, limit: 20, conversation_id: conversationId }
    const shape = await shapeFor(kysely, world.reader, input)
    const compiled = pageQuery(kysely, world.reader, input, shape).compile()
    const { rows } = await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${compiled.sql}`, [...compiled.parameters])
    return `q = ${q}, shape ${shape}\n${rows.map((r) => r['QUERY PLAN']).join('\n')}`
  } finally {
    await kysely.destroy()
  }
}
