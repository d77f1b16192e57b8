CREATE OR REPLACE FUNCTION parley_read_receipts_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  event jsonb := jsonb_build_object('conversation_id', NEW.conversation_id, 'message_id', NEW.message_id,
                                    'user_id', NEW.user_id, 'read_at', parley_iso(NEW.read_at));
BEGIN
  PERFORM parley_log_event(NEW.conversation_id, parley_next_seq(NEW.conversation_id), 'message_read', event, event::text);
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS read_receipts_after_insert ON read_receipts;
CREATE TRIGGER read_receipts_after_insert AFTER INSERT ON read_receipts
  FOR EACH ROW EXECUTE FUNCTION parley_read_receipts_after_insert();
