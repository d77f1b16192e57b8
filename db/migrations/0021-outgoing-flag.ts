import { type Kysely, sql } from 'kysely'

// conversations.outgoing: whether an event of the conversation may have anything to deliver outside the sockets
// (a live webhook of the conversation, a member with a browser subscribed to Web Push, or, in a direct
// conversation, a member's live account webhook). Kept by triggers/outgoing.sql; the event trigger reads it on
// the conversation row each event already locks, so that a conversation with nothing registered (nearly every
// one) pays one probe of a row in hand rather than three index searches per event.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE conversations ADD COLUMN outgoing boolean NOT NULL DEFAULT false;
    UPDATE conversations c SET outgoing = true
    WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.conversation_id = c.id AND w.disabled_at IS NULL)
      OR EXISTS (SELECT 1 FROM participants p WHERE p.conversation_id = c.id AND p.has_push)
      OR (c.direct_key IS NOT NULL AND EXISTS (
        SELECT 1 FROM participants p JOIN webhooks w ON w.owner_id = p.user_id AND w.conversation_id IS NULL AND w.disabled_at IS NULL
        WHERE p.conversation_id = c.id));
  `.execute(db)
}
