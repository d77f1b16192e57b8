// Message search (issue 15, point 1): GET /search/messages.
import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import t from 'tap'
import { chooseShape, type Cursor, pageQuery, type SearchInput, type Shape, shapeFor } from '../src/services/search-query.ts'
import { assertError, buildTestApp, client, groupOf, register, sendAs, type Session } from './helper.ts'

const { app, db } = await buildTestApp(t, { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000' })

interface Hit { message: { id: string; conversation_id: string; sender_id: string; content: string; seq: number; created_at: string }; highlight: string }
interface Answer { results: Hit[]; next_before: string | null }

const users = (n: number) => Promise.all(Array.from({ length: n }, () => register(app)))
const send = (who: Session, conversationId: string, content: string) => sendAs(app, who, conversationId, content)
const url = (params: Record<string, string | number>) => `/search/messages?${new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]))}`
async function search(who: Session, params: Record<string, string | number>): Promise<Answer> {
  const res = await client(app, who).get(url(params))
  if (res.statusCode !== 200) throw new Error(`search failed: ${res.statusCode} ${res.body}`)
  return res.json()
}
/** The contents found, newest first. */
const found = async (who: Session, q: string, extra: Record<string, string | number> = {}) => (await search(who, { q, ...extra })).results.map((r) => r.message.content)

t.test('words ignore case and accents, in every script', async (t) => {
  const [a, b] = await users(2)
  const g = await groupOf(app, a, [b])
  await send(a, g, 'Un café au lait')
  await send(b, g, 'CAFÉ NOIR, s’il vous plaît')
  await send(a, g, 'cafe latte')
  await send(a, g, 'a coffee please')
  await send(b, g, 'Привет, мир')
  await send(b, g, 'Ελληνικά γράμματα')
  const cafes = ['cafe latte', 'CAFÉ NOIR, s’il vous plaît', 'Un café au lait']
  t.same(await found(b, 'cafe'), cafes, '"cafe" finds café, CAFÉ and cafe, newest first')
  t.same(await found(b, 'CAFÉ'), cafes, '"CAFÉ" finds the same')
  t.same(await found(a, 'ПРИВЕТ'), ['Привет, мир'], 'Cyrillic, in any case')
  t.same(await found(a, 'γράμματα'), ['Ελληνικά γράμματα'], 'Greek')
  t.same(await found(a, 'plait'), ['CAFÉ NOIR, s’il vous plaît'], 'a circumflex is unaccented too')
  t.same(await found(a, 'tea'), [], 'a word nobody wrote finds nothing')
})

t.test('the last word is a prefix while it is typed; not in a phrase, not excluded, not the other words', async (t) => {
  const [a] = await users(1)
  const g = await groupOf(app, a, [])
  await send(a, g, 'hello world')
  await send(a, g, 'helicopter parts')
  t.same(await found(a, 'hel'), ['helicopter parts', 'hello world'], '"hel" finds hello and helicopter')
  t.same(await found(a, 'hello wor'), ['hello world'], 'the last of several words is a prefix')
  t.same(await found(a, 'wor hello'), [], 'a word before the last is whole')
  t.same(await found(a, '"hello wor"'), [], 'a closed phrase is not a prefix')
  t.same(await found(a, '"hello wor'), [], 'nor is a phrase still open')
  t.same(await found(a, 'world -hel'), ['hello world'], 'an excluded word is whole: -hel does not exclude hello')
  t.same(await found(a, 'hel.'), [], 'a word ended by punctuation is whole')
  t.same(await found(a, 'HÉL'), ['helicopter parts', 'hello world'], 'the prefix is unaccented and lower-cased too')
})

t.test('phrases, exclusion and OR, as websearch_to_tsquery reads them', async (t) => {
  const [a] = await users(1)
  const g = await groupOf(app, a, [])
  await send(a, g, 'the quick brown fox')
  await send(a, g, 'brown and quick foxes')
  await send(a, g, 'apples and pears')
  await send(a, g, 'apples and plums')
  await send(a, g, 'a red car')
  await send(a, g, 'a blue car')
  await send(a, g, 'a green car')
  t.same(await found(a, '"quick brown"'), ['the quick brown fox'], 'a phrase needs its words in order, together')
  t.same(await found(a, 'quick brown'), ['brown and quick foxes', 'the quick brown fox'], 'words without quotes: all, anywhere')
  t.same(await found(a, 'apples -pears'), ['apples and plums'], '-word excludes')
  t.same(await found(a, 'apples -"and pears"'), ['apples and plums'], 'an excluded phrase')
  t.same(await found(a, 'red or blue'), ['a blue car', 'a red car'], 'or between alternatives')
  t.same(await found(a, 'car -red -blue'), ['a green car'], 'several exclusions')
  t.same(await found(a, '!!! ???'), [], 'a query with no words finds nothing (and is no error)')
})

t.test('only what the caller can see: strangers, former members, cleared history, deleted, edited, system', async (t) => {
  const [a, b, stranger, leaver] = await users(4)
  const g = await groupOf(app, a, [b, leaver], 'zebra crossing')
  const before = await send(a, g, 'zebra before the clear')
  await send(leaver, g, 'zebra from the leaver')

  t.same(await found(stranger, 'zebra'), [], 'a stranger finds nothing of the group')
  const theirs = await client(app, stranger).get(url({ q: 'zebra', conversation_id: g }))
  const unknown = await client(app, stranger).get(url({ q: 'zebra', conversation_id: randomUUID() }))
  t.same(assertError(t, theirs, 404, 'CONVERSATION_NOT_FOUND'), assertError(t, unknown, 404, 'CONVERSATION_NOT_FOUND'), "a stranger's conversation_id is the same 404 as an unknown one")

  t.equal((await found(leaver, 'zebra')).length, 2, 'a member finds the messages before leaving')
  t.equal((await client(app, leaver).post(`/conversations/${g}/leave`)).statusCode, 204)
  t.same(await found(leaver, 'zebra'), [], 'a former member finds nothing of it, not even their own messages')
  assertError(t, await client(app, leaver).get(url({ q: 'zebra', conversation_id: g })), 404, 'CONVERSATION_NOT_FOUND')
  assertError(t, await client(app, leaver).get(url({ q: 'zebra', before: before.id })), 404, 'MESSAGE_NOT_FOUND')

  t.equal((await client(app, b).delete(`/conversations/${g}/messages`)).statusCode, 204)
  await send(a, g, 'zebra after the clear')
  t.same(await found(b, 'zebra'), ['zebra after the clear'], 'after clearing, only later messages')
  t.equal((await found(a, 'zebra')).length, 3, 'the others still find everything')

  const gone = await send(a, g, 'zebra to be deleted')
  t.equal((await client(app, a).delete(`/messages/${gone.id}`)).statusCode, 200)
  t.notOk((await found(a, 'zebra')).includes('zebra to be deleted'), 'a deleted message is not found')
  t.same(await found(a, 'deleted'), [], 'nor is its deleted form ("This message was deleted")')

  const edited = await send(a, g, 'zebra with a typo: giraffee')
  t.equal((await client(app, a).patch(`/messages/${edited.id}`, { content: 'zebra with the fix: giraffe' })).statusCode, 200)
  t.same(await found(a, 'giraffee'), [], 'an edit is not found by its old text')
  t.same(await found(a, 'giraffe'), ['zebra with the fix: giraffe'], 'but by its new text')

  t.same(await found(a, 'crossing'), [], 'a system message (the group was created, named "zebra crossing") is not found')
})

t.test('conversation_id and sender_id narrow the search', async (t) => {
  const [a, b] = await users(2)
  const g1 = await groupOf(app, a, [b])
  const g2 = await groupOf(app, a, [b])
  await send(a, g1, 'lemon from a in g1')
  await send(b, g1, 'lemon from b in g1')
  await send(a, g2, 'lemon from a in g2')
  t.same(await found(a, 'lemon', { conversation_id: g1 }), ['lemon from b in g1', 'lemon from a in g1'])
  t.same(await found(a, 'lemon', { sender_id: a.user.id }), ['lemon from a in g2', 'lemon from a in g1'])
  t.same(await found(b, 'lemon', { conversation_id: g2, sender_id: b.user.id }), [])
  t.same(await found(b, 'lemon', { sender_id: randomUUID() }), [], 'an unknown sender finds nothing')
})

t.test('newest first, paged with before: every match once, across conversations', async (t) => {
  const [a, b] = await users(2)
  const g1 = await groupOf(app, a, [b])
  const g2 = await groupOf(app, b, [a])
  const messages: { id: string; created_at: string; conversation_id: string; seq: number }[] = []
  for (let i = 0; i < 25; i++) messages.push(await send(i % 2 ? b : a, i % 3 ? g1 : g2, `mango number ${i}`))
  await send(a, g1, 'no fruit here')
  const sent = messages.map((m) => m.id)
  // The documented order, newest first by (created_at, conversation_id, seq): two sends to different
  // conversations can share a millisecond, and then the conversation decides, not which was sent first.
  const newestFirst = [...messages]
    .sort((x, y) => Date.parse(y.created_at) - Date.parse(x.created_at) || (y.conversation_id < x.conversation_id ? -1 : y.conversation_id > x.conversation_id ? 1 : 0) || y.seq - x.seq)
    .map((m) => m.id)

  const first = await search(a, { q: 'mango' })
  t.equal(first.results.length, 20, 'the default limit is 20')
  const pages: Answer[] = []
  let before: string | null = ''
  while (before !== null) {
    const page: Answer = await search(a, { q: 'mango', limit: 10, ...(before && { before }) })
    pages.push(page)
    before = page.next_before
  }
  t.same(pages.map((p) => p.results.length), [10, 10, 5], 'pages of 10, 10 and 5; the last says next_before: null')
  t.same(pages.flatMap((p) => p.results.map((r) => r.message.id)), newestFirst, 'every match once, newest first')
  t.equal(pages[0].next_before, pages[0].results[9].message.id, 'next_before is the last result of the page')

  const inG1 = await search(a, { q: 'mango', conversation_id: g1, limit: 5 })
  const nextG1 = await search(a, { q: 'mango', conversation_id: g1, limit: 50, before: inG1.next_before! })
  t.same([...inG1.results, ...nextG1.results].map((r) => r.message.id), sent.filter((_, i) => i % 3).reverse(), 'in one conversation too')
  assertError(t, await client(app, a).get(url({ q: 'mango', conversation_id: g1, before: sent[0] })), 404, 'MESSAGE_NOT_FOUND')
  const [s] = await users(1)
  assertError(t, await client(app, s).get(url({ q: 'mango', before: sent[0] })), 404, 'MESSAGE_NOT_FOUND')
})

t.test('the highlight is HTML-escaped except for <mark>', async (t) => {
  const [a] = await users(1)
  const g = await groupOf(app, a, [])
  await send(a, g, '<script>alert(1)</script> hello & "goodbye" \'you\'')
  const [hit] = (await search(a, { q: 'hello' })).results
  t.match(hit.highlight, /&lt;script&gt;/, 'the markup is escaped')
  t.match(hit.highlight, /<mark>hello<\/mark>/, 'the match is marked')
  t.notMatch(hit.highlight, /<script/i, 'never a raw <script')
  t.match(hit.highlight, /&amp; &quot;goodbye&quot; &#39;you&#39;/, 'ampersands and quotes too')
  t.equal(hit.message.content, '<script>alert(1)</script> hello & "goodbye" \'you\'', 'the message itself is as it was sent')
  t.equal(hit.highlight, '&lt;script&gt;alert(1)&lt;/script&gt; <mark>hello</mark> &amp; &quot;goodbye&quot; &#39;you&#39;', 'and nothing of the text is lost')
  t.same(await found(a, 'script'), [hit.message.content], 'words between angle brackets are text, and found')

  await send(a, g, 'café \uE000sneaky\uE001 CAFÉ')
  const [accented] = (await search(a, { q: 'cafe' })).results
  t.equal(accented.highlight, '<mark>café</mark> sneaky <mark>CAFÉ</mark>', "the original words are marked, and the content's own sentinel characters are dropped")
  const [prefix] = (await search(a, { q: 'caf' })).results
  t.match(prefix.highlight, /<mark>café<\/mark>/, 'a prefix marks the whole word')
})

t.test('validation: q of 1 to 200 characters, limit 1 to 50', async (t) => {
  const [a] = await users(1)
  const invalid: Record<string, string | number>[] = [{}, { q: '' }, { q: 'x'.repeat(201) }, { q: 'x', limit: 51 }, { q: 'x', limit: 0 }, { q: 'x', before: 'nope' }, { q: 'x', conversation_id: 'nope' }, { q: 'x', sender_id: 'nope' }]
  for (const params of invalid) {
    assertError(t, await client(app, a).get(url(params)), 400, 'VALIDATION_ERROR')
  }
  t.equal((await client(app, a).get(url({ q: 'x'.repeat(200), limit: 50 }))).statusCode, 200, '200 characters and 50 results are allowed')
  assertError(t, await client(app).get(url({ q: 'x' })), 401, 'UNAUTHORIZED')
})

t.test('both shapes of the statement find the same, and only what the caller may see', async (t) => {
  const [a, b, leaver] = await users(3)
  const g1 = await groupOf(app, a, [b, leaver])
  const g2 = await groupOf(app, b, [a])
  const g3 = await groupOf(app, leaver, [b])
  const contentOf = new Map<string, string>()
  const say = async (who: Session, g: string, content: string) => {
    const m = await send(who, g, content)
    contentOf.set(m.id, content)
    return m
  }
  await say(a, g1, 'kiwi one')
  await say(b, g1, 'kiwi two')
  await say(leaver, g1, 'kiwi three')
  t.equal((await client(app, b).delete(`/conversations/${g1}/messages`)).statusCode, 204)
  await say(b, g2, 'kiwi four')
  const gone = await say(a, g2, 'kiwi five')
  t.equal((await client(app, a).delete(`/messages/${gone.id}`)).statusCode, 200)
  await say(leaver, g3, 'kiwi six')
  await say(a, g1, 'kiwi seven')
  t.equal((await client(app, leaver).post(`/conversations/${g1}/leave`)).statusCode, 204)
  await say(b, g2, 'kiwi eight')

  const shapes: Shape[] = ['newest-per-conversation', 'matches-first']
  /** Every page of a search in one shape, each page's contents. */
  const pagesOf = async (shape: Shape, who: Session, input: SearchInput) => {
    const pages: string[][] = []
    let cursor: Cursor | undefined
    // At most as many pages as there are messages: a cursor that stopped moving fails the test instead of hanging it.
    for (let n = 0; n <= contentOf.size; n++) {
      const rows = await pageQuery(db, who.user.id, input, shape, cursor).execute()
      pages.push(rows.map((r) => contentOf.get(r.id) ?? 'not ours'))
      if (rows.length < input.limit) return pages
      const last = rows[rows.length - 1]
      cursor = { created_at: new Date(last.created_at).toISOString(), conversation_id: last.conversation_id, seq: Number(last.seq) }
    }
    return pages
  }
  const cases: [string, Session, SearchInput, string[][]][] = [
    ['a member of g1 and g2, in pages of 2', a, { q: 'kiwi', limit: 2 }, [['kiwi eight', 'kiwi seven'], ['kiwi four', 'kiwi three'], ['kiwi two', 'kiwi one'], []]],
    ['one sender', a, { q: 'kiwi', limit: 10, sender_id: b.user.id }, [['kiwi eight', 'kiwi four', 'kiwi two']]],
    ['one conversation, in pages of 3', a, { q: 'kiwi', limit: 3, conversation_id: g1 }, [['kiwi seven', 'kiwi three', 'kiwi two'], ['kiwi one']]],
    ['after clearing g1, and in g3', b, { q: 'kiwi', limit: 10 }, [['kiwi eight', 'kiwi seven', 'kiwi six', 'kiwi four']]],
    ['a former member of g1', leaver, { q: 'kiwi', limit: 10 }, [['kiwi six']]],
    ['a phrase', a, { q: '"kiwi seven"', limit: 10 }, [['kiwi seven']]],
    ['a prefix', b, { q: 'kiw', limit: 10, conversation_id: g2 }, [['kiwi eight', 'kiwi four']]],
  ]
  for (const [name, who, input, expected] of cases) {
    for (const shape of shapes) t.same(await pagesOf(shape, who, input), expected, `${name}: ${shape}`)
  }
})

t.test('the shape follows how many messages match', async (t) => {
  t.equal(chooseShape(10, 0, 1_000_000, [100_000, 50, 50], 20), 'matches-first', 'a rare word: its few matches, read through the index')
  t.equal(chooseShape(300_000, 0, 1_000_000, [100_000, 50, 50], 20), 'newest-per-conversation', 'a common word: each conversation newest first')
  t.equal(chooseShape(500, 0, 1_000_000, [200, 50], 20), 'newest-per-conversation', 'small conversations are read whole, whatever the word')
  t.equal(chooseShape(3_000, 0, 1_000_000, [100_000], 20), 'newest-per-conversation', 'a word in one message of 300')
  t.equal(chooseShape(3_000, 1, 1_000_000, [100_000], 20), 'matches-first', 'the same candidates in a phrase match fewer messages')

  // On this database, with the planner's own estimates: one conversation of 3,000 messages, each with "quince", one with "yuzu".
  const [a] = await users(1)
  const g = await groupOf(app, a, [])
  await sql`INSERT INTO messages (conversation_id, sender_id, message_type, content)
    SELECT ${g}, ${a.user.id}, 'text', CASE WHEN i = 1500 THEN 'quince yuzu' ELSE 'quince number ' || i END FROM generate_series(1, 3000) i`.execute(db)
  await sql`ANALYZE messages`.execute(db)
  t.equal(await shapeFor(db, a.user.id, { q: 'quince', limit: 20 }), 'newest-per-conversation')
  t.equal(await shapeFor(db, a.user.id, { q: 'yuzu', limit: 20 }), 'matches-first')
  t.same(await found(a, 'yuzu'), ['quince yuzu'], 'and each finds its page')
  t.equal((await found(a, 'quince')).length, 20)
})
