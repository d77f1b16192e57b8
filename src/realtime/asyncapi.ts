// The WebSocket protocol as an AsyncAPI 3.0.0 document, made from the schemas the server validates and builds
// frames with (./protocol.ts): `npm run asyncapi` writes it to asyncapi.yaml, GET /asyncapi.yaml serves it.
import type { TSchema } from 'typebox'
import { stringify } from 'yaml'
import { definitionOf } from '../schemas/named.ts'
import {
  ANSWERS, CLOSE_CODES, ClientFrame, MessageRead, ParticipantChange, PresenceState, ReactionChange, ReadState,
  RESUME_MAX_CONVERSATIONS, ServerFrame, ThreadUpdate, TypingState,
} from './protocol.ts'

// The REST shapes (Message, Conversation, User…) are named once in schemas/named.ts and reach the frames as
// references; the protocol's own data schemas are named here, by identity (the frames hold these very objects).
// Both appear once in components.schemas, under the names the OpenAPI document uses.
const LOCAL: Record<string, TSchema> = { ReadState, MessageRead, ThreadUpdate, ReactionChange, ParticipantChange, TypingState, PresenceState }

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

const localNames = new Map<unknown, string>(Object.entries(LOCAL).map(([name, schema]) => [schema, name]))

/** A schema as JSON, named schemas in it replaced by references (but for `self`), each name met added to `reached`. */
function refer(schema: unknown, reached: Set<string>, self?: unknown): Json {
  const local = localNames.get(schema)
  const named = local ?? (schema !== null && typeof schema === 'object' && typeof (schema as { $ref?: unknown }).$ref === 'string' ? (schema as { $ref: string }).$ref : undefined)
  if (named !== undefined && schema !== self) {
    reached.add(named)
    return { $ref: `#/components/schemas/${named}` }
  }
  if (Array.isArray(schema)) return schema.map((s) => refer(s, reached))
  if (schema !== null && typeof schema === 'object') return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, refer(v, reached)]))
  return schema as Json
}

/** Every schema the messages name, and those they name in turn, as components. */
function componentSchemas(reached: Set<string>): Record<string, Json> {
  const out: Record<string, Json> = {}
  for (let grew = true; grew; ) {
    grew = false
    for (const name of [...reached].sort()) {
      if (name in out) continue
      // A REST schema's definition without its $id: in this document it is named by its place in components.
      const schema = LOCAL[name] ?? (({ $id: _, ...definition }: TSchema & { $id?: string }) => definition)(definitionOf({ $ref: name }))
      out[name] = refer(schema, reached, schema)
      grew = true
    }
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)))
}

interface FrameSchema extends TSchema {
  title: string
  description: string
  properties: { type: { const: string } }
}
// Every frame of protocol.ts has its title (its message's name) and description: asyncapiDocument checks.
const clientFrames = ClientFrame.anyOf as unknown as FrameSchema[]
const serverFrames = ServerFrame.anyOf as unknown as FrameSchema[]

function message(frame: FrameSchema, reached: Set<string>): Json {
  const { title, description, ...payload } = frame
  return { name: frame.properties.type.const, title, summary: description, contentType: 'application/json', payload: refer(payload, reached) }
}

const connecting = `Open \`GET /ws\` on any instance with an access token (\`POST /auth/login\`), in the query
(\`/ws?token=<access_token>\`), as the subprotocol \`bearer.<access_token>\` (which the server selects, as
browsers require) or, from a client that can set headers, as \`Authorization: Bearer <access_token>\`. A missing, bad or expired token, or one of an ended session: the socket opens and is closed at
once with 4401. The socket lives no longer than its token, unless an \`auth\` frame brings a fresh one of the same
session.

Every frame is a JSON text. Events of a conversation's log carry \`conversation_id\` and \`seq\` (strictly
increasing per conversation, without gaps, each sent once per socket); after a gap or a reconnect, \`resume\` with
the last seq seen of each conversation (at most ${RESUME_MAX_CONVERSATIONS}). Frames without \`seq\` (typing,
presence, profiles, what is yours alone) are never replayed: read them again by REST. Every client frame spends
one request of the user's REST budget; a frame beyond it is answered \`error\` \`RATE_LIMITED\`.

| close code | meaning | what a client does |
|---|---|---|
${CLOSE_CODES.map((c) => `| ${c.code} | ${c.meaning} | ${c.then} |`).join('\n')}

The prose, with a worked example: docs/PROTOCOL.md.`

const channel = { $ref: '#/channels/ws' }
const inChannel = (frame: FrameSchema) => ({ $ref: `#/channels/ws/messages/${frame.title}` })

/** Each client frame is an operation the server receives, answered (its reply) by the frames of ANSWERS. */
function operations(): Record<string, Json> {
  const answers = new Set<string>(Object.values(ANSWERS).flat())
  const ops: Record<string, Json> = {}
  for (const frame of clientFrames) {
    const type = frame.properties.type.const as ClientFrame['type']
    const replies = serverFrames.filter((f) => (ANSWERS[type] as string[]).includes(f.properties.type.const))
    ops[type] = {
      action: 'receive', channel, summary: frame.description, messages: [inChannel(frame)],
      ...(replies.length > 0 && { reply: { channel, messages: replies.map(inChannel) } }),
    }
  }
  ops.events = {
    action: 'send', channel,
    summary: 'Live events: of the conversations you are in, of the people you share one with, and your own',
    messages: serverFrames.filter((f) => !answers.has(f.properties.type.const)).map(inChannel),
  }
  return ops
}

/** The AsyncAPI document, as an object. It describes the server: it receives client frames and sends server frames. */
export function asyncapiDocument(): Json {
  const all = [...clientFrames, ...serverFrames]
  const untitled = all.find((f) => !f.title || !f.description)
  if (untitled) throw new Error(`the ${untitled.properties.type.const} frame needs a title and a description`)
  const keys = all.map((f) => f.title)
  const twice = keys.find((k, i) => keys.indexOf(k) !== i)
  if (twice) throw new Error(`two frames are named ${twice}: give one another title`)
  const reached = new Set<string>()
  const messages = Object.fromEntries(all.map((f) => [f.title, message(f, reached)]))
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Parley WebSocket',
      version: '0.1.0',
      description: 'The live side of Parley: every change to your conversations as it commits, on any instance. The REST API is /openapi.json (Swagger UI at /docs).',
    },
    defaultContentType: 'application/json',
    servers: {
      local: {
        host: '127.0.0.1:3000', protocol: 'ws', description: '`npm start`; every instance serves the same protocol',
        security: ['queryToken', 'subprotocolToken', 'bearerHeader'].map((name) => ({ $ref: `#/components/securitySchemes/${name}` })),
      },
    },
    channels: {
      ws: {
        address: '/ws', title: 'The socket', description: connecting,
        messages: Object.fromEntries(all.map((f) => [f.title, { $ref: `#/components/messages/${f.title}` }])),
        bindings: {
          ws: {
            method: 'GET',
            query: { type: 'object', properties: { token: { type: 'string', description: 'An access token, unless it is offered as the subprotocol' } } },
            bindingVersion: '0.1.0',
          },
        },
        'x-close-codes': CLOSE_CODES.map((c) => ({ ...c })),
      },
    },
    operations: operations(),
    components: {
      messages,
      schemas: componentSchemas(reached),
      securitySchemes: {
        queryToken: { type: 'httpApiKey', in: 'query', name: 'token', description: 'The access token: `/ws?token=<access_token>`' },
        subprotocolToken: {
          type: 'httpApiKey', in: 'header', name: 'Sec-WebSocket-Protocol',
          description: 'Offer the subprotocol `bearer.<access_token>` (a browser cannot set headers on a WebSocket); the server selects it',
        },
        bearerHeader: {
          type: 'http', scheme: 'bearer', bearerFormat: 'JWT',
          description: '`Authorization: Bearer <access_token>` on the upgrade request, from a client that can set headers (a browser cannot)',
        },
      },
    },
  }
}

/** The document as YAML, the text of asyncapi.yaml. */
export const asyncapiYaml = (): string => stringify(asyncapiDocument(), { lineWidth: 0, aliasDuplicateObjects: false })
