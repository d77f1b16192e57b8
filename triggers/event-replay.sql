-- The event log as a reader is served it (the listener filling a gap, a client's resume): each event as the
-- REST API would show it now. A message event is the message as it is now (its deleted form once deleted, its
-- current text once edited), looked up by the id the log keeps; a reaction comes with the message's reactions
-- now, a thread_updated with the root's counters now; a removal loses the cleared point it keeps for the
-- replay's own use. `payload_text` is the same as JSON text, for a reader that sends it on as text (a
-- resume): neither parsed nor rebuilt on the way. A view, so the planner pushes each caller's conditions down to
-- the log's primary key, and computes only the columns a caller names.
DROP VIEW IF EXISTS parley_served_events;
CREATE VIEW parley_served_events AS
  SELECT conversation_id, seq, type, payload_text::json AS payload, payload_text, created_at
  FROM (
    SELECT e.conversation_id, e.seq, e.type, e.created_at,
      CASE
        WHEN e.type IN ('new_message', 'message_edited', 'message_deleted', 'message_pinned', 'message_unpinned') THEN parley_message_text(m)
        WHEN e.type IN ('reaction_added', 'reaction_removed') THEN parley_reaction_text(e.conversation_id, e.payload, m.reactions)
        WHEN e.type = 'thread_updated' THEN parley_thread_text(m)
        WHEN e.type = 'participant_removed' THEN (e.payload - 'cleared_seq')::text
        ELSE e.payload::text
      END AS payload_text
    FROM conversation_events e
    LEFT JOIN messages m ON e.type IN ('new_message', 'message_edited', 'message_deleted', 'message_pinned', 'message_unpinned',
        'reaction_added', 'reaction_removed', 'thread_updated')
      AND m.id = (e.payload->>'message_id')::uuid
  ) served;
