import type { Kysely } from 'kysely'

// The event notification gained `ts`, the time of the change, for the listener-lag metric. This migration
// once re-applied triggers/conversation-events.sql; that file is now a repeatable script (db/repeatable.ts).
export async function up(_db: Kysely<any>): Promise<void> {}
