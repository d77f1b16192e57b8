-- A new member starts with nothing unread.
CREATE OR REPLACE FUNCTION parley_participants_before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  SELECT last_seq INTO NEW.last_read_seq FROM conversations WHERE id = NEW.conversation_id;
  RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION parley_participants_log() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  p participants;
  event_type text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    p := NEW; event_type := 'participant_added';
  ELSIF TG_OP = 'DELETE' THEN
    p := OLD; event_type := 'participant_removed';
  ELSE
    p := NEW; event_type := 'participant_role_changed';
  END IF;
  PERFORM parley_log_event(p.conversation_id, parley_next_seq(p.conversation_id), event_type,
    jsonb_build_object('conversation_id', p.conversation_id, 'user_id', p.user_id, 'role', p.role, 'by', parley_actor()));
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS participants_before_insert ON participants;
CREATE TRIGGER participants_before_insert BEFORE INSERT ON participants
  FOR EACH ROW EXECUTE FUNCTION parley_participants_before_insert();
DROP TRIGGER IF EXISTS participants_after_insert_delete ON participants;
CREATE TRIGGER participants_after_insert_delete AFTER INSERT OR DELETE ON participants
  FOR EACH ROW EXECUTE FUNCTION parley_participants_log();
DROP TRIGGER IF EXISTS participants_after_role_change ON participants;
CREATE TRIGGER participants_after_role_change AFTER UPDATE OF role ON participants
  FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role) EXECUTE FUNCTION parley_participants_log();
