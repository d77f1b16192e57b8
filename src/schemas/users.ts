import { Type, type Static } from 'typebox'
import { Nullable, Timestamp, Uuid } from './common.ts'
import { named } from './named.ts'

export const Username = Type.String({ minLength: 3, maxLength: 32, pattern: '^[A-Za-z0-9_]+$', description: '3-32 letters, digits or underscores; unique, case-insensitive' })
export const Password = Type.String({
  minLength: 8,
  maxLength: 256,
  pattern: '^(?=.*[a-z])(?=.*[A-Z])(?=.*[0-9]).*$',
  description: '8+ characters with an upper-case letter, a lower-case letter and a digit',
})
export const Email = Type.String({ format: 'email', maxLength: 254 })
export const DisplayName = Type.String({ minLength: 1, maxLength: 100 })

const userFields = {
  id: Uuid,
  username: Type.String(),
  display_name: Type.String(),
  avatar_url: Nullable(Type.String()),
  is_online: Type.Boolean(),
  last_seen: Nullable(Timestamp),
  created_at: Timestamp,
}

export const Me = named('Me', Type.Object({ ...userFields, email: Nullable(Type.String()) }, { description: 'Your own profile: the only view of a user with its email' }))
export const User = named('User', Type.Object(
  {
    ...userFields,
    is_blocked: Type.Boolean({ description: 'Whether you block this user' }),
    is_deleted: Type.Boolean({ description: 'The account was deleted (its messages stay, under its name)' }),
  },
  { description: 'A user as others see them, without email; online and last seen only to those who share a conversation with them and are not blocked by them' },
))
export type Me = Static<typeof Me>
export type User = Static<typeof User>

export const AuthTokens = named('AuthTokens', Type.Object(
  {
    access_token: Type.String(),
    refresh_token: Type.String(),
    token_type: Type.Literal('bearer'),
    expires_in: Type.Integer({ description: 'Seconds until the access token expires' }),
    user: Me,
  },
  { description: 'A signed-in session: send `access_token` as `Authorization: Bearer …`; trade `refresh_token` at POST /auth/refresh before `expires_in` runs out' },
))
export type AuthTokens = Static<typeof AuthTokens>
