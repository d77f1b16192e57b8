import { type Kysely, sql } from 'kysely'

// The log gave back what was taken away: message events kept a copy of the message as it was then, so a replay
// served a deleted message's text and an edited one's earlier wording. From here the log keeps a message event's
// message id only, and replays serve the message as it is now (triggers/event-replay.sql). This scrubs the
// copies already kept. (Their old row versions stay on disk until VACUUM reclaims them, as for any UPDATE.)
// Replays also start a member's window at their joining without searching the log: participants.joined_seq.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    UPDATE conversation_events SET payload = jsonb_build_object('message_id', payload->'id')
    WHERE type IN ('new_message', 'message_edited', 'message_deleted');

    ALTER TABLE participants ADD COLUMN joined_seq bigint NOT NULL DEFAULT 0;
    UPDATE participants p SET joined_seq = coalesce((
      SELECT max(e.seq) - 1 FROM conversation_events e
      WHERE e.conversation_id = p.conversation_id AND e.type = 'participant_added' AND e.payload->>'user_id' = p.user_id::text), 0);

    -- A former member's replay ends at their removal: found by this index, not by reading the whole log.
    CREATE INDEX conversation_events_removals ON conversation_events (conversation_id, (payload->>'user_id'), seq)
      WHERE type = 'participant_removed';
  `.execute(db)
}
