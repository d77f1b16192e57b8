import { Type, type Static } from 'typebox'
import { Nullable, Timestamp, Uuid } from './common.ts'

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

export const User = Type.Object({ ...userFields, email: Nullable(Type.String()) }, { description: 'A user; email only in your own profile' })
export const PublicUser = Type.Object(
  {
    ...userFields,
    is_blocked: Type.Boolean({ description: 'Whether you block this user' }),
    is_deleted: Type.Boolean({ description: 'The account was deleted (its messages stay, under its name)' }),
  },
  { description: 'Another user, without email; online and last seen only to those who share a conversation with them and are not blocked by them' },
)
export type User = Static<typeof User>
export type PublicUser = Static<typeof PublicUser>

export const AuthTokens = Type.Object(
  {
    access_token: Type.String(),
    refresh_token: Type.String(),
    token_type: Type.Literal('bearer'),
    expires_in: Type.Integer({ description: 'Seconds until the access token expires' }),
    user: User,
  },
  
)
export type AuthTokens = Static<typeof AuthTokens>
