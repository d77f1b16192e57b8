import Ajv, { type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import type { TSchema } from 'typebox'
import { ServerFrame } from '../src/realtime/protocol.ts'
import { namedSchemas } from '../src/schemas/named.ts'

/**
 * The schema with no room for fields it does not name, at every depth: a frame that carries a field the
 * schema lacks (a Message with a field the REST one has not) fails, as one that lacks a field does. The
 * published schemas stay open, so that clients ignore what is added later.
 */
export function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed)
  if (schema === null || typeof schema !== 'object') return schema
  const out = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, closed(s)])) : closed(v)]))
  if ((schema as { type?: unknown }).type === 'object' && 'properties' in schema && !('additionalProperties' in schema)) out.additionalProperties = false
  return out
}

const ajv = addFormats.default(new Ajv.default({ allErrors: true, strict: false }))
// The REST shapes the frames carry (Message, Conversation, User…) are references to the named schemas: closed too.
for (const definition of namedSchemas()) ajv.addSchema(closed(definition) as object)
const members = (ServerFrame.anyOf as TSchema[]).map((schema) => ({
  name: (schema as { title: string }).title,
  type: (schema as { properties: { type: { const: string } } }).properties.type.const,
  validate: ajv.compile(closed(schema) as object) as ValidateFunction,
}))

/** The server-frame schema's name for a frame (`conversation_updated_own`, …), or why it matches none. */
export function checkServerFrame(frame: unknown): { name: string } | { error: string } {
  const type = (frame as { type?: unknown })?.type
  const candidates = members.filter((m) => m.type === type)
  if (candidates.length === 0) return { error: `no server frame has type ${JSON.stringify(type)}` }
  const match = candidates.find((m) => m.validate(frame))
  if (match) return { name: match.name }
  const why = candidates.map((m) => `${m.name}: ${ajv.errorsText(m.validate.errors, { dataVar: 'frame' })}`).join('; ')
  return { error: `${JSON.stringify(frame).slice(0, 300)} fits no ${type} frame (${why})` }
}

/** Every server frame's name, as the schema lists them. */
export const serverFrameNames = members.map((m) => m.name)
