// The authorization matrix (issue 5, point 5): every route that takes a conversation, message, file or
// user id, against every kind of caller, with the status API.md gives. One world for the whole file;
// rows that destroy something (deletes, leaves, removals, clears) get fresh objects per cell, or run last.
import { randomBytes, randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import webPush from 'web-push'
import { assertError, buildTestApp, register, sessionIdOf, uniqueName, type Session, type TestApp } from './helper.ts'

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64')
const PDF = Buffer.from('%PDF-1.4\n%âãÏÓ\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n')

function multipart(content: Buffer, filename: string) {
  const boundary = `----parley${randomBytes(8).toString('hex')}`
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`
  return {
    payload: Buffer.concat([Buffer.from(head), content, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  }
}

/**
 * The callers. A: admin of G, member of D. M1: member of G and D, the sender of "M1's" messages.
 * M2: plain member of G, not in D. S: member of nothing. L: left G. X: was in G, then deleted their account.
 * none: no token.
 */
const CALLERS = ['A', 'M1', 'M2', 'S', 'L', 'X', 'none'] as const
type Caller = (typeof CALLERS)[number]
type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE'
type Ids = Record<string, string>

/**
 * A cell: a status (a 404 is "not visible to you": its body must equal the 404 of a random id on the same
 * route, for the same caller), or [status, code] for an error with a specific code (a 404 given this way is
 * a different "not found", e.g. of the target member, and is not compared).
 */
type Cell = number | [number, string]

interface Row {
  method: Method
  template: string
  on: string
  /** The values of the template's {placeholders} (and of the body), per caller; fresh objects if need be. */
  ids: (caller: Caller) => Ids | Promise<Ids>
  cells: Record<Caller, Cell>
  body?: (ids: Ids, caller: Caller) => unknown
  upload?: () => ReturnType<typeof multipart>
  /** The error code of this row's 400 / 403 / 404, unless the cell names one. */
  codes: Partial<Record<400 | 403 | 404, string>>
  /** The id replaced by a random uuid for the no-leak comparison. */
  probe?: string
  /** The caller signs in afresh for the cell (X and none cannot), for rows that end the caller's session. */
  fresh?: boolean
}

const fill = (template: string, ids: Ids) =>
  template.replace(/\{(\w+)\}/g, (_, key: string) => {
    if (!(key in ids)) throw new Error(`no value for {${key}} in ${template}`)
    return ids[key]
  })

// High rate limits, so that hundreds of requests from one address pass. src/config.ts has no such keys yet;
// loadConfig drops keys it does not know, so these are harmless until it does.
const vapid = webPush.generateVAPIDKeys()
const { app } = await buildTestApp(t, {
  RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', LOGIN_RATE_LIMIT_PER_USERNAME: '100000',
  WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOKS_PER_USER: '100', VAPID_PUBLIC_KEY: vapid.publicKey, VAPID_PRIVATE_KEY: vapid.privateKey,
})

type Res = Awaited<ReturnType<TestApp['inject']>>

function request(who: Session | undefined, method: Method, url: string, body?: unknown, upload?: ReturnType<typeof multipart>): Promise<Res> {
  const auth: Record<string, string> = who ? { authorization: `Bearer ${who.token}` } : {}
  if (upload) return app.inject({ method, url, payload: upload.payload, headers: { ...upload.headers, ...auth } })
  return app.inject({ method, url, headers: auth, ...(body !== undefined && { payload: body as Record<string, unknown> }) })
}

/** A setup request: anything but the expected status stops the file with the answer. */
async function must(res: Res | Promise<Res>, status: number) {
  const r = await res
  if (r.statusCode !== status) throw new Error(`setup: expected ${status}, got ${r.statusCode} ${r.body}`)
  return r.body ? r.json() : undefined
}

// ---- the world -------------------------------------------------------------------------------------
const [A, M1, M2, S, L, X, P, N, T] = await Promise.all(['admin', 'm1', 'm2', 'stranger', 'leaver', 'deleted', 'promoted', 'newcomer', 'target'].map((p) => register(app, uniqueName(p))))
const session: Record<Caller, Session | undefined> = { A, M1, M2, S, L, X, none: undefined }
const as = (who: Session | undefined) => ({
  get: (url: string) => request(who, 'GET', url),
  post: (url: string, body?: unknown) => request(who, 'POST', url, body),
})
const send = async (who: Session, conversationId: string, content = uniqueName('msg')) =>
  (await must(as(who).post('/messages', { conversation_id: conversationId, content }), 201)).id as string
const uploadTo = async (who: Session, conversationId: string, file: Buffer, name: string) =>
  (await must(request(who, 'POST', `/messages/upload?conversation_id=${conversationId}`, undefined, multipart(file, name)), 201)) as { id: string; file_url: string }

const G = (await must(as(A).post('/conversations', { is_group: true, name: 'G', participant_ids: [M1, M2, L, X, P].map((s) => s.user.id) }), 201)).id as string
const D = (await must(as(A).post('/conversations', { is_group: false, participant_ids: [M1.user.id] }), 201)).id as string
const gSystem = ((await must(as(A).get(`/conversations/${G}/messages`), 200)) as { id: string; message_type: string }[]).find((m) => m.message_type === 'system')!.id
const gByA = await send(A, G)
const gByM1 = await send(M1, G)
const gByX = await send(X, G)
const gFile = await uploadTo(A, G, PNG, 'photo.png')
const dByA = await send(A, D)
const dByM1 = await send(M1, D)
const dFile = await uploadTo(A, D, PDF, 'report.pdf')
const avatarA = ((await must(request(A, 'POST', '/users/me/avatar', undefined, multipart(PNG, 'me.png')), 200)) as { avatar_url: string }).avatar_url
const avatarG = ((await must(request(A, 'POST', `/conversations/${G}/avatar`, undefined, multipart(PNG, 'group.png')), 200)) as { avatar_url: string }).avatar_url
await must(as(L).post(`/conversations/${G}/leave`), 204)
await must(request(X, 'DELETE', '/users/me'), 204)

/** A group like G (A admin; M1, M2 and T members; a message by A and one by M1; L left after them), for rows that destroy. */
async function freshGroup() {
  const id = (await must(as(A).post('/conversations', { is_group: true, name: 'Fresh', participant_ids: [M1, M2, L, T].map((s) => s.user.id) }), 201)).id as string
  const byA = await send(A, id)
  const byM1 = await send(M1, id)
  await must(as(L).post(`/conversations/${id}/leave`), 204)
  return { id, byA, byM1 }
}

// ---- the table ---------------------------------------------------------------------------------------
const conv = { 400: 'NOT_A_GROUP', 403: 'NOT_ADMIN', 404: 'CONVERSATION_NOT_FOUND' } as const
const msg = { 404: 'MESSAGE_NOT_FOUND' } as const

const rows: Row[] = []
function row(
  method: Method, template: string, on: string, ids: Row['ids'],
  [a, m1, m2, s, l, x, none]: [Cell, Cell, Cell, Cell, Cell, Cell, Cell],
  opts: Omit<Row, 'method' | 'template' | 'on' | 'ids' | 'cells'>,
) {
  rows.push({ method, template, on, ids, cells: { A: a, M1: m1, M2: m2, S: s, L: l, X: x, none }, ...opts })
}
const name = (_: Ids, who: Caller) => ({ name: `renamed by ${who}` })
const text = (_: Ids, who: Caller) => ({ content: `written by ${who}` })
const png = () => multipart(PNG, 'pic.png')

//                                                                                         A    M1   M2   S    L    X    none
// Conversations
row('GET', '/conversations/{id}', 'G', () => ({ id: G }),                                [200, 200, 200, 404, 404, 401, 401], { codes: conv })
row('GET', '/conversations/{id}', 'D', () => ({ id: D }),                                [200, 200, 404, 404, 404, 401, 401], { codes: conv })
row('PATCH', '/conversations/{id}', 'G', () => ({ id: G }),                              [200, 403, 403, 404, 404, 401, 401], { codes: conv, body: name })
row('PATCH', '/conversations/{id}', 'D', () => ({ id: D }),                              [400, 400, 404, 404, 404, 401, 401], { codes: conv, body: name })
row('GET', '/conversations/{id}/participants', 'G', () => ({ id: G }),                   [200, 200, 200, 404, 404, 401, 401], { codes: conv })
row('GET', '/conversations/{id}/participants', 'D', () => ({ id: D }),                   [200, 200, 404, 404, 404, 401, 401], { codes: conv })
row('POST', '/conversations/{id}/participants', 'G, adding N', () => ({ id: G }),        [200, 403, 403, 404, 404, 401, 401], { codes: conv, body: () => ({ user_ids: [N.user.id] }) })
row('POST', '/conversations/{id}/participants', 'D, adding N', () => ({ id: D }),        [400, 400, 404, 404, 404, 401, 401], { codes: conv, body: () => ({ user_ids: [N.user.id] }) })
row('PATCH', '/conversations/{id}/participants/{user_id}', 'G, promoting P', () => ({ id: G, user_id: P.user.id }),
                                                                                         [200, 403, 403, 404, 404, 401, 401], { codes: conv, probe: 'id', body: () => ({ role: 'admin' }) })
row('PATCH', '/conversations/{id}/participants/{user_id}', 'G, promoting non-member S', () => ({ id: G, user_id: S.user.id }),
                                                                  [[404, 'PARTICIPANT_NOT_FOUND'], 403, 403, 404, 404, 401, 401], { codes: conv, probe: 'id', body: () => ({ role: 'admin' }) })
row('PATCH', '/conversations/{id}/participants/{user_id}', 'D, promoting M1', () => ({ id: D, user_id: M1.user.id }),
                                                                                         [400, 400, 404, 404, 404, 401, 401], { codes: conv, probe: 'id', body: () => ({ role: 'admin' }) })
row('DELETE', '/conversations/{id}/participants/{user_id}', 'D, removing M1', () => ({ id: D, user_id: M1.user.id }),
                                                                                         [400, 400, 404, 404, 404, 401, 401], { codes: conv, probe: 'id' })
row('POST', '/conversations/{id}/leave', 'D', () => ({ id: D }),                         [400, 400, 404, 404, 404, 401, 401], { codes: conv })
row('GET', '/conversations/{id}/messages', 'G', () => ({ id: G }),                       [200, 200, 200, 404, 404, 401, 401], { codes: conv })
row('GET', '/conversations/{id}/messages', 'D', () => ({ id: D }),                       [200, 200, 404, 404, 404, 401, 401], { codes: conv })
row('POST', '/conversations/{id}/typing', 'G', () => ({ id: G }),                        [204, 204, 204, 404, 404, 401, 401], { codes: conv, body: () => ({ is_typing: true }) })
row('POST', '/conversations/{id}/typing', 'D', () => ({ id: D }),                        [204, 204, 404, 404, 404, 401, 401], { codes: conv, body: () => ({ is_typing: true }) })

// Messages
row('POST', '/messages {conversation_id}', 'G', () => ({ conversation_id: G }),          [201, 201, 201, 404, 404, 401, 401], { codes: conv, body: (ids, who) => ({ conversation_id: ids.conversation_id, content: `hi from ${who}` }) })
row('POST', '/messages {conversation_id}', 'D', () => ({ conversation_id: D }),          [201, 201, 404, 404, 404, 401, 401], { codes: conv, body: (ids, who) => ({ conversation_id: ids.conversation_id, content: `hi from ${who}` }) })
row('POST', '/messages/upload?conversation_id={conversation_id}', 'G', () => ({ conversation_id: G }),
                                                                                         [201, 201, 201, 404, 404, 401, 401], { codes: conv, upload: png })
row('POST', '/messages/upload?conversation_id={conversation_id}', 'D', () => ({ conversation_id: D }),
                                                                                         [201, 201, 404, 404, 404, 401, 401], { codes: conv, upload: png })
row('GET', '/messages/{id}', "A's message in G", () => ({ id: gByA }),                  [200, 200, 200, 404, 404, 401, 401], { codes: msg })
row('GET', '/messages/{id}', "A's file message in G", () => ({ id: gFile.id }),         [200, 200, 200, 404, 404, 401, 401], { codes: msg })
row('GET', '/messages/{id}', "deleted X's message in G", () => ({ id: gByX }),          [200, 200, 200, 404, 404, 401, 401], { codes: msg })
row('GET', '/messages/{id}', "M1's message in D", () => ({ id: dByM1 }),                [200, 200, 404, 404, 404, 401, 401], { codes: msg })
row('PATCH', '/messages/{id}', "A's message in G", () => ({ id: gByA }),                [200, 403, 403, 404, 404, 401, 401], { codes: { ...msg, 403: 'NOT_SENDER' }, body: text })
row('PATCH', '/messages/{id}', "M1's message in G", () => ({ id: gByM1 }),              [403, 200, 403, 404, 404, 401, 401], { codes: { ...msg, 403: 'NOT_SENDER' }, body: text })
row('PATCH', '/messages/{id}', "A's system message in G", () => ({ id: gSystem }),      [403, 403, 403, 404, 404, 401, 401], { codes: { ...msg, 403: 'NOT_SENDER' }, body: text })
row('PATCH', '/messages/{id}', "A's message in D", () => ({ id: dByA }),                [200, 403, 404, 404, 404, 401, 401], { codes: { ...msg, 403: 'NOT_SENDER' }, body: text })
row('POST', '/messages/{id}/read', "M1's message in G", () => ({ id: gByM1 }),          [204, 204, 204, 404, 404, 401, 401], { codes: msg })
row('POST', '/messages/{id}/read', "A's message in D", () => ({ id: dByA }),            [204, 204, 404, 404, 404, 401, 401], { codes: msg })
row('GET', '/messages/{id}/receipts', "A's message in G", () => ({ id: gByA }),         [200, 200, 200, 404, 404, 401, 401], { codes: msg })
row('GET', '/messages/{id}/receipts', "M1's message in D", () => ({ id: dByM1 }),       [200, 200, 404, 404, 404, 401, 401], { codes: msg })
row('POST', '/messages/{id}/reactions', "A's message in G", () => ({ id: gByA }),       [200, 200, 200, 404, 404, 401, 401], { codes: msg, body: () => ({ emoji: '👍' }) })
row('POST', '/messages/{id}/reactions', "M1's message in D", () => ({ id: dByM1 }),      [200, 200, 404, 404, 404, 401, 401], { codes: msg, body: () => ({ emoji: '👍' }) })
row('DELETE', '/messages/{id}/reactions/{emoji}', "A's message in G", () => ({ id: gByA, emoji: encodeURIComponent('👍') }),
                                                                                         [200, 200, 200, 404, 404, 401, 401], { codes: msg, probe: 'id' })
row('DELETE', '/messages/{id}/reactions/{emoji}', "M1's message in D", () => ({ id: dByM1, emoji: encodeURIComponent('👍') }),
                                                                                         [200, 200, 404, 404, 404, 401, 401], { codes: msg, probe: 'id' })
row('POST', '/messages/{id}/pin', "M1's message in G", () => ({ id: gByM1 }),          [200, 403, 403, 404, 404, 401, 401], { codes: { ...msg, 403: 'NOT_ADMIN' } })
row('POST', '/messages/{id}/pin', "A's message in D", () => ({ id: dByA }),             [200, 200, 404, 404, 404, 401, 401], { codes: msg })
row('DELETE', '/messages/{id}/pin', "M1's message in G", () => ({ id: gByM1 }),        [200, 403, 403, 404, 404, 401, 401], { codes: { ...msg, 403: 'NOT_ADMIN' } })
row('DELETE', '/messages/{id}/pin', "A's message in D", () => ({ id: dByA }),           [200, 200, 404, 404, 404, 401, 401], { codes: msg })
row('GET', '/conversations/{id}/pins', 'G', () => ({ id: G }),                           [200, 200, 200, 404, 404, 401, 401], { codes: conv })
row('GET', '/conversations/{id}/pins', 'D', () => ({ id: D }),                           [200, 200, 404, 404, 404, 401, 401], { codes: conv })
row('POST', '/messages/{id}/forward', "A's message in G, to D", () => ({ id: gByA }),
                                              [201, 201, [404, 'CONVERSATION_NOT_FOUND'], 404, 404, 401, 401], { codes: msg, body: () => ({ conversation_id: D }) })
row('GET', '/messages/{id}/thread', "A's message in G", () => ({ id: gByA }),           [200, 200, 200, 404, 404, 401, 401], { codes: msg })
row('GET', '/messages/{id}/thread', "M1's message in D", () => ({ id: dByM1 }),         [200, 200, 404, 404, 404, 401, 401], { codes: msg })
row('GET', '/messages/{id}/edits', "A's message in G", () => ({ id: gByA }),            [200, 200, 200, 404, 404, 401, 401], { codes: msg })
row('GET', '/messages/{id}/edits', "M1's message in D", () => ({ id: dByM1 }),          [200, 200, 404, 404, 404, 401, 401], { codes: msg })
// Search (issue 15): the conversation searched, and the cursor, must be the caller's to see.
row('GET', '/search/messages?q=msg&conversation_id={id}', 'G', () => ({ id: G }),        [200, 200, 200, 404, 404, 401, 401], { codes: conv })
row('GET', '/search/messages?q=msg&conversation_id={id}', 'D', () => ({ id: D }),        [200, 200, 404, 404, 404, 401, 401], { codes: conv })
row('GET', '/search/messages?q=msg&before={id}', "A's message in G", () => ({ id: gByA }), [200, 200, 200, 404, 404, 401, 401], { codes: msg })
row('GET', '/search/messages?q=msg&before={id}', "M1's message in D", () => ({ id: dByM1 }), [200, 200, 404, 404, 404, 401, 401], { codes: msg })

// Files and users
const fileId = (url: string) => url.replace('/files/', '')
row('GET', '/files/{id}', 'the file of a message in G', () => ({ id: fileId(gFile.file_url) }),
                                                                                         [200, 200, 200, 404, 404, 401, 401], { codes: { 404: 'FILE_NOT_FOUND' } })
row('GET', '/files/{id}', 'the file of a message in D', () => ({ id: fileId(dFile.file_url) }),
                                                                                         [200, 200, 404, 404, 404, 401, 401], { codes: { 404: 'FILE_NOT_FOUND' } })
row('GET', '/files/{id}', "A's avatar", () => ({ id: fileId(avatarA) }),                 [200, 200, 200, 200, 200, 401, 401], { codes: { 404: 'FILE_NOT_FOUND' } })
// Issue 5: "Avatars are public to authenticated users" — a group's avatar too, like a user's.
row('GET', '/files/{id}', "G's avatar", () => ({ id: fileId(avatarG) }),                 [200, 200, 200, 200, 200, 401, 401], { codes: { 404: 'FILE_NOT_FOUND' } })
row('GET', '/users/{id}', 'A', () => ({ id: A.user.id }),                                [200, 200, 200, 200, 200, 401, 401], { codes: { 404: 'USER_NOT_FOUND' } })
row('GET', '/users/{id}', 'deleted X (their messages still need a name)', () => ({ id: X.user.id }),
                                                                                         [200, 200, 200, 200, 200, 401, 401], { codes: { 404: 'USER_NOT_FOUND' } })

// Previews (issue 15): the readers of the image, no others; a member asking for one a file does not have is told so.
row('GET', '/files/{id}/thumbnail', 'the preview of an image in G', () => ({ id: fileId(gFile.file_url) }),
                                                                                         [200, 200, 200, 404, 404, 401, 401], { codes: { 404: 'FILE_NOT_FOUND' } })
row('GET', '/files/{id}/thumbnail', 'the file of a message in D (no preview)', () => ({ id: fileId(dFile.file_url) }),
                                         [[404, 'PREVIEW_NOT_FOUND'], [404, 'PREVIEW_NOT_FOUND'], 404, 404, 404, 401, 401], { codes: { 404: 'FILE_NOT_FOUND' } })
row('GET', '/files/{id}/thumbnail', "A's avatar (stored at its size: no preview)", () => ({ id: fileId(avatarA) }),
                  [[404, 'PREVIEW_NOT_FOUND'], [404, 'PREVIEW_NOT_FOUND'], [404, 'PREVIEW_NOT_FOUND'], [404, 'PREVIEW_NOT_FOUND'], [404, 'PREVIEW_NOT_FOUND'], 401, 401], { codes: {} })

// After the GET /files rows: A's new group avatar replaces (and deletes) the one above.
row('POST', '/conversations/{id}/avatar', 'G', () => ({ id: G }),                        [200, 403, 403, 404, 404, 401, 401], { codes: conv, upload: png })
row('POST', '/conversations/{id}/avatar', 'D', () => ({ id: D }),                        [400, 400, 404, 404, 404, 401, 401], { codes: conv, upload: png })

// Sending by recipient opens direct conversations with A (S and L get one): after everything that relies on S and L being in nothing.
row('POST', '/messages {recipient_id}', 'A', () => ({ recipient_id: A.user.id }),
                                                           [[400, 'INVALID_PARTICIPANTS'], 201, 201, 201, 201, 401, 401], { codes: { 404: 'USER_NOT_FOUND' }, body: (ids, who) => ({ recipient_id: ids.recipient_id, content: `dm from ${who}` }) })
row('POST', '/messages {recipient_id}', 'deleted X', () => ({ recipient_id: X.user.id }),
                                                                                         [404, 404, 404, 404, 404, 401, 401], { codes: { 404: 'USER_NOT_FOUND' }, body: (ids, who) => ({ recipient_id: ids.recipient_id, content: `dm from ${who}` }) })

// Signed file URLs (issue 11): the URL of a file, to exactly those who may read the file.
row('GET', '/files/{id}/url', 'the file of a message in G', () => ({ id: fileId(gFile.file_url) }),
                                                                                         [200, 200, 200, 404, 404, 401, 401], { codes: { 404: 'FILE_NOT_FOUND' } })
row('GET', '/files/{id}/url', 'the file of a message in D', () => ({ id: fileId(dFile.file_url) }),
                                                                                         [200, 200, 404, 404, 404, 401, 401], { codes: { 404: 'FILE_NOT_FOUND' } })
row('GET', '/files/{id}/url', "A's avatar", () => ({ id: fileId(avatarA) }),             [200, 200, 200, 200, 200, 401, 401], { codes: { 404: 'FILE_NOT_FOUND' } })
// G's avatar as it is now: the rows above set new ones.
row('GET', '/files/{id}/url', "G's avatar", async () => ({ id: fileId((await must(as(A).get(`/conversations/${G}`), 200)).avatar_url) }),
                                                                                         [200, 200, 200, 200, 200, 401, 401], { codes: { 404: 'FILE_NOT_FOUND' } })

// Issue 15: the caller's own mute and archive, read position, blocks.
const user = { 404: 'USER_NOT_FOUND' } as const
row('PATCH', '/conversations/{id}/settings', 'G', () => ({ id: G }),                     [200, 200, 200, 404, 404, 401, 401], { codes: conv, body: () => ({ muted_until: null }) })
row('PATCH', '/conversations/{id}/settings', 'D', () => ({ id: D }),                     [200, 200, 404, 404, 404, 401, 401], { codes: conv, body: () => ({ muted_until: null }) })
row('POST', '/messages/{id}/unread', "M1's message in G", () => ({ id: gByM1 }),         [204, 204, 204, 404, 404, 401, 401], { codes: msg })
row('POST', '/messages/{id}/unread', "A's message in D", () => ({ id: dByA }),           [204, 204, 404, 404, 404, 401, 401], { codes: msg })
row('POST', '/users/{id}/block', 'T', () => ({ id: T.user.id }),                         [204, 204, 204, 204, 204, 401, 401], { codes: user })
row('POST', '/users/{id}/block', 'deleted X', () => ({ id: X.user.id }),                 [404, 404, 404, 404, 404, 401, 401], { codes: user })
row('GET', '/users/me/blocks', 'your own', () => ({}),                                   [200, 200, 200, 200, 200, 401, 401], { codes: {} })
row('DELETE', '/users/{id}/block', 'T', () => ({ id: T.user.id }),                       [204, 204, 204, 204, 204, 401, 401], { codes: user })

// Webhooks and Web Push (issue 17): a group's webhooks are its admins', a direct conversation's its members';
// a webhook or a subscription is seen and deleted by its owner only.
const hooks = { 403: 'NOT_ADMIN', 404: 'CONVERSATION_NOT_FOUND' } as const
const hook = (ids: Ids) => ({ url: 'http://127.0.0.1:9/hook', events: ['new_message'], conversation_id: ids.conversation_id })
const webhookOf = async (who: Session) => (await must(as(who).post('/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['new_message'] }), 201)).id as string
const aHook = await webhookOf(A)
const subscription = () => ({ endpoint: `http://127.0.0.1:9/push/${randomUUID()}`, keys: { p256dh: `B${'A'.repeat(86)}`, auth: 'A'.repeat(22) } })
const subscriptionOf = async (who: Session) => (await must(as(who).post('/push/subscriptions', subscription()), 201)).id as string
row('POST', '/webhooks', 'on G', () => ({ conversation_id: G }),                             [201, 403, 403, 404, 404, 401, 401], { codes: hooks, probe: 'conversation_id', body: hook })
row('POST', '/webhooks', 'on D', () => ({ conversation_id: D }),                             [201, 201, 404, 404, 404, 401, 401], { codes: hooks, probe: 'conversation_id', body: hook })
row('GET', '/webhooks', 'your own', () => ({}),                                              [200, 200, 200, 200, 200, 401, 401], { codes: {} })
row('GET', '/webhooks/{id}', "A's", () => ({ id: aHook }),                                   [200, 404, 404, 404, 404, 401, 401], { codes: { 404: 'WEBHOOK_NOT_FOUND' } })
row('DELETE', '/webhooks/{id}', "a fresh one of A's", async () => ({ id: await webhookOf(A) }),
                                                                                             [204, 404, 404, 404, 404, 401, 401], { codes: { 404: 'WEBHOOK_NOT_FOUND' } })
row('GET', '/push/vapid-public-key', 'the server\'s', () => ({}),                             [200, 200, 200, 200, 200, 401, 401], { codes: {} })
row('POST', '/push/subscriptions', 'your own browser', () => ({}),                           [201, 201, 201, 201, 201, 401, 401], { codes: {}, body: subscription })
row('DELETE', '/push/subscriptions/{id}', "a fresh one of A's", async () => ({ id: await subscriptionOf(A) }),
                                                                                             [204, 404, 404, 404, 404, 401, 401], { codes: { 404: 'PUSH_SUBSCRIPTION_NOT_FOUND' } })


// Destructive rows: a fresh group (or a fresh message in D) for every cell.
row('DELETE', '/conversations/{id}/participants/{user_id}', 'fresh G, removing T', async () => ({ id: (await freshGroup()).id, user_id: T.user.id }),
                                                                                         [204, 403, 403, 404, 404, 401, 401], { codes: conv, probe: 'id' })
row('DELETE', '/conversations/{id}/participants/{user_id}', 'fresh G, removing yourself (= leave)', async (who) => ({ id: (await freshGroup()).id, user_id: session[who]?.user.id ?? X.user.id }),
                                                                                         [204, 204, 204, 404, 404, 401, 401], { codes: conv, probe: 'id' })
row('POST', '/conversations/{id}/leave', 'fresh G', async () => ({ id: (await freshGroup()).id }),
                                                                                         [204, 204, 204, 404, 404, 401, 401], { codes: conv })
row('DELETE', '/conversations/{id}/messages', 'fresh G', async () => ({ id: (await freshGroup()).id }),
                                                                                         [204, 204, 204, 404, 404, 401, 401], { codes: conv })
row('DELETE', '/messages/{id}', "M1's message in fresh G", async () => ({ id: (await freshGroup()).byM1 }),
                                                                                         [200, 200, 403, 404, 404, 401, 401], { codes: { ...msg, 403: 'NOT_ALLOWED' } })
row('DELETE', '/messages/{id}', "A's message in fresh G", async () => ({ id: (await freshGroup()).byA }),
                                                                                         [200, 403, 403, 404, 404, 401, 401], { codes: { ...msg, 403: 'NOT_ALLOWED' } })
row('DELETE', '/messages/{id}', "M1's fresh message in D", async () => ({ id: await send(M1, D) }),
                                                                                         [403, 200, 404, 404, 404, 401, 401], { codes: { ...msg, 403: 'NOT_ALLOWED' } })
row('DELETE', '/messages/{id}', "A's fresh message in D", async () => ({ id: await send(A, D) }),
                                                                                         [200, 403, 404, 404, 404, 401, 401], { codes: { ...msg, 403: 'NOT_ALLOWED' } })
// Last: clearing D hides its history from A and M1 for good.
row('DELETE', '/conversations/{id}/messages', 'D (last: hides D from A and M1)', () => ({ id: D }),
                                                                                         [204, 204, 404, 404, 404, 401, 401], { codes: conv })

// Your data (issue 11, point 4): no id to probe; what each archive holds is checked at the end of the file.
// Before the session rows, which may end the world's sessions.
row('GET', '/users/me/export', 'your own data', () => ({}),                            [200, 200, 200, 200, 200, 401, 401], { codes: {} })

// Sessions (issue 11): a session id is the caller's own or no one's. Each cell signs someone in afresh, so
// that ending sessions leaves the world's own sessions alone.
const signIn = async (who: Session): Promise<Session> => {
  const body = await must(app.inject({ method: 'POST', url: '/auth/login', payload: { username: who.user.username, password: 'Passw0rd' } }), 200)
  return { token: body.access_token, refresh: body.refresh_token, user: body.user }
}
const sessions = { 404: 'SESSION_NOT_FOUND' } as const
row('GET', '/auth/sessions', 'your own', () => ({}),                                    [200, 200, 200, 200, 200, 401, 401], { codes: sessions })
row('DELETE', '/auth/sessions/{id}', "a fresh session of A", async () => ({ id: sessionIdOf((await signIn(A)).token) }),
                                                                                         [204, 404, 404, 404, 404, 401, 401], { codes: sessions })
row('POST', '/auth/logout-all', 'your own, signed in afresh', () => ({}),               [204, 204, 204, 204, 204, 401, 401], { codes: sessions, fresh: true })

// ---- the run -----------------------------------------------------------------------------------------
async function checkCell(t: Test, r: Row, who: Caller, cell: Cell) {
  const ids = await r.ids(who)
  const caller = r.fresh && session[who] && who !== 'X' ? await signIn(session[who]) : session[who]
  const call = (values: Ids) => request(caller, r.method, fill(r.template.replace(/ \{.*\}$/, ''), values), r.body?.(values, who), r.upload?.())
  const res = await call(ids)
  const [status, explicit] = typeof cell === 'number' ? [cell, undefined] : cell
  if (status < 300) {
    t.equal(res.statusCode, status, `${who} gets ${status}${res.statusCode >= 400 ? `: ${res.body}` : ''}`)
    if (status === 204) t.equal(res.body, '', `${who}: no body`)
    return
  }
  const code = explicit ?? (status === 401 ? (who === 'X' ? 'ACCOUNT_DELETED' : 'UNAUTHORIZED') : r.codes[status as 400 | 403 | 404])
  const body = assertError(t, res, status, code)
  if (status === 404 && explicit === undefined) {
    const key = r.probe ?? Object.keys(ids)[0]
    const random = randomUUID()
    const probe = await call({ ...ids, [key]: random })
    t.equal(probe.statusCode, 404, `${who}: a random ${key} is 404 too`)
    // The answer may name the id the caller sent (USER_NOT_FOUND lists it in details): that is no leak.
    const echoed = JSON.parse(probe.body.replaceAll(random, ids[key]))
    t.same(body, echoed, `${who}: the same 404 as for a random ${key} (no existence leak)`)
  }
}

for (const r of rows) {
  await t.test(`${r.method} ${r.template} [${r.on}]`, async (t) => {
    for (const who of CALLERS) {
      const cell = r.cells[who]
      await t.test(`${who} → ${Array.isArray(cell) ? cell.join(' ') : cell}`, (t) => checkCell(t, r, who, cell))
    }
  })
}

t.test('the deleted user X is refused everywhere, with ACCOUNT_DELETED', async (t) => {
  assertError(t, await request(X, 'GET', '/users/me'), 401, 'ACCOUNT_DELETED')
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: X.user.username, password: 'Passw0rd' } })
  assertError(t, login, 401)
})

t.test("GET /users/me/export: each caller's archive has only the conversations they are in and the messages they sent there", async (t) => {
  const held: Partial<Record<Caller, string[]>> = {}
  for (const who of ['A', 'M1', 'M2', 'S', 'L'] as const) {
    // Signed in afresh: rows above end sessions.
    const login = await must(app.inject({ method: 'POST', url: '/auth/login', payload: { username: session[who]!.user.username, password: 'Passw0rd' } }), 200)
    const me: Session = { token: login.access_token, refresh: login.refresh_token, user: login.user }
    const archive = (await request(me, 'GET', '/users/me/export')).json() as { conversations: { id: string }[]; messages: { conversation_id: string; sender_id: string }[] }
    const theirs = (held[who] = archive.conversations.map((c) => c.id))
    for (const id of theirs) t.equal((await request(me, 'GET', `/conversations/${id}`)).statusCode, 200, `${who} can open ${id === G ? 'G' : id === D ? 'D' : id}`)
    t.ok(archive.messages.every((m) => m.sender_id === me.user.id && theirs.includes(m.conversation_id)), `${who}: only their own messages, in those`)
  }
  t.notOk(held.L!.includes(G), 'L, who left G, has no G')
  t.notOk(held.M2!.includes(D), 'M2 has no D')
  t.ok(held.A!.includes(G) && held.A!.includes(D), 'A has G and D')
})
