-- A rename or a new avatar is an event of the conversation. The seq is taken on the row being
-- updated (it already holds the row lock), not through parley_next_seq, which would update it twice.
CREATE OR REPLACE FUNCTION parley_conversations_before_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.last_seq := OLD.last_seq + 1;
  -- Never back: a message's time is at least its conversation's last activity (parley_messages_before_insert).
  NEW.updated_at := greatest(now(), OLD.updated_at);
  RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION parley_conversations_after_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  event jsonb := jsonb_build_object('conversation_id', NEW.id, 'name', NEW.name, 'avatar_url', NEW.avatar_url, 'by', parley_actor());
BEGIN
  PERFORM parley_log_event(NEW.id, NEW.last_seq, 'conversation_updated', event, event::text);
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS conversations_before_update ON conversations;
CREATE TRIGGER conversations_before_update BEFORE UPDATE OF name, avatar_url ON conversations
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.avatar_url IS DISTINCT FROM NEW.avatar_url)
  EXECUTE FUNCTION parley_conversations_before_update();
DROP TRIGGER IF EXISTS conversations_after_update ON conversations;
CREATE TRIGGER conversations_after_update AFTER UPDATE OF name, avatar_url ON conversations
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.avatar_url IS DISTINCT FROM NEW.avatar_url)
  EXECUTE FUNCTION parley_conversations_after_update();
