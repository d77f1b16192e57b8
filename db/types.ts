import type { ColumnType, Generated, Insertable, Selectable } from 'kysely'

// The one place the database's shape is written down for TypeScript; migrations in db/migrations create it.
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>

export interface UsersTable {
  id: Generated<string>
  username: string
  email: string | null
  display_name: string
  password_hash: string
  avatar_url: string | null
  last_seen: Date | null
  is_online: Generated<boolean>
  created_at: Timestamp
  updated_at: Timestamp
  deleted_at: Timestamp | null
}

export interface RefreshTokensTable {
  id: Generated<string>
  user_id: string
  family_id: string
  token_hash: string
  expires_at: Timestamp
  created_at: Timestamp
  used_at: Timestamp | null
  revoked_at: Timestamp | null
}

/** One refresh-token family: its id is the family's, and access tokens carry it as `sid`. */
export interface SessionsTable {
  id: string
  user_id: string
  created_at: Timestamp
  last_used_at: Timestamp
  user_agent: string | null
  ended_at: Timestamp | null
}

export interface ConversationsTable {
  id: Generated<string>
  is_group: boolean
  name: string | null
  avatar_url: string | null
  created_by: string
  direct_key: string | null
  last_seq: Generated<number>
  created_at: Timestamp
  updated_at: Timestamp
  /** Whether its events may have a webhook or Web Push to deliver to (kept by triggers/outgoing.sql). */
  outgoing: Generated<boolean>
}

export interface ParticipantsTable {
  conversation_id: string
  user_id: string
  role: 'admin' | 'member'
  joined_at: Timestamp
  last_read_seq: Generated<number>
  cleared_seq: Generated<number>
  /** last_seq when they joined: their replays start after it. */
  joined_seq: Generated<number>
  /** The other member of a direct conversation (set by triggers/participants.sql); null in a group. */
  peer_id: Generated<string | null>
  /** Muted until then (a past time is no mute). */
  muted_until: Timestamp | null
  is_archived: Generated<boolean>
  /** Whether this member has a browser subscribed to Web Push (kept by triggers/outgoing.sql). */
  has_push: Generated<boolean>
}

/** blocker_id blocks blocked_id. */
export interface BlocksTable {
  blocker_id: string
  blocked_id: string
  created_at: Generated<Date>
}

export type MessageType = 'text' | 'image' | 'video' | 'file' | 'system'

export interface MessagesTable {
  id: Generated<string>
  conversation_id: string
  sender_id: string
  seq: Generated<number>
  message_type: MessageType
  content: string | null
  file_url: string | null
  file_name: string | null
  file_size: number | null
  mime_type: string | null
  /** An image's preview (`/files/{file_id}/thumbnail`) and the image's own size, as it is shown (EXIF orientation applied). */
  thumbnail_url: string | null
  width: number | null
  height: number | null
  reply_to_id: string | null
  client_id: string | null
  file_id: string | null
  /** What a system message says, by ids (SystemEvent), as JSON text on insert. */
  system_event: ColumnType<unknown, string | null | undefined, never>
  is_edited: Generated<boolean>
  is_deleted: Generated<boolean>
  /** [{emoji, count, user_ids}], kept by triggers/reactions.sql from the reactions table. */
  reactions: ColumnType<unknown, never, never>
  /** The root of the thread this message is a reply in. */
  thread_id: string | null
  thread_reply_count: Generated<number>
  thread_last_reply_at: Date | null
  /** Members named as @username in the content. */
  mentions: Generated<string[]>
  pinned_at: Date | null
  pinned_by: string | null
  forwarded_sender_id: string | null
  forwarded_created_at: Date | null
  /** The content's lexemes for full-text search (generated; NULL for deleted and system messages). */
  search: ColumnType<string | null, never, never>
  created_at: Timestamp
  updated_at: Timestamp
}

export interface ReactionsTable {
  message_id: string
  emoji: string
  user_id: string
  created_at: Generated<Date>
}

export interface MessageEditsTable {
  id: Generated<string>
  message_id: string
  content: string | null
  edited_at: Date
}

export interface ReadReceiptsTable {
  conversation_id: string
  user_id: string
  seq: number
  message_id: string
  read_at: Timestamp
}

export interface ConversationEventsTable {
  conversation_id: string
  seq: number
  type: string
  payload: unknown
  created_at: Timestamp
}

export interface InstancesTable {
  id: string
  started_at: Timestamp
  heartbeat_at: Timestamp
}

export interface PresenceTable {
  instance_id: string
  user_id: string
}

export interface FilesTable {
  id: Generated<string>
  storage_name: string
  /** `preview`: made by the server from the image `preview_of` (src/services/images.ts), deleted with it. */
  purpose: 'message' | 'avatar' | 'preview'
  mime_type: string
  size: number
  original_name: string
  uploaded_by: string
  preview_of: ColumnType<string | null, string | undefined, never>
  created_at: Timestamp
}

export type NewFile = Insertable<FilesTable>

/** FILE_STORAGE=postgres: a file's bytes, CHUNK_BYTES a row (src/services/file-storage/postgres.ts). */
export interface FileChunksTable {
  storage_name: string
  n: number
  data: Buffer
}

/** FILE_STORAGE=s3: objects that may exist with no files row, swept once expired. */
export interface FileObjectsPendingTable {
  storage_name: string
  expires_at: Timestamp
}

/** A URL that gets a conversation's events (or, with no conversation_id, those of its owner's direct conversations). */
export interface WebhooksTable {
  id: Generated<string>
  owner_id: string
  conversation_id: string | null
  url: string
  events: string[]
  secret: string
  created_at: Generated<Date>
  disabled_at: Timestamp | null
  disabled_reason: string | null
}

/** One attempt of one delivery. */
export interface WebhookDeliveriesTable {
  id: Generated<string>
  webhook_id: string
  event_id: string
  event_type: string
  attempt: number
  status: number | null
  error: string | null
  duration_ms: number
  created_at: Generated<Date>
}

export interface PushSubscriptionsTable {
  id: Generated<string>
  user_id: string
  endpoint: string
  p256dh: string
  auth: string
  created_at: Generated<Date>
}

/** The last notification of a conversation to a user. */
export interface PushSentTable {
  user_id: string
  conversation_id: string
  sent_at: Timestamp
}

export interface Database {
  files: FilesTable
  file_chunks: FileChunksTable
  file_objects_pending: FileObjectsPendingTable
  instances: InstancesTable
  presence: PresenceTable
  users: UsersTable
  refresh_tokens: RefreshTokensTable
  sessions: SessionsTable
  conversations: ConversationsTable
  participants: ParticipantsTable
  blocks: BlocksTable
  messages: MessagesTable
  reactions: ReactionsTable
  message_edits: MessageEditsTable
  read_receipts: ReadReceiptsTable
  conversation_events: ConversationEventsTable
  webhooks: WebhooksTable
  webhook_deliveries: WebhookDeliveriesTable
  push_subscriptions: PushSubscriptionsTable
  push_sent: PushSentTable
  /** The log as a reader is served it (triggers/event-replay.sql). */
  parley_served_events: ConversationEventsTable & { payload_text: string }
}

export type UserRow = Selectable<UsersTable>
export type ConversationRow = Selectable<ConversationsTable>
export type ParticipantRow = Selectable<ParticipantsTable>
export type MessageRow = Selectable<MessagesTable>
export type NewMessage = Insertable<MessagesTable>
