-- Asks for one notification on the channel ebb_message_store, with the
-- category as payload, when a message is next written to the category.
--
-- It takes the category lock that write_message takes, so every writer
-- already in the category has committed before the flag is set, and every
-- writer after it finds the flag set: a consumer that read the category,
-- found nothing, armed and then read again cannot miss a write.
CREATE OR REPLACE FUNCTION message_store.ebb_arm_category(
  category varchar
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
AS $$
BEGIN
  PERFORM message_store.acquire_lock(ebb_arm_category.category);

  INSERT INTO message_store.ebb_category_waiters AS waiters (category, waiting)
  VALUES (ebb_arm_category.category, true)
  ON CONFLICT ON CONSTRAINT ebb_category_waiters_pkey DO UPDATE SET waiting = true
  WHERE NOT waiters.waiting;
END;
$$;
