import { type Kysely, sql } from 'kysely'

// Blocking, and each member's own mute and archive (issue 15).
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    -- blocker_id blocks blocked_id. Probed by the send statement in both directions, by key.
    CREATE TABLE blocks (
      blocker_id uuid NOT NULL REFERENCES users (id),
      blocked_id uuid NOT NULL REFERENCES users (id),
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (blocker_id, blocked_id),
      CHECK (blocker_id <> blocked_id)
    );
    -- Who blocks a user, and the pair the other way round: the send's probes are by a whole key either way.
    CREATE INDEX blocks_blocked ON blocks (blocked_id, blocker_id);

    ALTER TABLE participants
      -- The other member of a direct conversation (null in a group): the send statement finds the pair to check
      -- for a block on the membership row it reads anyway, so a group's send probes nothing more.
      ADD COLUMN peer_id uuid REFERENCES users (id),
      -- Until when this member has muted the conversation (a past time is no mute), and whether they archived it.
      ADD COLUMN muted_until timestamptz(3),
      ADD COLUMN is_archived boolean NOT NULL DEFAULT false;

    UPDATE participants p SET peer_id = o.user_id
    FROM conversations c, participants o
    WHERE c.id = p.conversation_id AND c.direct_key IS NOT NULL
      AND o.conversation_id = p.conversation_id AND o.user_id <> p.user_id;
  `.execute(db)
}
