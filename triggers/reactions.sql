-- Reactions: the reactions table is the truth, messages.reactions its summary ([{emoji, count, user_ids}] in
-- order of each emoji's first use), changed here with every row so that a Message is read from its own row.
-- The summary is changed in place rather than counted again: an UPDATE that waited for another reactor's
-- commit works on the row that commit left, so concurrent reactions lose none. Each change is an event.

CREATE OR REPLACE FUNCTION parley_reactions_add(summary jsonb, add_emoji text, uid uuid) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN summary @> jsonb_build_array(jsonb_build_object('emoji', add_emoji)) THEN (
      SELECT jsonb_agg(CASE WHEN e->>'emoji' = add_emoji
        THEN jsonb_build_object('emoji', add_emoji, 'count', (e->>'count')::int + 1, 'user_ids', (e->'user_ids') || to_jsonb(uid))
        ELSE e END ORDER BY n)
      FROM jsonb_array_elements(summary) WITH ORDINALITY AS x(e, n))
    ELSE summary || jsonb_build_array(jsonb_build_object('emoji', add_emoji, 'count', 1, 'user_ids', jsonb_build_array(uid)))
  END
$$;

CREATE OR REPLACE FUNCTION parley_reactions_remove(summary jsonb, gone_emoji text, uid uuid) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(jsonb_agg(CASE WHEN e->>'emoji' = gone_emoji
      THEN jsonb_build_object('emoji', gone_emoji, 'count', (e->>'count')::int - 1, 'user_ids', (e->'user_ids') - uid::text)
      ELSE e END ORDER BY n) FILTER (WHERE NOT (e->>'emoji' = gone_emoji AND (e->>'count')::int <= 1)), '[]')
  FROM jsonb_array_elements(summary) WITH ORDINALITY AS x(e, n)
$$;

-- The data of a reaction_added / reaction_removed event, as sent live and as replayed (with the summary of then,
-- or of now).
CREATE OR REPLACE FUNCTION parley_reaction_text(conv uuid, stored jsonb, summary jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT (stored || jsonb_build_object('conversation_id', conv, 'reactions', coalesce(summary, '[]')))::text
$$;

CREATE OR REPLACE FUNCTION parley_reactions_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  r reactions;
  conv uuid;
  summary jsonb;
  stored jsonb;
BEGIN
  IF TG_OP = 'INSERT' THEN r := NEW; ELSE r := OLD; END IF;
  UPDATE messages m SET reactions = CASE TG_OP WHEN 'INSERT' THEN parley_reactions_add(m.reactions, r.emoji, r.user_id)
      ELSE parley_reactions_remove(m.reactions, r.emoji, r.user_id) END
    WHERE m.id = r.message_id AND NOT m.is_deleted
    RETURNING m.conversation_id, m.reactions INTO conv, summary;
  -- A message being deleted loses its reactions silently: its message_deleted event says it all.
  IF conv IS NULL THEN
    RETURN NULL;
  END IF;
  stored := jsonb_build_object('message_id', r.message_id, 'user_id', r.user_id, 'emoji', r.emoji);
  PERFORM parley_log_event(conv, parley_next_seq(conv), CASE TG_OP WHEN 'INSERT' THEN 'reaction_added' ELSE 'reaction_removed' END,
    stored, parley_reaction_text(conv, stored, summary));
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS reactions_changed ON reactions;
CREATE TRIGGER reactions_changed AFTER INSERT OR DELETE ON reactions
  FOR EACH ROW EXECUTE FUNCTION parley_reactions_changed();
