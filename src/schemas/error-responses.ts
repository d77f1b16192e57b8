import { STATUS_CODES } from 'node:http'
import { ERROR_CODES, type ErrorCode } from '../error-codes.ts'
import { ErrorBody, SIGNED_IN } from './common.ts'

// The error answers of the routes, for the OpenAPI document: one response per status with the Error schema and
// each code the route can give as a named example (components.examples), so that Swagger UI shows what each
// answer says. An answer many routes share (the 401 of every signed-in route, a single "not found") is written
// once, in components.responses, and referenced.

const describe = (status: number, codes: ErrorCode[]) => `${STATUS_CODES[status]}: ${codes.join(', ')}`
const pascal = (code: string) => code.toLowerCase().replace(/(^|_)([a-z])/g, (_, _sep, c: string) => c.toUpperCase())

/** Shared responses by their description (what survives into the document), with their component names. */
const shared = new Map<string, string>([[describe(401, SIGNED_IN), 'Unauthorized']])

/** A route's error answers, by the codes it can give. */
export function errors(...codes: ErrorCode[]) {
  const byStatus = new Map<number, ErrorCode[]>()
  for (const code of codes) byStatus.set(ERROR_CODES[code].status, [...(byStatus.get(ERROR_CODES[code].status) ?? []), code])
  return Object.fromEntries([...byStatus].map(([status, list]) => {
    const description = describe(status, list)
    if (list.length === 1) shared.set(description, pascal(list[0]))
    const examples = Object.fromEntries(list.map((c) => [c, { $ref: `#/components/examples/${c}` }]))
    return [status, { description, content: { 'application/json': { schema: ErrorBody, examples } } }]
  }))
}

type Json = Record<string, any>

/**
 * The document with shared error answers in components.responses, referenced by the operations, the example of
 * each error code that an operation names in components.examples, and every code in the Error schema's
 * `x-error-codes` (code → status, when it is given, and whether it is WebSocket only).
 */
export function shareErrorResponses<T extends Json>(document: T): T {
  const responses: Json = {}
  const used = new Set<string>()
  for (const operations of Object.values<Json>(document.paths ?? {})) {
    for (const operation of Object.values<Json>(operations)) {
      for (const [status, response] of Object.entries<Json>(operation.responses ?? {})) {
        const examples = response.content?.['application/json']?.examples ?? {}
        for (const code of Object.keys(examples)) if (code in ERROR_CODES) used.add(code)
        const name = shared.get(response.description)
        if (!name || !Object.keys(examples).length) continue
        responses[name] = response
        operation.responses[status] = { $ref: `#/components/responses/${name}` }
      }
    }
  }
  const schemas = document.components?.schemas ?? {}
  if (schemas.Error) schemas.Error['x-error-codes'] = ERROR_CODES
  ;(document as Json).components = {
    ...document.components,
    responses,
    examples: Object.fromEntries([...used].sort().map((code) => {
      const { error, when } = ERROR_CODES[code as ErrorCode]
      return [code, { summary: when, value: { error, code } }]
    })),
  }
  return document
}
