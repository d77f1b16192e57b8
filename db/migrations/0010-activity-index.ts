import { type Kysely, sql } from 'kysely'

// Every message moves its conversation's updated_at, and an index on it made each of those updates write a new
// entry in every index of conversations (an update that changes an indexed column cannot be HOT). Nothing reads
// it: a user's conversations are found through participants and sorted there. Measured through the triggers,
// one message per transaction: 969 → 857 bytes of WAL per message.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX IF EXISTS conversations_activity`.execute(db)
}
