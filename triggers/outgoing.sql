-- Outgoing deliveries: webhooks and Web Push. An event only adds jobs here (graphile-worker's add_jobs, in the
-- event's own transaction: a job exists exactly when its event committed, and is lost with nothing that was not);
-- the deliveries run in the instances' workers, never in the request that made the event.

-- The jobs of one event, called by parley_log_event when the conversation is marked `outgoing` (below): a
-- delivery to each live webhook that asked for its type (the conversation's own, and, in a direct conversation,
-- its members' account webhooks), and for a new message a Web Push job when a member has a browser subscribed.
CREATE OR REPLACE FUNCTION parley_outgoing(conv uuid, event_seq bigint, event_type text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  -- A role change is delivered as what it shows: the conversation as it is now.
  wanted text := CASE event_type WHEN 'participant_role_changed' THEN 'conversation_updated' ELSE event_type END;
  specs graphile_worker.job_spec[];
BEGIN
  SELECT array_agg(ROW('webhook_delivery', json_build_object('webhook_id', hook.id, 'conversation_id', conv, 'seq', event_seq),
      NULL, NULL, 25, NULL, NULL, NULL)::graphile_worker.job_spec)
  INTO specs
  FROM (
    SELECT w.id FROM webhooks w
    WHERE w.conversation_id = conv AND w.disabled_at IS NULL AND wanted = ANY (w.events)
    UNION ALL
    SELECT w.id FROM conversations c
    JOIN participants p ON p.conversation_id = c.id
    JOIN webhooks w ON w.owner_id = p.user_id AND w.conversation_id IS NULL AND w.disabled_at IS NULL
    WHERE c.id = conv AND c.direct_key IS NOT NULL AND wanted = ANY (w.events)
  ) hook;
  IF event_type = 'new_message' AND EXISTS (SELECT 1 FROM participants WHERE conversation_id = conv AND has_push) THEN
    specs := coalesce(specs, '{}') || ROW('web_push', json_build_object('conversation_id', conv, 'seq', event_seq),
      NULL, NULL, 1, NULL, NULL, NULL)::graphile_worker.job_spec;
  END IF;
  IF specs IS NOT NULL THEN
    PERFORM graphile_worker.add_jobs(specs);
  END IF;
END
$$;

-- participants.has_push follows the member's subscriptions, so that the probe above is one partial index.
CREATE OR REPLACE FUNCTION parley_push_subscriptions_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- The old owner too, when a browser subscribes again as someone else.
  UPDATE participants p SET has_push = EXISTS (SELECT 1 FROM push_subscriptions s WHERE s.user_id = p.user_id)
  WHERE p.user_id IN (CASE WHEN TG_OP <> 'INSERT' THEN OLD.user_id END, CASE WHEN TG_OP <> 'DELETE' THEN NEW.user_id END);
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS push_subscriptions_changed ON push_subscriptions;
CREATE TRIGGER push_subscriptions_changed AFTER INSERT OR DELETE OR UPDATE OF user_id ON push_subscriptions
FOR EACH ROW EXECUTE FUNCTION parley_push_subscriptions_changed();

CREATE OR REPLACE FUNCTION parley_participant_push() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.has_push := EXISTS (SELECT 1 FROM push_subscriptions WHERE user_id = NEW.user_id);
  RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS participants_push ON participants;
CREATE TRIGGER participants_push BEFORE INSERT ON participants
FOR EACH ROW EXECUTE FUNCTION parley_participant_push();

-- conversations.outgoing of some conversations, counted again: whether anything above could find a webhook or a
-- subscribed member there. It may be true with nothing to find (then the search above finds nothing), never false
-- with something. The rows are locked first, in a statement of their own, so that the count after sees every
-- change committed before it: one UPDATE that waited for a lock would count with the snapshot it began with, and
-- a webhook added while another is removed could leave the flag false. NO KEY UPDATE, as the event's own seq
-- takes: a stronger lock would wait on the key-share lock that a concurrent insert's foreign key holds.
-- Whether a user has a live account webhook (one for all their direct conversations).
CREATE OR REPLACE FUNCTION parley_has_account_webhook(u uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM webhooks WHERE owner_id = u AND conversation_id IS NULL AND disabled_at IS NULL)
$$;

CREATE OR REPLACE FUNCTION parley_outgoing_recount(convs uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM conversations WHERE id = ANY (convs) ORDER BY id FOR NO KEY UPDATE;
  UPDATE conversations c SET outgoing = NOT c.outgoing
  WHERE c.id = ANY (convs) AND c.outgoing <> (
    EXISTS (SELECT 1 FROM webhooks w WHERE w.conversation_id = c.id AND w.disabled_at IS NULL)
    OR EXISTS (SELECT 1 FROM participants p WHERE p.conversation_id = c.id AND p.has_push)
    OR (c.direct_key IS NOT NULL
      AND EXISTS (SELECT 1 FROM participants p WHERE p.conversation_id = c.id AND parley_has_account_webhook(p.user_id))));
END
$$;

-- The conversations a webhook speaks for: its own, or (an account webhook) its owner's direct conversations.
CREATE OR REPLACE FUNCTION parley_webhook_conversations(w webhooks) RETURNS uuid[]
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN w.conversation_id IS NOT NULL THEN ARRAY[w.conversation_id] ELSE (
    SELECT coalesce(array_agg(p.conversation_id), '{}') FROM participants p JOIN conversations c ON c.id = p.conversation_id
    WHERE p.user_id = w.owner_id AND c.direct_key IS NOT NULL) END
$$;

CREATE OR REPLACE FUNCTION parley_webhooks_outgoing() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM parley_outgoing_recount(
    CASE WHEN TG_OP <> 'INSERT' THEN parley_webhook_conversations(OLD) ELSE '{}' END
    || CASE WHEN TG_OP <> 'DELETE' THEN parley_webhook_conversations(NEW) ELSE '{}' END);
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS webhooks_outgoing ON webhooks;
CREATE TRIGGER webhooks_outgoing AFTER INSERT OR DELETE ON webhooks
FOR EACH ROW EXECUTE FUNCTION parley_webhooks_outgoing();
DROP TRIGGER IF EXISTS webhooks_outgoing_changed ON webhooks;
CREATE TRIGGER webhooks_outgoing_changed AFTER UPDATE OF conversation_id, owner_id, disabled_at ON webhooks
FOR EACH ROW WHEN (OLD.conversation_id IS DISTINCT FROM NEW.conversation_id OR OLD.owner_id <> NEW.owner_id
  OR (OLD.disabled_at IS NULL) <> (NEW.disabled_at IS NULL))
EXECUTE FUNCTION parley_webhooks_outgoing();

-- A member who joins or leaves, or whose browsers subscribe or all go, counts again only when they bring
-- something: a subscription, or account webhooks (which count in a direct conversation).
CREATE OR REPLACE FUNCTION parley_participants_outgoing() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  member participants := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
  IF TG_OP = 'UPDATE' OR member.has_push OR parley_has_account_webhook(member.user_id) THEN
    PERFORM parley_outgoing_recount(ARRAY[member.conversation_id]);
  END IF;
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS participants_outgoing ON participants;
CREATE TRIGGER participants_outgoing AFTER INSERT OR DELETE ON participants
FOR EACH ROW EXECUTE FUNCTION parley_participants_outgoing();
DROP TRIGGER IF EXISTS participants_outgoing_push ON participants;
CREATE TRIGGER participants_outgoing_push AFTER UPDATE OF has_push ON participants
FOR EACH ROW WHEN (OLD.has_push <> NEW.has_push) EXECUTE FUNCTION parley_participants_outgoing();
