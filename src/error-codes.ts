/**
 * Every `code` an error can carry, with its HTTP status, a typical `error` sentence and when it is given: the one
 * list behind AppError's type, the OpenAPI document (the Error component, and each route's error examples) and
 * docs/ERRORS.md. Codes marked `ws` come only in a WebSocket `error` frame (or as its close reason).
 */
export interface ErrorCodeInfo {
  status: number
  error: string
  when: string
  ws?: true
}

export const ERROR_CODES = {
  // 400
  VALIDATION_ERROR: { status: 400, error: 'Invalid body: /content must NOT have fewer than 1 characters', when: 'The request does not fit its schema (`details` lists each problem), or names both or neither of `conversation_id` and `recipient_id`' },
  INVALID_JSON: { status: 400, error: 'Body is not valid JSON', when: 'The body is not JSON, or is empty with `Content-Type: application/json`' },
  BAD_REQUEST: { status: 400, error: 'Malformed URL', when: 'The request itself is malformed: its URL, headers or multipart framing' },
  NAME_REQUIRED: { status: 400, error: 'A group needs a name', when: 'A group is created without `name`' },
  INVALID_PARTICIPANTS: { status: 400, error: 'A direct conversation has exactly one other participant', when: 'A direct conversation names no other user, or more than one' },
  GROUP_TOO_LARGE: { status: 400, error: 'A group has at most 256 members', when: 'The group would pass MAX_GROUP_SIZE members' },
  NOT_A_GROUP: { status: 400, error: 'Direct conversations have no settings or members to change', when: 'A group-only change (rename, members, roles, avatar) on a direct conversation' },
  INVALID_REPLY: { status: 400, error: 'reply_to_id is not a message of this conversation', when: '`reply_to_id` names a message of another conversation' },
  INVALID_THREAD: { status: 400, error: 'thread_id is not a message of this conversation', when: '`thread_id` names a message of another conversation' },
  INVALID_EMOJI: { status: 400, error: 'A reaction is one emoji or a :short_code:', when: 'A reaction that is not one emoji grapheme or a `:short_code:`' },
  URL_NOT_ALLOWED: { status: 400, error: 'internal.example resolves to 10.0.0.7, which is not a public address', when: 'A webhook URL or push endpoint that is not https, carries credentials, does not resolve, or reaches a private, loopback or link-local address (unless WEBHOOK_ALLOW_PRIVATE)' },
  NOT_FORWARDABLE: { status: 400, error: 'System messages cannot be forwarded', when: 'Forwarding a system message' },
  CANNOT_BLOCK_SELF: { status: 400, error: 'You cannot block yourself', when: 'Blocking your own id' },
  CURRENT_PASSWORD_REQUIRED: { status: 400, error: 'current_password is required to change the password or the email', when: 'A new password or email without `current_password`' },
  FILE_REQUIRED: { status: 400, error: 'Send the file as the multipart field "file"', when: 'An upload without its `file` part' },
  FILE_EMPTY: { status: 400, error: 'The file is empty', when: 'An upload of zero bytes' },
  // 401
  UNAUTHORIZED: { status: 401, error: 'Missing or invalid access token', when: 'No `Authorization: Bearer` token, or one that is not ours' },
  TOKEN_EXPIRED: { status: 401, error: 'Access token has expired', when: 'The access token is past `expires_in`: refresh it (POST /auth/refresh)' },
  SESSION_ENDED: { status: 401, error: 'This session has ended; sign in again', when: 'The token\'s session was ended (logout, a password change, DELETE /auth/sessions/{id})' },
  ACCOUNT_DELETED: { status: 401, error: 'This account no longer exists', when: 'The token\'s user deleted their account' },
  INVALID_CREDENTIALS: { status: 401, error: 'Wrong username or password', when: 'POST /auth/login with a wrong username or password (the same answer for both)' },
  INVALID_REFRESH_TOKEN: { status: 401, error: 'Refresh token is invalid or expired', when: 'A refresh token that is unknown, expired or already ended' },
  REFRESH_TOKEN_REUSED: { status: 401, error: 'Refresh token was already used; its session is ended', when: 'A spent refresh token came back: its whole session is ended, as it may have been stolen' },
  FILE_URL_INVALID: { status: 401, error: 'This file link is not valid', when: 'A signed file URL with a wrong or missing signature field' },
  FILE_URL_EXPIRED: { status: 401, error: 'This file link has expired; ask for a new one', when: 'A signed file URL past its expiry: GET /files/{id}/url again' },
  // 403
  NOT_ADMIN: { status: 403, error: 'Only group admins can do that', when: 'A group change that only admins make (rename, members, roles, pins, avatar)' },
  NOT_SENDER: { status: 403, error: 'Only the sender can edit a message', when: 'Editing someone else\'s message' },
  NOT_ALLOWED: { status: 403, error: 'Only the sender or a group admin can delete a message', when: 'Deleting someone else\'s message without being a group admin' },
  BLOCKED: { status: 403, error: 'You cannot message this user: one of you blocks the other', when: 'Opening or writing to a direct conversation where one of you blocks the other' },
  WRONG_PASSWORD: { status: 403, error: 'current_password is incorrect', when: 'PATCH /users/me with a wrong `current_password`' },
  OTHER_SESSION: { status: 403, error: 'A socket keeps its user and session: open a new socket for another one', when: 'A socket re-authenticating as another user or session', ws: true },
  // 404: a stranger gets the same answer for what exists and what does not
  ROUTE_NOT_FOUND: { status: 404, error: 'Route GET /nowhere not found', when: 'No such route' },
  USER_NOT_FOUND: { status: 404, error: 'User not found', when: 'No such user, or a deleted one (`details` lists the ids that were not found)' },
  CONVERSATION_NOT_FOUND: { status: 404, error: 'Conversation not found', when: 'No such conversation, or you are not a member' },
  MESSAGE_NOT_FOUND: { status: 404, error: 'Message not found', when: 'No such message, or not one you can see' },
  PARTICIPANT_NOT_FOUND: { status: 404, error: 'Participant not found', when: 'The user is not a member of this conversation' },
  FILE_NOT_FOUND: { status: 404, error: 'File not found', when: 'No such file, or not one you can read' },
  PREVIEW_NOT_FOUND: { status: 404, error: 'Preview not found', when: 'The file has no preview (it is not an image)' },
  SESSION_NOT_FOUND: { status: 404, error: 'Session not found', when: 'No such session of yours' },
  WEBHOOK_NOT_FOUND: { status: 404, error: 'Webhook not found', when: 'No such webhook of yours' },
  PUSH_SUBSCRIPTION_NOT_FOUND: { status: 404, error: 'Push subscription not found', when: 'No such subscription of yours' },
  PUSH_NOT_CONFIGURED: { status: 404, error: 'Web Push is not configured on this server', when: 'The server has no VAPID keys (VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY)' },
  // 408, 409
  UPLOAD_TIMEOUT: { status: 408, error: 'The upload took longer than 300 s', when: 'An upload slower than UPLOAD_TIMEOUT_MS' },
  USERNAME_TAKEN: { status: 409, error: 'That username is taken', when: 'Registering a username that exists (in any case)' },
  EMAIL_TAKEN: { status: 409, error: 'That email is already in use', when: 'An email another account has' },
  LAST_ADMIN: { status: 409, error: 'A group needs at least one admin; promote someone else first', when: 'Demoting the last admin of a group' },
  MESSAGE_DELETED: { status: 409, error: 'A deleted message takes no reactions', when: 'Reacting to, pinning or forwarding a deleted message (editing one is a 400 with this code)' },
  TOO_MANY_REACTIONS: { status: 409, error: 'A message takes at most 20 different reactions', when: 'A 21st different emoji on a message' },
  TOO_MANY_PINS: { status: 409, error: 'A conversation holds at most 50 pinned messages', when: 'A 51st pin in a conversation' },
  TOO_MANY_WEBHOOKS: { status: 409, error: 'An account has at most 20 webhooks', when: 'A webhook past WEBHOOKS_PER_USER' },
  RESUME_IN_PROGRESS: { status: 409, error: 'A resume is already running on this socket; wait for its resumed frame', when: 'A `resume` frame while another is being answered', ws: true },
  // 413, 415, 416
  PAYLOAD_TOO_LARGE: { status: 413, error: 'Request body is too large', when: 'A JSON body over BODY_LIMIT, a file over MAX_UPLOAD_BYTES (or MAX_AVATAR_BYTES), or more than the one file part' },
  QUOTA_EXCEEDED: { status: 413, error: 'Your storage is full: delete some files to upload more', when: 'The upload would pass your UPLOAD_QUOTA_BYTES' },
  IMAGE_TOO_LARGE: { status: 413, error: 'The image is 20000×20000 pixels; at most 100000000 pixels are accepted', when: 'An image over IMAGE_MAX_PIXELS (read from its header, before it is decoded)' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, error: 'Unsupported Content-Type', when: 'A body that is not JSON (or form-encoded, on /auth), an upload that is not multipart, or an avatar that is not PNG, JPEG, GIF or WebP' },
  INVALID_IMAGE: { status: 415, error: 'The file looks like image/png but cannot be read as an image', when: 'An image whose bytes cannot be decoded' },
  RANGE_NOT_SATISFIABLE: { status: 416, error: 'The requested range is outside the file', when: 'A `Range` outside the file (the answer has `Content-Range: bytes */<size>`)' },
  // 429
  RATE_LIMITED: { status: 429, error: 'Too many requests; retry in 12 s', when: 'Past a rate limit: wait `Retry-After` seconds (any route; the auth, login, upload and export routes have their own)' },
  TOO_MANY_SOCKETS: { status: 429, error: 'At most 20 open sockets per user', when: 'A socket past WS_MAX_SOCKETS_PER_USER (it is closed with 1008)', ws: true },
  // 500, 503, 507
  INTERNAL_ERROR: { status: 500, error: 'Internal server error', when: 'A fault of ours; the log has it under the request id (`X-Request-Id`)' },
  SERVICE_UNAVAILABLE: { status: 503, error: 'The database is unavailable; retry in a moment', when: 'The database is away: retry after `Retry-After` (a send with the same `client_id` is not doubled)' },
  UPLOADS_BUSY: { status: 503, error: 'Too many uploads on this server right now; try again shortly', when: 'This instance already streams UPLOAD_MAX_CONCURRENT uploads' },
  EXPORT_BUSY: { status: 503, error: 'Too many exports are running; retry in a minute', when: 'This instance already streams EXPORT_MAX_CONCURRENT exports (`Retry-After: 60`)' },
  INSUFFICIENT_STORAGE: { status: 507, error: 'The server is low on storage; try again later', when: 'The upload would pass FILE_STORAGE_MAX_BYTES' },
  // WebSocket only
  BAD_FRAME: { status: 400, error: 'Unknown frame type', when: 'A client frame that is not JSON or does not fit the protocol', ws: true },
} as const satisfies Record<string, ErrorCodeInfo>

export type ErrorCode = keyof typeof ERROR_CODES

/** The `what` of a `<WHAT>_NOT_FOUND` code, lower case: `notFound('message')` is MESSAGE_NOT_FOUND. */
export type NotFoundWhat = { [C in ErrorCode]: C extends `${infer W}_NOT_FOUND` ? Lowercase<W> : never }[ErrorCode]
