// @parley/client: a Parley client for Node 20+ and browsers (docs/CLIENT.md).
export { ParleyClient, type ClientEvents, type ClientOptions, type SendOptions } from './client.ts'
export type { ConnectionState } from './live.ts'
export { MemoryOutbox, type OutboxEntry, type OutboxStorage } from './outbox.ts'
export type { Rest } from './rest.ts'
export type { WebSocketConstructor, WebSocketLike } from './socket.ts'
export { SeqOrder } from './ordering.ts'
export type { paths } from './generated/openapi.ts'
export * from './types.ts'
