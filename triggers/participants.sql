-- A new member starts with nothing unread. A member of a direct conversation knows the other one (peer_id),
-- read from the pair's key ("smaller id:larger id"), so that no path that adds one can leave it out.
CREATE OR REPLACE FUNCTION parley_participants_before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  SELECT last_seq,
         CASE WHEN direct_key IS NULL THEN NULL
              WHEN split_part(direct_key, ':', 1)::uuid = NEW.user_id THEN split_part(direct_key, ':', 2)::uuid
              ELSE split_part(direct_key, ':', 1)::uuid END
  INTO NEW.last_read_seq, NEW.peer_id FROM conversations WHERE id = NEW.conversation_id;
  RETURN NEW;
END
$$;

-- A member's replays start at their own participant_added (joined_seq is the seq before it: members added by
-- one statement each start at their own). The log of a removal also keeps the member's cleared point (never
-- announced nor served): a former member's replay stops at their removal and starts after what they had cleared.
CREATE OR REPLACE FUNCTION parley_participants_log() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  p participants;
  event_type text;
  event jsonb;
  event_seq bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN
    p := NEW; event_type := 'participant_added';
  ELSIF TG_OP = 'DELETE' THEN
    p := OLD; event_type := 'participant_removed';
  ELSE
    p := NEW; event_type := 'participant_role_changed';
  END IF;
  event := jsonb_build_object('conversation_id', p.conversation_id, 'user_id', p.user_id, 'role', p.role, 'by', parley_actor());
  event_seq := parley_next_seq(p.conversation_id);
  PERFORM parley_log_event(p.conversation_id, event_seq, event_type,
    CASE WHEN TG_OP = 'DELETE' THEN event || jsonb_build_object('cleared_seq', p.cleared_seq) ELSE event END, event::text);
  IF TG_OP = 'INSERT' THEN
    UPDATE participants SET joined_seq = event_seq - 1 WHERE conversation_id = p.conversation_id AND user_id = p.user_id;
  END IF;
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
