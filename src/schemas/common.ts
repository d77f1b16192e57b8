import { Type, type TSchema } from 'typebox'
import { named } from './named.ts'

export const Uuid = Type.String({ format: 'uuid' })
export const Timestamp = Type.String({ format: 'date-time' })
export const Nullable = <T extends TSchema>(schema: T, options?: { description?: string }) => Type.Union([schema, Type.Null()], options)

export const ErrorBody = named('Error', Type.Object(
  {
    error: Type.String({ description: 'A sentence for people' }),
    code: Type.String({ description: 'A machine-readable code, e.g. VALIDATION_ERROR' }),
    details: Type.Optional(Type.Array(Type.String())),
  },
  { description: 'The one error shape of every route' },
))

/** The error responses a route can give, by status, for the docs. */
export function errors(...codes: number[]) {
  return Object.fromEntries(codes.map((c) => [c, ErrorBody]))
}

export const IdParams = Type.Object({ id: Uuid })

export const NoContent = Type.Null({ description: 'No content' })
