import Ajv from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifyInstance } from 'fastify'
import { namedSchemas } from '../schemas/named.ts'

/**
 * Two validators. Bodies are JSON and checked as sent: no type coercion ("123" stays a string,
 * 123 is not a valid content) and unknown fields are refused, not silently dropped. Query strings
 * and path params arrive as text, so those are coerced to the schema's types. The named schemas (schemas/named.ts)
 * are known to both, and to Fastify itself, which serializes answers through them and lists them in the OpenAPI
 * document.
 */
export function installValidation(app: FastifyInstance): void {
  const common = { allErrors: false, useDefaults: true, strict: false } as const
  const body = addFormats.default(new Ajv.default({ ...common, coerceTypes: false, removeAdditional: false }))
  const text = addFormats.default(new Ajv.default({ ...common, coerceTypes: 'array', removeAdditional: false }))
  for (const schema of namedSchemas()) {
    body.addSchema(schema)
    text.addSchema(schema)
    app.addSchema(schema)
  }
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? body : text).compile(schema))
  textAjv = text
}

let textAjv: Ajv.default | undefined

/**
 * For multipart routes: the body is streamed by the handler, not parsed, so its schema is for the docs only;
 * query and params are validated as everywhere else.
 */
export const streamedBodyCompiler = ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
  httpPart === 'body' ? () => true : textAjv!.compile(schema)
