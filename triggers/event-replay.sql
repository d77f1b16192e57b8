-- The event log as a reader is served it (the listener filling a gap, a client's resume): each event as the
-- REST API would show it now. A message event is the message as it is now (its deleted form once deleted, its
-- current text once edited), looked up by the id the log keeps; a removal loses the cleared point it keeps for
-- the replay's own use. A view, so the planner pushes each caller's conditions down to the log's primary key.
DROP VIEW IF EXISTS parley_served_events;
CREATE VIEW parley_served_events AS
  SELECT e.conversation_id, e.seq, e.type,
    CASE
      WHEN e.type IN ('new_message', 'message_edited', 'message_deleted') THEN parley_message_json(m)
      WHEN e.type = 'participant_removed' THEN e.payload - 'cleared_seq'
      ELSE e.payload
    END AS payload,
    e.created_at
  FROM conversation_events e
  LEFT JOIN messages m ON e.type IN ('new_message', 'message_edited', 'message_deleted') AND m.id = (e.payload->>'message_id')::uuid;
