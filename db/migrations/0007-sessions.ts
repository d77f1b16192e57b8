import { type Kysely, sql } from 'kysely'

// Every refresh-token family becomes a session a user can list and end. Access tokens name their session
// (`sid`), so an ended session stops them on their next use, not only at the next refresh.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE sessions (
      id           uuid PRIMARY KEY,
      user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      created_at   timestamptz(3) NOT NULL DEFAULT now(),
      last_used_at timestamptz(3) NOT NULL DEFAULT now(),
      user_agent   text CHECK (char_length(user_agent) <= 255),
      ended_at     timestamptz(3)
    );
    CREATE INDEX sessions_user ON sessions (user_id) WHERE ended_at IS NULL;

    -- The families issued so far: a family is over once none of its tokens can be spent any more.
    INSERT INTO sessions (id, user_id, created_at, last_used_at, ended_at)
    SELECT family_id, min(user_id::text)::uuid, min(created_at), max(created_at),
           CASE WHEN bool_or(revoked_at IS NULL AND used_at IS NULL AND expires_at > now()) THEN NULL
                ELSE max(coalesce(revoked_at, least(expires_at, now()))) END
    FROM refresh_tokens GROUP BY family_id;

    ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_family_fkey FOREIGN KEY (family_id) REFERENCES sessions (id) ON DELETE CASCADE;
  `.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_family_fkey; DROP TABLE sessions;`.execute(db)
}
