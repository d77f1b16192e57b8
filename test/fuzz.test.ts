import { randomBytes, randomUUID } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import webPush from 'web-push'
import { buildTestApp, client, register, sessionIdOf } from './helper.ts'

// Property: whatever a client sends to any documented route, the service never answers 5xx, every error
// has the one shape of API.md, and a stranger learns nothing of conversations, messages or files.

const RUNS_PER_ROUTE = Number(process.env.FUZZ_RUNS ?? 100)

type Schema = Record<string, any>

const junk = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 50 }),
  fc.constantFrom('', ' ', '\u0000', 'null', '-1', '1e309', '../../etc/passwd', '%00', '<script>alert(1)</script>', "' OR 1=1 --", '\u202e\u0301', 'x'.repeat(10_000)),
  fc.integer().map(String),
)

/** Values that fit a JSON schema (roughly: we want the service to get past validation often). */
function fits(schema: Schema, ids: string[]): fc.Arbitrary<unknown> {
  if (schema.anyOf) return fc.oneof(...schema.anyOf.map((s: Schema) => fits(s, ids)))
  if (schema.enum) return fc.constantFrom(...schema.enum)
  if ('const' in schema) return fc.constant(schema.const)
  switch (schema.type) {
    case 'null':
      return fc.constant(null)
    case 'boolean':
      return fc.boolean()
    case 'integer':
      return fc.integer({ min: schema.minimum ?? -10, max: schema.maximum ?? 1000 })
    case 'array':
      return fc.uniqueArray(fits(schema.items ?? {}, ids), { maxLength: Math.min(schema.maxItems ?? 4, 4) })
    case 'object': {
      if (schema.patternProperties || schema.additionalProperties) {
        return fc.dictionary(fc.constantFrom(...ids), fc.integer({ min: 0, max: 50 }), { maxKeys: 3 })
      }
      const props = Object.fromEntries(Object.entries(schema.properties ?? {}).map(([k, s]) => [k, fits(s as Schema, ids)]))
      return fc.record(props, { requiredKeys: schema.required ?? [] })
    }
    case 'string':
    default:
      if (schema.format === 'uuid') return fc.oneof(fc.constantFrom(...ids), fc.uuid())
      if (schema.format === 'email') return fc.emailAddress()
      if (schema.format === 'binary') return fc.constant('x')
      // fast-check cannot generate from lookaheads (the password rule): a valid one or any string.
      if (schema.pattern?.includes('(?')) return fc.oneof(fc.constantFrom('Passw0rd', 'Secret12X'), fc.string())
      if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern)).filter((s) => s.length >= (schema.minLength ?? 0) && s.length <= (schema.maxLength ?? 64))
      // Short strings (at least what the schema asks for): long ones are the junk arbitrary's part.
      return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.max(schema.minLength ?? 0, Math.min(schema.maxLength ?? 40, 40)) })
  }
}

/** Anything at all, mostly near the schema: fitting values, wrong types, nulls, extra fields, huge strings. */
const anything = (schema: Schema | undefined, ids: string[]) =>
  fc.oneof(
    { weight: 4, arbitrary: schema ? fits(schema, ids) : fc.constant(undefined) },
    { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) },
    { weight: 1, arbitrary: junk },
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: schema ? fits(schema, ids).map((v) => (v && typeof v === 'object' && !Array.isArray(v) ? { ...v, extra: 'field', __proto__x: 1 } : v)) : fc.constant({}) },
  )

t.test('every route, any input: no 5xx, one error shape, no existence leak', async (t) => {
  const env: Record<string, string> = { MAX_UPLOAD_BYTES: '20000', RATE_LIMIT_MAX: '1000000', AUTH_RATE_LIMIT_MAX: '1000000', LOGIN_RATE_LIMIT_PER_USERNAME: '1000000', UPLOAD_RATE_MAX: '1000000' }
  // GET /users/me/export (issue 11): fuzzed past its own limit of 2 an hour, so that the archive itself is exercised.
  env.EXPORT_RATE_LIMIT_MAX = '1000000'
  // Web Push configured (issue 17), so that a subscription gets past "not configured" to its own checks.
  const vapid = webPush.generateVAPIDKeys()
  Object.assign(env, { VAPID_PUBLIC_KEY: vapid.publicKey, VAPID_PRIVATE_KEY: vapid.privateKey })
  const { app } = await buildTestApp(t, env)
  const [owner, member, stranger, gone] = [await register(app), await register(app), await register(app), await register(app)]
  const as = client(app, owner)
  const group = (await as.post('/conversations', { is_group: true, name: 'Fuzz', participant_ids: [member.user.id, gone.user.id] })).json()
  const direct = (await as.post('/conversations', { participant_ids: [member.user.id] })).json()
  const msg = (await as.post('/messages', { conversation_id: group.id, content: 'hello' })).json()
  const dm = (await client(app, member).post('/messages', { conversation_id: direct.id, content: 'psst' })).json()
  await client(app, gone).delete('/users/me')
  const ids = [owner.user.id, member.user.id, stranger.user.id, gone.user.id, group.id, direct.id, msg.id, dm.id]
  /** Ids the stranger must not be able to tell from ids that do not exist. */
  const hidden = new Set([group.id, direct.id, msg.id, dm.id])
  // Issue 11: a file of the group too, so that GET /files/{id} and /files/{id}/url (and its signed URLs) are
  // checked for what they tell a stranger.
  {
    const boundary = `b${randomBytes(6).toString('hex')}`
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64')
    const payload = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.png"\r\n\r\n`), png, Buffer.from(`\r\n--${boundary}--\r\n`)])
    const res = await app.inject({ method: 'POST', url: `/messages/upload?conversation_id=${group.id}`, payload, headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, authorization: `Bearer ${owner.token}` } })
    const fileId = String(res.json().file_url).replace('/files/', '')
    ids.push(fileId)
    hidden.add(fileId)
  }
  // Sessions (issue 11): two users' session ids, hidden from the stranger like the rest.
  for (const sid of [owner.token, member.token].map(sessionIdOf)) {
    ids.push(sid)
    hidden.add(sid)
  }
  const tokens = [owner.token, member.token, stranger.token, gone.token, 'garbage', undefined]

  const spec = (await app.inject('/openapi.json')).json()
  let requests = 0
  const routes: Array<[string, string, Schema]> = []
  for (const [route, ops] of Object.entries<Record<string, Schema>>(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      // Deleting the fuzzer's own accounts would only turn the rest into 401s; test/users.test.ts covers it.
      if (route === '/users/me' && method === 'delete') continue
      routes.push([method.toUpperCase(), route, op])
    }
  }
  // The routes that end sessions sign the fuzzer's own users out (then everything is a 401): they go last.
  const ENDS_SESSIONS = ['DELETE /auth/sessions/{id}', 'POST /auth/logout-all']
  routes.sort(([m1, r1], [m2, r2]) => ENDS_SESSIONS.indexOf(`${m1} ${r1}`) - ENDS_SESSIONS.indexOf(`${m2} ${r2}`))

  const send = async (method: string, url: string, token: string | undefined, body: unknown, kind: string) => {
    requests++
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {}
    let payload: string | Buffer | undefined
    if (method !== 'GET' && body !== undefined) {
      if (kind === 'json') {
        headers['content-type'] = 'application/json'
        payload = JSON.stringify(body) ?? 'null'
      } else if (kind === 'raw') {
        // Broken JSON: what a client cut off mid-body would send.
        headers['content-type'] = 'application/json'
        payload = typeof body === 'string' ? body : (JSON.stringify(body) ?? 'x').slice(0, -1)
      } else if (kind === 'form') {
        headers['content-type'] = 'application/x-www-form-urlencoded'
        const text = (v: unknown) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? ''))
        const pairs = body && typeof body === 'object' ? Object.entries(body).map(([k, v]) => [k, text(v)]) : [['v', text(body)]]
        payload = new URLSearchParams(pairs).toString()
      } else {
        const boundary = `b${randomBytes(6).toString('hex')}`
        headers['content-type'] = `multipart/form-data; boundary=${boundary}`
        payload = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n`), randomBytes(200), Buffer.from(`\r\n--${boundary}--\r\n`)])
      }
    }
    return app.inject({ method: method as 'GET', url, headers, payload })
  }

  const shapeOk = (res: { statusCode: number; body: string }) => {
    if (res.statusCode < 400) return true
    const body = JSON.parse(res.body)
    const keys = Object.keys(body).sort().join(',')
    return typeof body.error === 'string' && /^[A-Z_]+$/.test(body.code) && (keys === 'code,error' || (keys === 'code,details,error' && body.details.every((d: unknown) => typeof d === 'string')))
  }

  for (const [method, route, op] of routes) {
    const params: Schema[] = op.parameters ?? []
    const pathParams = params.filter((p) => p.in === 'path')
    const queryParams = params.filter((p) => p.in === 'query')
    const bodySchema = op.requestBody?.content?.['application/json']?.schema
    const input = fc.record({
      path: fc.tuple(...pathParams.map(() => fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...ids) }, { weight: 1, arbitrary: fc.uuid() }, { weight: 1, arbitrary: junk }))),
      query: fc.tuple(...queryParams.map((p) => fc.option(anything(p.schema, ids), { nil: undefined }))),
      body: anything(bodySchema, ids),
      kind: fc.constantFrom('json', 'json', 'json', 'raw', 'form', 'multipart'),
      token: fc.constantFrom(...tokens),
    })
    await fc.assert(
      fc.asyncProperty(input, async ({ path: values, query, body, kind, token }) => {
        let url = route
        pathParams.forEach((p, i) => (url = url.replace(`{${p.name}}`, encodeURIComponent(String(values[i])))))
        const qs = new URLSearchParams()
        queryParams.forEach((p, i) => query[i] !== undefined && qs.set(p.name, typeof query[i] === 'object' ? JSON.stringify(query[i]) : String(query[i])))
        const full = qs.size ? `${url}?${qs}` : url
        const res = await send(method, full, token, body, kind)
        if (res.statusCode >= 500) throw new Error(`${method} ${full} answered ${res.statusCode}: ${res.body.slice(0, 300)}`)
        if (!shapeOk(res)) throw new Error(`${method} ${full} answered ${res.statusCode} outside the error shape: ${res.body.slice(0, 300)}`)
        // A stranger asking about someone else's conversation, message or file gets what a made-up id gets.
        const secret = values.findIndex((v) => hidden.has(String(v)))
        if (token === stranger.token && secret >= 0) {
          const made = full.replace(String(values[secret]), randomUUID())
          const twin = await send(method, made, token, body, kind)
          const a = [res.statusCode, res.statusCode >= 400 ? JSON.parse(res.body).code : 'ok']
          const b = [twin.statusCode, twin.statusCode >= 400 ? JSON.parse(twin.body).code : 'ok']
          if (a[0] !== b[0] || a[1] !== b[1]) throw new Error(`${method} ${full}: a stranger sees ${a} for a hidden id but ${b} for a made-up one`)
        }
      }),
      { numRuns: RUNS_PER_ROUTE },
    )
    t.pass(`${method} ${route}`)
  }
  t.ok(requests >= routes.length * RUNS_PER_ROUTE, `${requests} requests over ${routes.length} routes`)
  console.error(`# fuzz: ${requests} requests over ${routes.length} routes`)
})
