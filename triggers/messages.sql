-- The API's Message object, built from a row; the REST side sends the same fields. Every message that leaves
-- the database is built here (an answer, a notification, a replay), so it is built as text: a concatenation
-- costs half of json_build_object and a third of jsonb_build_object, which look up each argument's type per row.
-- Strings go through to_json (escaped); ids, numbers and booleans need no escaping.
-- parley_render_message builds it; the row keeps what it built (`rendered`, below), which is what every reader
-- gets: parley_message_text is the text, for what is sent on as text (a notification, a replay), parley_message_json
-- the same as json, for what is read as a value (the REST side).
DROP FUNCTION IF EXISTS parley_message_json(messages) CASCADE;
DROP FUNCTION IF EXISTS parley_message_text(messages) CASCADE;
DROP FUNCTION IF EXISTS parley_render_message(messages) CASCADE;
DROP FUNCTION IF EXISTS parley_quote_of(uuid) CASCADE;
DROP FUNCTION IF EXISTS parley_quote_text(messages) CASCADE;
-- A quote of the message a reply names, as every Message shows it in `reply_to`: read with the reply, so it is
-- the target as it is now (its deleted form once deleted, its current text once edited).
CREATE FUNCTION parley_quote_text(t messages) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT '{"id":"' || t.id || '","sender_id":"' || t.sender_id || '","message_type":' || to_json(t.message_type::text)
    || ',"content":' || coalesce(to_json(left(t.content, 200))::text, 'null') || ',"is_deleted":' || t.is_deleted || '}'
$$;

-- A function of its own, called only for a reply: a sub-SELECT written into parley_message_text would keep the
-- planner from inlining it, and every message read would pay a function call (100 times the cost of the text).
CREATE FUNCTION parley_quote_of(target uuid) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT parley_quote_text(t) FROM messages t WHERE t.id = target
$$;

CREATE FUNCTION parley_render_message(m messages) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT ('{"id":"' || m.id || '","conversation_id":"' || m.conversation_id
    || '","sender_id":' || coalesce('"' || m.sender_id || '"', 'null') || ',"seq":' || m.seq
    || ',"message_type":' || to_json(m.message_type::text) || ',"content":' || coalesce(to_json(m.content)::text, 'null')
    || ',"file_url":' || coalesce(to_json(m.file_url)::text, 'null') || ',"file_name":' || coalesce(to_json(m.file_name)::text, 'null')
    || ',"file_size":' || coalesce(m.file_size::text, 'null') || ',"mime_type":' || coalesce(to_json(m.mime_type)::text, 'null')
    -- An image's preview and size; every other message has the constant.
    || CASE WHEN m.thumbnail_url IS NULL THEN ',"thumbnail_url":null,"width":null,"height":null'
      ELSE ',"thumbnail_url":' || to_json(m.thumbnail_url)::text || ',"width":' || coalesce(m.width::text, 'null')
        || ',"height":' || coalesce(m.height::text, 'null') END
    || ',"reply_to_id":' || coalesce('"' || m.reply_to_id || '"', 'null') || ',"client_id":' || coalesce(to_json(m.client_id)::text, 'null')
    || ',"is_edited":' || m.is_edited || ',"is_deleted":' || m.is_deleted
    || ',"created_at":"' || parley_iso(m.created_at) || '","updated_at":"' || parley_iso(m.updated_at)
    || '","system":' || coalesce(m.system_event::text, 'null')
    -- Most messages have none of what follows: one test, and the fields as one constant (a new message's text is
    -- built twice per send, for the answer and for the notification).
    || CASE WHEN m.thread_id IS NULL AND m.thread_reply_count = 0 AND m.pinned_at IS NULL AND m.forwarded_sender_id IS NULL
        AND cardinality(m.mentions) = 0 AND jsonb_array_length(m.reactions) = 0
      THEN ',"reactions":[],"thread_id":null,"thread_reply_count":0,"thread_last_reply_at":null,"mentions":[],"pinned_at":null,"pinned_by":null,"forwarded_from":null'
      ELSE ',"reactions":' || m.reactions::text
        || ',"thread_id":' || coalesce('"' || m.thread_id || '"', 'null') || ',"thread_reply_count":' || m.thread_reply_count
        || ',"thread_last_reply_at":' || coalesce('"' || parley_iso(m.thread_last_reply_at) || '"', 'null')
        || ',"mentions":' || CASE WHEN cardinality(m.mentions) = 0 THEN '[]' ELSE to_json(m.mentions)::text END
        || ',"pinned_at":' || coalesce('"' || parley_iso(m.pinned_at) || '"', 'null') || ',"pinned_by":' || coalesce('"' || m.pinned_by || '"', 'null')
        || ',"forwarded_from":' || CASE WHEN m.forwarded_sender_id IS NULL THEN 'null'
             ELSE '{"sender_id":"' || m.forwarded_sender_id || '","created_at":"' || parley_iso(m.forwarded_created_at) || '"}' END
      END
    || ',"reply_to":' || CASE WHEN m.reply_to_id IS NULL THEN 'null' ELSE coalesce(parley_quote_of(m.reply_to_id), 'null') END
    || '}')
$$;

-- The Message as the row keeps it: built on every write of the row (messages_render), so a read copies it.
CREATE FUNCTION parley_message_text(m messages) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT m.rendered
$$;

CREATE FUNCTION parley_message_json(m messages) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT parley_message_text(m)::json
$$;

-- The current members among usernames written as @name (lower-cased), for a message's `mentions`.
CREATE OR REPLACE FUNCTION parley_members_named(conv uuid, names text[]) RETURNS uuid[]
LANGUAGE sql STABLE AS $$
  SELECT coalesce(array_agg(u.id ORDER BY u.id), '{}') FROM participants p JOIN users u ON u.id = p.user_id
  WHERE p.conversation_id = conv AND lower(u.username) = ANY (names) AND u.deleted_at IS NULL
$$;

-- A new message takes the next seq of its conversation and marks the conversation active. Its time is never
-- before the conversation's last activity, so that within a conversation created_at never decreases with seq:
-- now() is when the writer's transaction began, and a writer that began first can take its seq second. Search
-- reads a conversation newest first by seq and merges conversations by time (src/services/search-query.ts).
CREATE OR REPLACE FUNCTION parley_messages_before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE conversations SET last_seq = last_seq + 1, updated_at = greatest(now(), updated_at)
  WHERE id = NEW.conversation_id
  RETURNING last_seq, updated_at INTO NEW.seq, NEW.created_at;
  NEW.updated_at := NEW.created_at;
  RETURN NEW;
END
$$;

-- Message events store the message's id only (see parley_log_event).
CREATE OR REPLACE FUNCTION parley_messages_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM parley_log_event(NEW.conversation_id, NEW.seq, 'new_message', jsonb_build_object('message_id', NEW.id), parley_message_text(NEW));
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION parley_messages_after_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  event_type text;
BEGIN
  -- Replies quote this message: their copies are built again with its new text or its deleted form (the touch
  -- fires their messages_render; a reply whose own fields are unchanged logs no event).
  IF NEW.content IS DISTINCT FROM OLD.content OR NEW.is_deleted <> OLD.is_deleted THEN
    UPDATE messages SET rendered = NULL WHERE reply_to_id = NEW.id;
  END IF;
  IF NEW.is_deleted AND NOT OLD.is_deleted THEN
    event_type := 'message_deleted';
    -- A deleted message keeps nothing of what it was: its reactions (their summary is already cleared, with its
    -- pin, by messages_before_delete) and its earlier versions.
    DELETE FROM reactions WHERE message_id = NEW.id;
    DELETE FROM message_edits WHERE message_id = NEW.id;
  ELSIF NEW.content IS DISTINCT FROM OLD.content THEN
    event_type := 'message_edited';
    INSERT INTO message_edits (message_id, content, edited_at) VALUES (NEW.id, OLD.content, NEW.updated_at);
  ELSIF NEW.pinned_at IS NOT NULL AND OLD.pinned_at IS NULL THEN
    event_type := 'message_pinned';
  ELSIF NEW.pinned_at IS NULL AND OLD.pinned_at IS NOT NULL THEN
    event_type := 'message_unpinned';
  ELSE
    RETURN NULL;
  END IF;
  PERFORM parley_log_event(NEW.conversation_id, parley_next_seq(NEW.conversation_id), event_type,
    jsonb_build_object('message_id', NEW.id), parley_message_text(NEW));
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION parley_messages_before_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.reactions := '[]';
  NEW.pinned_at := NULL;
  NEW.pinned_by := NULL;
  RETURN NEW;
END
$$;

-- After messages_before_insert (the seq and times) and messages_before_delete (what a deletion clears): triggers
-- of one event fire in the order of their names.
CREATE OR REPLACE FUNCTION parley_messages_render() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.rendered := parley_render_message(NEW);
  RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS messages_before_delete ON messages;
CREATE TRIGGER messages_before_delete BEFORE UPDATE ON messages
  FOR EACH ROW WHEN (NEW.is_deleted AND NOT OLD.is_deleted) EXECUTE FUNCTION parley_messages_before_delete();
DROP TRIGGER IF EXISTS messages_before_insert ON messages;
CREATE TRIGGER messages_before_insert BEFORE INSERT ON messages
  FOR EACH ROW EXECUTE FUNCTION parley_messages_before_insert();
DROP TRIGGER IF EXISTS messages_after_insert ON messages;
CREATE TRIGGER messages_after_insert AFTER INSERT ON messages
  FOR EACH ROW EXECUTE FUNCTION parley_messages_after_insert();
DROP TRIGGER IF EXISTS messages_after_update ON messages;
CREATE TRIGGER messages_after_update AFTER UPDATE ON messages
  FOR EACH ROW EXECUTE FUNCTION parley_messages_after_update();
DROP TRIGGER IF EXISTS messages_render ON messages;
CREATE TRIGGER messages_render BEFORE INSERT OR UPDATE ON messages
  FOR EACH ROW EXECUTE FUNCTION parley_messages_render();

-- Rows written before `rendered` existed, or built by an earlier text of parley_render_message: built again, once,
-- with the row triggers off (the copy is all that changes, so there is nothing to log or notify).
ALTER TABLE messages DISABLE TRIGGER USER;
UPDATE messages m SET rendered = parley_render_message(m) WHERE m.rendered IS DISTINCT FROM parley_render_message(m);
ALTER TABLE messages ENABLE TRIGGER USER;
