-- The trigger's work, run only for a write to an armed category (the
-- trigger's WHEN clause decides, see messages-wake-category-waiters.sql):
-- one notification on ebb_message_store, with the category as payload.
-- Notifications with the same payload in one transaction are sent once.
CREATE OR REPLACE FUNCTION message_store.ebb_wake_category_waiters()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
AS $$
BEGIN
  PERFORM pg_notify('ebb_message_store', message_store.category(NEW.stream_name));
  RETURN NULL;
END;
$$;
