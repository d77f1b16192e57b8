import { Type, type Static } from 'typebox'
import { Nullable, Timestamp, Uuid } from './common.ts'
import { named } from './named.ts'

export const Session = named('Session', Type.Object(
  {
    id: Uuid,
    created_at: Timestamp,
    last_used_at: Type.String({ format: 'date-time', description: 'The last refresh (or the sign-in, if none since)' }),
    user_agent: Nullable(Type.String({ description: 'The User-Agent of the sign-in, cut to 255 characters' })),
    current: Type.Boolean({ description: 'Whether this is the session of the access token making the request' }),
  },
  { description: 'A signed-in device: one refresh-token family' },
))
export type Session = Static<typeof Session>
