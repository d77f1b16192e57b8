-- The event log as a reader is served it (the listener filling a gap, a client's resume): each event as the
-- REST API would show it now. A message event is the message as it is now (its deleted form once deleted, its
-- current text once edited), looked up by the id the log keeps; a reaction comes with the message's reactions
-- now, a thread_updated with the root's counters now; a removal loses the cleared point it keeps for the
-- replay's own use. `payload_text` is the same as JSON text, for a reader that sends it on as text (a
-- resume): neither parsed nor rebuilt on the way. A view, so the planner pushes each caller's conditions down to
-- the log's primary key, and computes only the columns a caller names.
-- The message is looked up in a subquery per event, by its primary key, whatever the tables' sizes: as a join, the
-- planner's custom plan for a page of a small table hashed every message of it (a page's 500 events took twice
-- as long as the index probes of the generic plan, and a replay ran on custom plans for its first pages).
DROP VIEW IF EXISTS parley_served_events;
CREATE VIEW parley_served_events AS
  SELECT conversation_id, seq, type, payload_text::json AS payload, payload_text, created_at
  FROM (
    SELECT e.conversation_id, e.seq, e.type, e.created_at,
      CASE
        WHEN e.type IN ('new_message', 'message_edited', 'message_deleted', 'message_pinned', 'message_unpinned') THEN
          (SELECT parley_message_text(m) FROM messages m WHERE m.id = (e.payload->>'message_id')::uuid)
        WHEN e.type IN ('reaction_added', 'reaction_removed') THEN
          parley_reaction_text(e.conversation_id, e.payload, (SELECT m.reactions FROM messages m WHERE m.id = (e.payload->>'message_id')::uuid))
        WHEN e.type = 'thread_updated' THEN
          (SELECT parley_thread_text(m) FROM messages m WHERE m.id = (e.payload->>'message_id')::uuid)
        WHEN e.type = 'participant_removed' THEN (e.payload - 'cleared_seq')::text
        ELSE e.payload::text
      END AS payload_text
    FROM conversation_events e
  ) served;
