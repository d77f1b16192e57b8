-- Presence: a user is online while at least one live instance holds a socket of theirs. Each instance keeps
-- one presence row per user it serves and a heartbeat in instances; an instance that stops beating (killed,
-- partitioned) is reaped by the others, and its users go offline by themselves.

-- Records that an instance does (here) or no longer does (not here) hold sockets of a user, and announces
-- the user's change of state, if any. The user's row lock serializes instances changing the same user.
CREATE OR REPLACE FUNCTION parley_set_presence(instance uuid, person uuid, here boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM users WHERE id = person FOR UPDATE;
  IF here THEN
    INSERT INTO presence (instance_id, user_id) VALUES (instance, person) ON CONFLICT DO NOTHING;
  ELSE
    DELETE FROM presence WHERE instance_id = instance AND user_id = person;
  END IF;
  PERFORM parley_refresh_presence(person);
END
$$;

-- Recomputes one user's is_online from the presence rows and notifies when it changed.
CREATE OR REPLACE FUNCTION parley_refresh_presence(person uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  online boolean := EXISTS (SELECT 1 FROM presence WHERE user_id = person);
  changed users;
BEGIN
  UPDATE users SET is_online = online, last_seen = CASE WHEN online THEN last_seen ELSE now() END
  WHERE id = person AND is_online IS DISTINCT FROM online
  RETURNING * INTO changed;
  IF FOUND THEN
    PERFORM pg_notify('parley_ephemeral', json_build_object('type', 'presence', 'user_id', person,
      'is_online', changed.is_online, 'last_seen', parley_iso(changed.last_seen))::text);
  END IF;
END
$$;

-- Deletes instances whose heartbeat is older than ttl, with their presence rows; their users go offline
-- unless another instance still holds them. Returns how many instances were reaped.
CREATE OR REPLACE FUNCTION parley_reap_instances(ttl interval) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  dead uuid[];
  person uuid;
BEGIN
  SELECT coalesce(array_agg(id), '{}') INTO dead FROM instances WHERE heartbeat_at < now() - ttl;
  IF cardinality(dead) = 0 THEN RETURN 0; END IF;
  FOR person IN SELECT DISTINCT user_id FROM presence WHERE instance_id = ANY (dead) ORDER BY user_id LOOP
    PERFORM 1 FROM users WHERE id = person FOR UPDATE;
    DELETE FROM presence WHERE instance_id = ANY (dead) AND user_id = person;
    PERFORM parley_refresh_presence(person);
  END LOOP;
  DELETE FROM instances WHERE id = ANY (dead);
  RETURN cardinality(dead);
END
$$;
