import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE users ADD COLUMN is_online boolean NOT NULL DEFAULT false;
    CREATE TABLE instances (
      id           uuid PRIMARY KEY,
      started_at   timestamptz(3) NOT NULL DEFAULT now(),
      heartbeat_at timestamptz(3) NOT NULL DEFAULT now()
    );
    CREATE TABLE presence (
      instance_id uuid NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
      user_id     uuid NOT NULL REFERENCES users (id),
      PRIMARY KEY (instance_id, user_id)
    );
    CREATE INDEX presence_user ON presence (user_id);
  `.execute(db)
  // Its functions (triggers/presence.sql) are a repeatable script, applied after the migrations (db/repeatable.ts).
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DROP FUNCTION parley_set_presence, parley_refresh_presence, parley_reap_instances;
    DROP TABLE presence, instances;
    ALTER TABLE users DROP COLUMN is_online;
  `.execute(db)
}
