-- Threads: a reply names its root (thread_id); the root counts its live replies and knows when the last one came.
-- Each change of the count is a thread_updated event, after the reply's own. Replies to one conversation are
-- written under its row lock (their seq), so the count cannot race.

-- The data of a thread_updated event, from the root: as sent live, and as replayed (the root as it is now).
CREATE OR REPLACE FUNCTION parley_thread_text(root messages) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT '{"conversation_id":"' || root.conversation_id || '","message_id":"' || root.id
    || '","thread_reply_count":' || root.thread_reply_count
    || ',"thread_last_reply_at":' || coalesce('"' || parley_iso(root.thread_last_reply_at) || '"', 'null') || '}'
$$;

CREATE OR REPLACE FUNCTION parley_thread_announce(root messages) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM parley_log_event(root.conversation_id, parley_next_seq(root.conversation_id), 'thread_updated',
    jsonb_build_object('message_id', root.id), parley_thread_text(root));
END
$$;

CREATE OR REPLACE FUNCTION parley_messages_thread_reply() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  root messages;
BEGIN
  UPDATE messages SET thread_reply_count = thread_reply_count + 1, thread_last_reply_at = NEW.created_at
  WHERE id = NEW.thread_id RETURNING * INTO root;
  PERFORM parley_thread_announce(root);
  RETURN NULL;
END
$$;

-- A deleted reply leaves the count; the last reply's time is then the latest live one's.
CREATE OR REPLACE FUNCTION parley_messages_thread_reply_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  root messages;
BEGIN
  UPDATE messages r SET thread_reply_count = s.n, thread_last_reply_at = s.last_at
  FROM (SELECT count(*)::int AS n, max(created_at) AS last_at FROM messages WHERE thread_id = NEW.thread_id AND NOT is_deleted) s
  WHERE r.id = NEW.thread_id RETURNING r.* INTO root;
  PERFORM parley_thread_announce(root);
  RETURN NULL;
END
$$;

-- Named to fire after messages_after_insert / messages_after_update (triggers fire in name order): the reply's
-- own event takes its seq first.
DROP TRIGGER IF EXISTS messages_thread_reply ON messages;
CREATE TRIGGER messages_thread_reply AFTER INSERT ON messages
  FOR EACH ROW WHEN (NEW.thread_id IS NOT NULL) EXECUTE FUNCTION parley_messages_thread_reply();
DROP TRIGGER IF EXISTS messages_thread_reply_deleted ON messages;
CREATE TRIGGER messages_thread_reply_deleted AFTER UPDATE ON messages
  FOR EACH ROW WHEN (NEW.thread_id IS NOT NULL AND NEW.is_deleted AND NOT OLD.is_deleted) EXECUTE FUNCTION parley_messages_thread_reply_deleted();
