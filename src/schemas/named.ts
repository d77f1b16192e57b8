import { type Static, type TSchema, type TUnsafe, Type } from 'typebox'

// A concept that the API returns (a Message, a Conversation, the Error) is defined once, with an `$id`, and
// referenced everywhere else by `$ref`. Fastify validates and serializes through the same definition
// (app.addSchema, and both Ajv instances of plugins/validation.ts), and the OpenAPI document shows it once,
// as `#/components/schemas/<name>`, which is what client generators turn into named types.
const definitions = new Map<string, TSchema>()

/** Names a schema: it is registered as `name`, and what is returned is a reference typed as the schema itself. */
export function named<T extends TSchema>(name: string, schema: T): TNamed<T> {
  if (definitions.has(name)) throw new Error(`A schema is already named ${name}`)
  definitions.set(name, { ...schema, $id: name })
  return Type.Unsafe<Static<T>>({ $ref: name }) as TNamed<T>
}

export type TNamed<T extends TSchema> = TUnsafe<Static<T>> & { $ref: string }

/** Every named schema, to register with Fastify and Ajv. */
export const namedSchemas = (): TSchema[] => [...definitions.values()]

/** The definition behind a reference that `named` returned. */
export function definitionOf(ref: { $ref: string }): TSchema & { properties?: Record<string, TSchema> } {
  const definition = definitions.get(ref.$ref)
  if (!definition) throw new Error(`No schema is named ${ref.$ref}`)
  return definition
}
