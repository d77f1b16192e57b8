import { randomUUID } from 'node:crypto'
import t from 'tap'
import { buildLiveApp, buildTestApp, client, register } from './helper.ts'

// What someone who shares no conversation with you can learn about you through the REST API: no more than they
// could over WebSocket, where presence goes only to people who share a conversation.

t.test('presence in GET /users/{id} and search is for those who share a conversation', async (t) => {
  const { app, open } = await buildLiveApp(t)
  const [bob, friend, stranger] = [await register(app), await register(app), await register(app)]
  await client(app, friend).post('/conversations', { participant_ids: [bob.user.id] })
  const watching = await open(friend)

  const seenBy = async (viewer: typeof bob) => {
    const profile = (await client(app, viewer).get(`/users/${bob.user.id}`)).json()
    const found = (await client(app, viewer).get(`/users?query=${bob.user.username}`)).json()
    t.equal(found.length, 1, 'search finds bob')
    t.same(found[0], profile, 'search shows what the profile shows')
    return { is_online: profile.is_online, last_seen: profile.last_seen }
  }

  const socket = await open(bob)
  await watching.next((f) => f.type === 'presence' && f.data.user_id === bob.user.id && f.data.is_online)
  t.same(await seenBy(friend), { is_online: true, last_seen: null }, 'online, to someone who shares a conversation')
  t.same(await seenBy(bob), { is_online: true, last_seen: null }, 'and to bob himself')
  t.same(await seenBy(stranger), { is_online: false, last_seen: null }, 'a stranger sees nothing')

  socket.close()
  const offline = await watching.next((f) => f.type === 'presence' && f.data.user_id === bob.user.id && !f.data.is_online)
  t.ok(Date.parse(offline.data.last_seen) > 0)
  t.same(await seenBy(friend), { is_online: false, last_seen: offline.data.last_seen }, 'last seen, to someone who shares a conversation')
  t.same(await seenBy(bob), { is_online: false, last_seen: offline.data.last_seen }, 'and to bob himself')
  t.same(await seenBy(stranger), { is_online: false, last_seen: null }, 'a stranger still sees nothing')
})

t.test("GET /conversations?before= a stranger's conversation answers as an unknown id does", async (t) => {
  const { app } = await buildTestApp(t)
  const [me, a, b, x, y] = await Promise.all(Array.from({ length: 5 }, () => register(app)))
  await client(app, me).post('/conversations', { participant_ids: [a.user.id] })
  await client(app, me).post('/conversations', { participant_ids: [b.user.id] })
  // The newest conversation of all is one I am not in: every one of mine is older.
  const theirs = (await client(app, x).post('/conversations', { participant_ids: [y.user.id] })).json()

  const unknown = await client(app, me).get(`/conversations?before=${randomUUID()}`)
  t.equal(unknown.statusCode, 200)
  t.same(unknown.json(), [], 'an unknown cursor: nothing')
  const stranger = await client(app, me).get(`/conversations?before=${theirs.id}`)
  t.equal(stranger.statusCode, unknown.statusCode)
  t.same(stranger.json(), unknown.json(), "a stranger's conversation as cursor: the same nothing")
  t.equal((await client(app, me).get('/conversations')).json().length, 2, 'my own conversations are there')
})
