import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { Parser } from '@asyncapi/parser'
import Ajv from 'ajv'
import addFormats from 'ajv-formats'
import t from 'tap'
import { parse } from 'yaml'
import { asyncapiDocument, asyncapiYaml } from '../src/realtime/asyncapi.ts'
import { CLOSE_CODES, ClientFrame, ServerFrame } from '../src/realtime/protocol.ts'
import WebSocket from 'ws'
import { buildLiveApp, buildTestApp, register } from './helper.ts'
import { WsClient } from './ws-client.ts'

const committed = await readFile(new URL('../asyncapi.yaml', import.meta.url), 'utf8')
const titles = (union: { anyOf: unknown[] }) => union.anyOf.map((s) => (s as { title: string }).title)
// Spectral's severities: 0 error, 1 warning, 2 information, 3 hint.
const problems = (diagnostics: Array<{ severity: number; code: string | number; message: string; path: Array<string | number> }>) =>
  diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code} at ${d.path.join('.')}: ${d.message}`)

t.test('asyncapi.yaml is up to date with the frame schemas', async (t) => {
  t.ok(committed === asyncapiYaml(), 'asyncapi.yaml is stale: run `npm run asyncapi` and commit it')
})

t.test('asyncapi.yaml is a valid AsyncAPI 3.0.0 document of the whole protocol', async (t) => {
  const { document, diagnostics } = await new Parser().parse(committed)
  t.same(problems(diagnostics), [], '@asyncapi/parser finds no error and no warning')
  t.ok(document, 'it parses')
  const doc = document!
  t.equal(doc.version(), '3.0.0')
  const ws = doc.channels().get('ws')!
  t.equal(ws.address(), '/ws')
  t.same(ws.messages().all().map((m) => m.id()).sort(), [...titles(ClientFrame), ...titles(ServerFrame)].sort(), 'every client and server frame is a message of /ws')

  const operations = new Map(doc.operations().all().map((o) => [o.id(), o]))
  for (const type of titles(ClientFrame)) t.equal(operations.get(type)?.action(), 'receive', `the server receives ${type}`)
  t.same(operations.get('send')!.reply()!.messages().all().map((m) => m.id()), ['ack', 'error'], 'send is answered ack or error')
  t.same(operations.get('ping')!.reply()!.messages().all().map((m) => m.id()), ['pong'])
  t.equal(operations.get('typing')!.reply(), undefined, 'typing is not answered')
  const events = operations.get('events')!
  t.equal(events.action(), 'send')
  t.ok(events.messages().all().some((m) => m.id() === 'conversation_updated_own'), 'both forms of conversation_updated are listed')

  const schemes = doc.securitySchemes().all().map((s) => [s.type(), s.in(), s.name()])
  t.same(schemes, [['httpApiKey', 'query', 'token'], ['httpApiKey', 'header', 'Sec-WebSocket-Protocol'], ['http', undefined, undefined]], 'the token in the query, the subprotocol or the header')
  t.same((ws.extensions().get('x-close-codes')!.value() as Array<{ code: number }>).map((c) => c.code), [4401, 1008, 4008, 1009, 1001])
  t.match(ws.description(), /\| 4401 \|/, 'the close codes are in the description too')

  // A tool reading the document gets the server's rules: the payload refuses what the server refuses.
  const ajv = addFormats.default(new Ajv.default({ strict: false }))
  const send = ajv.compile(doc.messages().all().find((m) => m.id() === 'send')!.payload()!.json())
  t.ok(send({ type: 'send', ref: '1', conversation_id: randomUUID(), content: 'hi' }), 'a valid send frame')
  t.notOk(send({ type: 'send', ref: '1', conversation_id: randomUUID() }), 'a send frame without content')
  const newMessage = ajv.compile(doc.messages().all().find((m) => m.id() === 'new_message')!.payload()!.json())
  t.notOk(newMessage({ type: 'new_message', conversation_id: randomUUID(), seq: 1, data: { id: randomUUID() } }), 'a new_message whose data is no Message')
})

t.test('the parser refuses a broken document (the check above can fail)', async (t) => {
  const broken = asyncapiDocument() as { components: { messages: Record<string, unknown> } }
  delete broken.components.messages.ack
  const { diagnostics } = await new Parser().parse(JSON.stringify(broken))
  t.ok(problems(diagnostics).length > 0, 'a reply naming a missing message is an error')
})

t.test('GET /asyncapi.yaml serves the committed document, linked from the OpenAPI description', async (t) => {
  const { app } = await buildTestApp(t)
  const res = await app.inject('/asyncapi.yaml')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/yaml/)
  t.ok(res.body === committed, 'the same text as asyncapi.yaml')
  t.equal(parse(res.body).asyncapi, '3.0.0')
  const spec = (await app.inject('/openapi.json')).json()
  t.match(spec.info.description, /\(\/asyncapi\.yaml\)/, 'a link in the OpenAPI info.description, shown at the top of /docs')
  t.notOk('/asyncapi.yaml' in spec.paths, 'the route itself is hidden from the OpenAPI document')
})

t.test('each way of passing the token that the document names works: a valid token opens the socket, a bad one closes it with 4401', async (t) => {
  const { app, base } = await buildLiveApp(t)
  const alice = await register(app)
  const { document } = await new Parser().parse(committed)
  const url = `${base.replace(/^http/, 'ws')}/ws`
  const connect: Record<string, (token: string) => WebSocket> = {
    'httpApiKey query token': (token) => new WebSocket(`${url}?token=${token}`),
    // The scheme names the header; its description says what goes in it.
    'httpApiKey header Sec-WebSocket-Protocol': (token) => new WebSocket(url, [`bearer.${token}`]),
    'http bearer': (token) => new WebSocket(url, { headers: { authorization: `Bearer ${token}` } }),
  }
  const schemes = document!.servers().get('local')!.security().flatMap((req) => req.all().map((r) => r.scheme()))
  t.equal(schemes.length, 3)
  for (const scheme of schemes) {
    const key = [scheme.type(), scheme.type() === 'http' ? scheme.scheme() : `${scheme.in()} ${scheme.name()}`].join(' ')
    t.ok(connect[key], `the test knows how to use ${key}`)
    for (const [token, opens] of [[alice.token, true], ['not-a-token', false]] as const) {
      const socket = connect[key](token)
      const ws = new WsClient(socket)
      t.teardown(() => ws.close())
      // A refused token opens too, and is closed then: a browser cannot read an HTTP status of an upgrade.
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject))
      if (opens) {
        await ws.sync()
        t.equal(ws.closed, undefined, `${key}: a valid token opens the socket`)
      } else t.equal((await ws.closedWith()).code, 4401, `${key}: a bad one is closed with 4401`)
    }
  }
})

t.test('docs/PROTOCOL.md names every frame and every close code', async (t) => {
  const prose = await readFile(new URL('../docs/PROTOCOL.md', import.meta.url), 'utf8')
  const types = [...ClientFrame.anyOf, ...ServerFrame.anyOf].map((s) => (s as { properties: { type: { const: string } } }).properties.type.const)
  for (const type of new Set(types)) t.ok(prose.includes(`\`${type}\``) || prose.includes(`type:"${type}"`), `${type} is described`)
  for (const { code } of CLOSE_CODES) t.match(prose, new RegExp(`^\\| ${code} \\|`, 'm'), `close code ${code} is in the table`)
  t.match(prose, /asyncapi\.yaml/, 'and says where the machine-readable form is')
})
