-- Outgoing deliveries: webhooks and Web Push. An event only adds jobs here (graphile-worker's add_jobs, in the
-- event's own transaction: a job exists exactly when its event committed, and is lost with nothing that was not);
-- the deliveries run in the instances' workers, never in the request that made the event.

-- The jobs of one event, called by parley_log_event: a delivery to each live webhook that asked for its type (the
-- conversation's own, and, in a direct conversation, its members' account webhooks), and for a new message a
-- Web Push job when a member has a browser subscribed. Costs two or three index probes when there is nothing.
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
