-- The per-conversation event log: shared functions used by every table's triggers.

-- Times leave the database as ISO-8601 UTC with milliseconds, the same text the REST side sends.
-- STABLE as to_char is: a function declared more constant than its body is not inlined, and costs a call per row.
CREATE OR REPLACE FUNCTION parley_iso(ts timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- Who made the change, as set by the service with set_config('parley.actor_id', ..., true).
CREATE OR REPLACE FUNCTION parley_actor() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('parley.actor_id', true), '')::uuid
$$;

-- Takes the next seq of a conversation. The UPDATE holds the conversation's row lock until commit,
-- so writers to one conversation serialize: seq order is commit order, and a rollback gives its seq back.
CREATE OR REPLACE FUNCTION parley_next_seq(conv uuid) RETURNS bigint
LANGUAGE sql AS $$
  UPDATE conversations SET last_seq = last_seq + 1 WHERE id = conv RETURNING last_seq
$$;

-- Appends an event and announces it. What is stored and what is announced differ: the log keeps what a later
-- reader may be served (for a message, only its id: a replay serves the message as it is then, so the log keeps
-- no text, and a deleted one is gone; earlier wordings are in message_edits, deleted with the message; see
-- event-replay.sql), the notification carries the change as it
-- is now, for the sockets listening at this moment. NOTIFY is delivered on commit only, and its payload must
-- stay under 8000 bytes: a large event is announced by key alone and the listener reads it from the log.
-- `ts` (epoch milliseconds, the wall clock at this statement, so just before commit) is in the notification
-- only: the listener-lag metric measures from it to the frame sent.
DROP FUNCTION IF EXISTS parley_log_event(uuid, bigint, text, jsonb);
DROP FUNCTION IF EXISTS parley_log_event(uuid, bigint, text, jsonb, jsonb);
DROP FUNCTION IF EXISTS parley_log_event(uuid, bigint, text, jsonb, json);
-- `announced` is JSON text, spliced into the notification as it is (see parley_message_text).
CREATE OR REPLACE FUNCTION parley_log_event(conv uuid, event_seq bigint, event_type text, stored jsonb, announced text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  head text;
  note text;
BEGIN
  INSERT INTO conversation_events (conversation_id, seq, type, payload)
  VALUES (conv, event_seq, event_type, stored);
  head := '{"conversation_id":"' || conv || '","seq":' || event_seq || ',"type":' || to_json(event_type);
  note := head || ',"ts":' || (extract(epoch FROM clock_timestamp()) * 1000)::bigint || ',"data":' || announced || '}';
  IF octet_length(note) > 7000 THEN
    note := head || '}';
  END IF;
  PERFORM pg_notify('parley_events', note);
  -- Webhook and push jobs (triggers/outgoing.sql), looked for only where something is registered: the row is the
  -- one this event's seq was just taken from, in hand.
  IF EXISTS (SELECT 1 FROM conversations WHERE id = conv AND outgoing) THEN
    PERFORM parley_outgoing(conv, event_seq, event_type);
  END IF;
END
$$;
