import type { Kysely } from 'kysely'
import { applyTriggers } from './0002-triggers.ts'

// The event notification gains `ts`, the time of the change, for the listener-lag metric.
// Re-applying the (idempotent) trigger file is the whole change; the old function had no other use, so
// there is no down: an older build simply ignores the extra key.
export async function up(db: Kysely<any>): Promise<void> {
  await applyTriggers(db, ['conversation-events'])
}
