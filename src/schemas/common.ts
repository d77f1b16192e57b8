import { Type, type TSchema } from 'typebox'
import type { ErrorCode } from '../error-codes.ts'
import { named } from './named.ts'

export const Uuid = Type.String({ format: 'uuid' })
export const Timestamp = Type.String({ format: 'date-time' })
export const Nullable = <T extends TSchema>(schema: T, options?: { description?: string }) => Type.Union([schema, Type.Null()], options)

export const ErrorBody = named('Error', Type.Object(
  {
    error: Type.String({ description: 'A sentence for people' }),
    code: Type.String({ description: 'A machine-readable code: the list is in this schema\'s `x-error-codes` and in docs/ERRORS.md' }),
    details: Type.Optional(Type.Array(Type.String(), { description: 'VALIDATION_ERROR: each problem; USER_NOT_FOUND: the ids not found' })),
  },
  { description: 'The one error shape of every route. Any route may also answer 429 RATE_LIMITED (with `Retry-After`), 503 SERVICE_UNAVAILABLE and 500 INTERNAL_ERROR.' },
))

/** What every signed-in route can answer 401 with. */
export const SIGNED_IN: ErrorCode[] = ['UNAUTHORIZED', 'TOKEN_EXPIRED', 'SESSION_ENDED', 'ACCOUNT_DELETED']

export const IdParams = Type.Object({ id: Uuid })

export const NoContent = Type.Null({ description: 'No content' })
