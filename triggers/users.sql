-- A change to what others see of a user (display name, avatar, the account's deletion) is announced to every
-- instance, which tells the users who share a conversation with them (src/realtime/user-fanout.ts). Only the id
-- is sent: each instance reads the user as it is then, so the one shape of a public User stays in the service.
CREATE OR REPLACE FUNCTION parley_users_after_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('parley_ephemeral', json_build_object('type', 'user_updated', 'user_id', NEW.id)::text);
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS users_after_update ON users;
CREATE TRIGGER users_after_update AFTER UPDATE OF display_name, avatar_url, deleted_at ON users
  FOR EACH ROW WHEN (OLD.display_name IS DISTINCT FROM NEW.display_name OR OLD.avatar_url IS DISTINCT FROM NEW.avatar_url
    OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
  EXECUTE FUNCTION parley_users_after_update();

-- A block or an unblock changes what each of the two sees of the other (the blocker's presence; `is_blocked`):
-- both are told, the one blocked with the blocker's profile as they may now see it (offline while blocked), the
-- blocker's devices with the other's `is_blocked`.
CREATE OR REPLACE FUNCTION parley_blocks_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  pair blocks := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
  PERFORM pg_notify('parley_ephemeral', json_build_object('type', 'block_changed', 'blocker_id', pair.blocker_id, 'blocked_id', pair.blocked_id)::text);
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS blocks_changed ON blocks;
CREATE TRIGGER blocks_changed AFTER INSERT OR DELETE ON blocks FOR EACH ROW EXECUTE FUNCTION parley_blocks_changed();
