import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import Ajv from 'ajv'
import addFormats from 'ajv-formats'
import t from 'tap'
import { openapiYaml } from '../scripts/openapi.ts'
import { ERROR_CODES } from '../src/error-codes.ts'
import { buildTestApp, client, register } from './helper.ts'

type Json = Record<string, any>
const METHODS = new Set(['get', 'post', 'patch', 'put', 'delete'])
const operations = (spec: Json) =>
  Object.entries<Json>(spec.paths).flatMap(([path, ops]) =>
    Object.entries<Json>(ops).filter(([m]) => METHODS.has(m)).map(([method, op]) => ({ route: `${method.toUpperCase()} ${path}`, path, method, op })))
const REF = (name: string) => ({ $ref: `#/components/schemas/${name}` })

t.test('openapi.yaml is up to date with the route schemas', async (t) => {
  const committed = await readFile(new URL('../openapi.yaml', import.meta.url), 'utf8')
  t.ok(committed === (await openapiYaml()), 'openapi.yaml is stale: run `npm run openapi` and commit it')
})

t.test('@redocly/cli lint finds no problem in openapi.yaml (redocly.yaml says which warnings are accepted)', async (t) => {
  const cli = new URL('../node_modules/@redocly/cli/bin/cli.js', import.meta.url).pathname
  const cwd = new URL('..', import.meta.url).pathname
  const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' }
  const { stdout } = await promisify(execFile)(process.execPath, [cli, 'lint', 'openapi.yaml', '--format=json'], { cwd, env }).catch((err) => err)
  const report = JSON.parse(stdout.slice(stdout.indexOf('{')))
  t.same(report.problems.map((p: Json) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location?.[0]?.pointer}`), [], 'no problem')
  t.equal(report.totals.errors, 0, 'no error')
  t.equal(report.totals.warnings, 0, 'no warning beyond those accepted')
})

t.test('the document a generator reads', async (t) => {
  const { app } = await buildTestApp(t)
  const spec = (await app.inject('/openapi.json')).json()
  t.equal(spec.openapi, '3.0.3')
  t.same(spec.servers, [{ url: '/', description: 'This instance' }], 'a server, relative')
  const ops = operations(spec)
  const routes = ops.map((o) => o.route)
  for (const route of [
    'POST /auth/register', 'POST /auth/login', 'POST /auth/refresh', 'POST /auth/logout',
    'GET /users/me', 'PATCH /users/me', 'DELETE /users/me', 'GET /users', 'GET /users/{id}',
    'POST /conversations', 'GET /conversations', 'GET /conversations/{id}', 'PATCH /conversations/{id}',
    'GET /conversations/{id}/participants', 'POST /conversations/{id}/participants',
    'DELETE /conversations/{id}/participants/{user_id}', 'PATCH /conversations/{id}/participants/{user_id}',
    'POST /conversations/{id}/leave', 'GET /conversations/{id}/messages', 'DELETE /conversations/{id}/messages',
    'POST /conversations/{id}/typing', 'POST /messages', 'GET /messages/{id}', 'PATCH /messages/{id}',
    'DELETE /messages/{id}', 'POST /messages/{id}/read', 'GET /messages/{id}/receipts',
    'GET /messages/{id}/edits', 'GET /messages/{id}/thread', 'POST /messages/{id}/pin', 'DELETE /messages/{id}/pin',
    'GET /conversations/{id}/pins', 'POST /messages/{id}/forward', 'POST /messages/{id}/reactions', 'DELETE /messages/{id}/reactions/{emoji}',
    'PATCH /conversations/{id}/settings', 'POST /messages/{id}/unread', 'POST /users/{id}/block', 'DELETE /users/{id}/block', 'GET /users/me/blocks',
    'GET /files/{id}', 'GET /files/{id}/url', 'GET /files/{id}/thumbnail',
    'GET /search/messages',
    'GET /health/live', 'GET /health/ready',
  ]) t.ok(routes.includes(route), `${route} is documented`)

  t.test('named components, referenced', async (t) => {
    const schemas = spec.components.schemas
    for (const name of ['Message', 'Conversation', 'Participant', 'User', 'Me', 'Error', 'Session', 'AuthTokens', 'FileLink', 'Reaction', 'Quote', 'Receipt', 'MessageEdit', 'SearchResults', 'ExportArchive', 'Health']) {
      t.ok(schemas[name], `${name} is a component`)
    }
    t.same(spec.paths['/messages/{id}'].get.responses['200'].content['application/json'].schema, REF('Message'), 'GET /messages/{id} answers a $ref to Message')
    t.same(spec.paths['/conversations'].get.responses['200'].content['application/json'].schema, { type: 'array', items: REF('Conversation') })
    t.same(schemas.Conversation.properties.participants.items, REF('Participant'), 'components refer to each other')
    t.same(schemas.Participant.properties.user, REF('User'), 'a participant is the public User')
    t.same(schemas.AuthTokens.properties.user, REF('Me'), 'a sign-in answers your own profile')
    t.notOk('email' in schemas.User.properties, 'the public User has no email')
    // The Message's own fields appear in its component only: nothing inlines it.
    const inlined = JSON.stringify(spec.paths).match(/"thread_reply_count"/g) ?? []
    t.equal(inlined.length, 0, 'no operation inlines a Message')
    t.equal((JSON.stringify(spec).match(/"A sentence for people"/g) ?? []).length, 1, 'the Error schema is written once')
    t.ok(JSON.stringify(spec).length < 150_000, `the document is ${JSON.stringify(spec).length} characters`)
  })

  t.test('an operationId on every operation, unique, camelCase', async (t) => {
    const ids = ops.map((o) => o.op.operationId)
    t.same(ops.filter((o) => !/^[a-z][a-zA-Z]+$/.test(o.op.operationId ?? '')).map((o) => o.route), [], 'each has a camelCase operationId')
    t.equal(new Set(ids).size, ids.length, 'no two are the same')
    // The SDK's method names.
    const byRoute = Object.fromEntries(ops.map((o) => [o.route, o.op.operationId]))
    t.match(byRoute, {
      'POST /auth/login': 'login', 'POST /auth/register': 'register', 'POST /auth/refresh': 'refreshToken', 'POST /auth/logout': 'logout',
      'GET /conversations': 'listConversations', 'POST /conversations': 'createConversation', 'POST /messages': 'sendMessage',
      'GET /conversations/{id}/messages': 'listMessages', 'GET /search/messages': 'searchMessages', 'POST /messages/upload': 'uploadFile',
      'POST /users/{id}/block': 'blockUser', 'GET /users/me': 'getMe', 'GET /files/{id}': 'downloadFile',
    })
  })

  t.test('security: the bearer token only; public routes say so', async (t) => {
    t.same(Object.keys(spec.components.securitySchemes), ['bearer'], 'no OAuth2 scheme (its dialog asks for a client secret and scopes that do nothing)')
    t.match(spec.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer' })
    const publicRoutes = ['POST /auth/register', 'POST /auth/login', 'POST /auth/refresh', 'GET /health/live', 'GET /health/ready']
    for (const { route, op } of ops) {
      if (publicRoutes.includes(route)) t.same(op.security, [], `${route} is public`)
      else if (route.startsWith('GET /files/{id}') && route !== 'GET /files/{id}/url') t.same(op.security, [{ bearer: [] }, {}], `${route}: a token, or a signed URL`)
      else t.same(op.security, [{ bearer: [] }], `${route} takes the bearer token`)
    }
  })

  t.test('GET /files/{id}: bytes (200, 206 with Range), JSON errors', async (t) => {
    const op = spec.paths['/files/{id}'].get
    for (const status of ['200', '206']) {
      t.same(op.responses[status].content['application/octet-stream'].schema, { type: 'string', format: 'binary' }, `${status} is binary`)
      t.ok(op.responses[status].headers.etag, `${status} has its headers`)
    }
    t.ok(op.parameters.some((p: Json) => p.in === 'header' && p.name === 'range'), 'the Range header')
    for (const status of ['401', '404', '416']) {
      const response = op.responses[status].$ref ? spec.components.responses[op.responses[status].$ref.split('/').pop()] : op.responses[status]
      t.same(Object.keys(response.content), ['application/json'], `${status} is JSON`)
    }
  })

  t.test('a query parameter with a default is optional', async (t) => {
    for (const path of ['/conversations', '/conversations/{id}/messages', '/users', '/search/messages']) {
      const limit = spec.paths[path].get.parameters.find((p: Json) => p.name === 'limit')
      t.ok(limit.schema.default > 0 && !limit.required, `${path}: limit defaults to ${limit.schema.default}, not required`)
    }
    t.notOk(spec.paths['/conversations'].post.requestBody.content['application/json'].schema.required?.includes('is_group'), 'is_group (default false) is optional')
  })

  t.test('the error codes are in the spec, and each error response shows its codes', async (t) => {
    t.same(Object.keys(spec.components.schemas.Error['x-error-codes']).sort(), Object.keys(ERROR_CODES).sort(), 'x-error-codes lists every code')
    const resolve = (r: Json) => (r.$ref ? spec.components.responses[r.$ref.split('/').pop()] : r)
    for (const { route, op } of ops) {
      for (const [status, raw] of Object.entries<Json>(op.responses)) {
        if (Number(status) < 400 || route === 'GET /health/ready') continue
        const media = resolve(raw).content['application/json']
        t.same(media.schema, REF('Error'), `${route} ${status}: the Error schema`)
        for (const [code, ex] of Object.entries<Json>(media.examples)) {
          const example = spec.components.examples[ex.$ref.split('/').pop()]
          t.equal(ERROR_CODES[code as keyof typeof ERROR_CODES]?.status, Number(status), `${route} ${status}: ${code} is a ${status}`)
          t.equal(example.value.code, code)
        }
      }
    }
  })

  t.test('every example fits its schema', async (t) => {
    // The components under one root, so that their own $refs resolve; Ajv knows OpenAPI's `nullable`.
    const ajv = addFormats.default(new Ajv.default({ strict: false }))
    ajv.addSchema({ $id: 'spec', components: { schemas: spec.components.schemas } })
    const check = (schema: Json, value: unknown, what: string) => {
      const validate = ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', '"spec#/components/schemas/')))
      t.ok(validate(value), `${what}: ${ajv.errorsText(validate.errors)}`)
    }
    let bodies = 0
    for (const { route, op } of ops) {
      const media = op.requestBody?.content?.['application/json']
      if (media?.example) check(media.schema, media.example, `${route}: its request example`), bodies++
    }
    t.ok(bodies >= 10, `${bodies} request bodies have an example`)
    for (const [code, example] of Object.entries<Json>(spec.components.examples)) check(REF('Error'), example.value, code)
  })
})

t.test('the examples work when executed, as "Try it out" sends them', async (t) => {
  const { app } = await buildTestApp(t)
  const spec = (await app.inject('/openapi.json')).json()
  const example = (path: string, method: string) => spec.paths[path][method].requestBody.content['application/json'].example
  // Register and sign in as the examples say.
  const registered = await app.inject({ method: 'POST', url: '/auth/register', payload: example('/auth/register', 'post') })
  t.equal(registered.statusCode, 201, 'POST /auth/register with its example')
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: example('/auth/login', 'post') })
  t.equal(login.statusCode, 200, 'POST /auth/login with its example signs in the user the register example made')
  const alice = { token: login.json().access_token }
  const group = await client(app, alice).post('/conversations', example('/conversations', 'post'))
  t.equal(group.statusCode, 201, 'POST /conversations with its example makes a group')
  const send = example('/messages', 'post')
  t.same(Object.keys(send).sort(), ['content', 'conversation_id'], 'POST /messages: one target, no reply or thread')
  const sent = await client(app, alice).post('/messages', { ...send, conversation_id: group.json().id })
  t.equal(sent.statusCode, 201, 'POST /messages with its example, in that group')

  // Every other example passes its route's validation (ids in paths are made up: a 404 is fine, a 400 is not).
  const bob = await register(app)
  for (const { route, path, method, op } of operations(spec)) {
    const body = op.requestBody?.content?.['application/json']?.example
    if (!body || ['POST /auth/register', 'POST /auth/login'].includes(route)) continue
    const url = path.replace(/\{[a-z_]+\}/g, '00000000-0000-4000-8000-000000000000')
    const res = await app.inject({ method: method.toUpperCase() as 'POST', url, payload: body, headers: { authorization: `Bearer ${bob.token}` } })
    const code = res.body ? res.json().code : undefined
    t.ok(res.statusCode < 500 && !['VALIDATION_ERROR', 'INVALID_JSON'].includes(code), `${route} with its example: ${res.statusCode} ${code ?? ''}`)
  }
})

t.test('/docs: Swagger UI with the bearer scheme only, authorized by a sign-in made in it', async (t) => {
  const { app } = await buildTestApp(t)
  const docs = await app.inject('/docs/')
  t.equal(docs.statusCode, 200)
  t.match(docs.headers['content-type'], /text\/html/)
  const initializer = (await app.inject('/docs/static/swagger-initializer.js')).body
  t.match(initializer, /"responseInterceptor":function anonymous\(res/, 'a response interceptor is configured')
  t.match(initializer, /ui\.preauthorizeApiKey\('bearer', token\)/, 'it authorizes the page with the access token of a sign-in')
  t.match(initializer, /\\\/auth\\\/\(login\|register\|refresh\)\$/, 'of POST /auth/login, /auth/register and /auth/refresh')
  t.match(initializer, /"persistAuthorization":true/)
})
