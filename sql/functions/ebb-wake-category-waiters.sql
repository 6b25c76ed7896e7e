-- The trigger function behind messages_wake_category_waiters: a write to a
-- category that a consumer has armed clears the flag and notifies the
-- channel ebb_message_store with the category; a write to a category
-- nobody waits for does nothing more than look the flag up.
--
-- A NOTIFY makes its transaction take a database-wide lock at commit and
-- hold it through the commit's WAL flush, so writers that all notified
-- would commit one at a time; notifying only once per arming keeps that
-- cost off every write but the one a consumer waits for.
CREATE OR REPLACE FUNCTION message_store.ebb_wake_category_waiters()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
  _category varchar;
BEGIN
  _category := message_store.category(NEW.stream_name);

  UPDATE message_store.ebb_category_waiters
  SET waiting = false
  WHERE category = _category AND waiting;

  IF FOUND THEN
    PERFORM pg_notify('ebb_message_store', _category);
  END IF;

  RETURN NULL;
END;
$$;
