import { type Kysely, sql } from 'kysely'

// Outgoing webhooks and Web Push subscriptions (issue 17). The deliveries themselves are graphile-worker jobs
// (its own schema, graphile_worker, migrated by db/migrate.ts after these), added by triggers/outgoing.sql.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    -- A URL that gets a conversation's events: of a group or direct conversation (conversation_id), or of every
    -- direct conversation of its owner (conversation_id null: a bot's). The secret signs each delivery.
    CREATE TABLE webhooks (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      conversation_id uuid REFERENCES conversations (id) ON DELETE CASCADE,
      url text NOT NULL,
      events text[] NOT NULL,
      secret text NOT NULL,
      created_at timestamptz(3) NOT NULL DEFAULT now(),
      -- Set when its deliveries kept failing (or its owner lost the right to it): nothing more is queued for it.
      disabled_at timestamptz(3),
      disabled_reason text
    );
    -- What the event trigger probes, once per event: the live webhooks of the conversation, and of its members.
    CREATE INDEX webhooks_conversation ON webhooks (conversation_id) WHERE disabled_at IS NULL AND conversation_id IS NOT NULL;
    CREATE INDEX webhooks_account ON webhooks (owner_id) WHERE disabled_at IS NULL AND conversation_id IS NULL;
    CREATE INDEX webhooks_owner ON webhooks (owner_id, created_at);

    -- Each attempt of each delivery, for the owner to read (the latest few are kept).
    CREATE TABLE webhook_deliveries (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
      event_id text NOT NULL,
      event_type text NOT NULL,
      attempt integer NOT NULL,
      -- The receiver's HTTP status; null when there was no answer.
      status integer,
      -- Null when delivered.
      error text,
      duration_ms integer NOT NULL,
      created_at timestamptz(3) NOT NULL DEFAULT now()
    );
    CREATE INDEX webhook_deliveries_latest ON webhook_deliveries (webhook_id, id DESC);

    -- A browser's push subscription (its endpoint is unique: a browser that subscribes again replaces it).
    CREATE TABLE push_subscriptions (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      endpoint text NOT NULL UNIQUE,
      p256dh text NOT NULL,
      auth text NOT NULL,
      created_at timestamptz(3) NOT NULL DEFAULT now()
    );
    CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);

    -- Whether this member has a browser subscribed: kept by triggers/outgoing.sql, so that a new message asks one
    -- partial index whether anyone is to be notified, not every member of a large group.
    ALTER TABLE participants ADD COLUMN has_push boolean NOT NULL DEFAULT false;
    CREATE INDEX participants_push ON participants (conversation_id) WHERE has_push;

    -- The last notification of a conversation to a user: at most one a minute.
    CREATE TABLE push_sent (
      user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
      sent_at timestamptz(3) NOT NULL,
      PRIMARY KEY (user_id, conversation_id)
    );
  `.execute(db)
}
