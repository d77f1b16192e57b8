-- The API's Message object, built from a row; the REST side sends the same fields.
CREATE OR REPLACE FUNCTION parley_message_json(m messages) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', m.id, 'conversation_id', m.conversation_id, 'sender_id', m.sender_id, 'seq', m.seq,
    'message_type', m.message_type, 'content', m.content,
    'file_url', m.file_url, 'file_name', m.file_name, 'file_size', m.file_size, 'mime_type', m.mime_type,
    'reply_to_id', m.reply_to_id, 'client_id', m.client_id, 'is_edited', m.is_edited, 'is_deleted', m.is_deleted,
    'created_at', parley_iso(m.created_at), 'updated_at', parley_iso(m.updated_at), 'system', m.system_event)
$$;

-- A new message takes the next seq of its conversation and marks the conversation active.
CREATE OR REPLACE FUNCTION parley_messages_before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE conversations SET last_seq = last_seq + 1, updated_at = now()
  WHERE id = NEW.conversation_id
  RETURNING last_seq INTO NEW.seq;
  RETURN NEW;
END
$$;

-- Message events store the message's id only (see parley_log_event).
CREATE OR REPLACE FUNCTION parley_messages_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM parley_log_event(NEW.conversation_id, NEW.seq, 'new_message', jsonb_build_object('message_id', NEW.id), parley_message_json(NEW));
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION parley_messages_after_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  event_type text;
BEGIN
  IF NEW.is_deleted AND NOT OLD.is_deleted THEN
    event_type := 'message_deleted';
  ELSIF NEW.content IS DISTINCT FROM OLD.content THEN
    event_type := 'message_edited';
  ELSE
    RETURN NULL;
  END IF;
  PERFORM parley_log_event(NEW.conversation_id, parley_next_seq(NEW.conversation_id), event_type,
    jsonb_build_object('message_id', NEW.id), parley_message_json(NEW));
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS messages_before_insert ON messages;
CREATE TRIGGER messages_before_insert BEFORE INSERT ON messages
  FOR EACH ROW EXECUTE FUNCTION parley_messages_before_insert();
DROP TRIGGER IF EXISTS messages_after_insert ON messages;
CREATE TRIGGER messages_after_insert AFTER INSERT ON messages
  FOR EACH ROW EXECUTE FUNCTION parley_messages_after_insert();
DROP TRIGGER IF EXISTS messages_after_update ON messages;
CREATE TRIGGER messages_after_update AFTER UPDATE ON messages
  FOR EACH ROW EXECUTE FUNCTION parley_messages_after_update();
