-- Arms a category: until disarmed (or until the session ends), every
-- write to the category notifies the channel ebb_message_store with the
-- category as payload. The session that listens calls it.
--
-- Arming is a shared advisory lock, held by the session, on the key
-- (1700946551, hashtext(category)): 1700946551 is "ebbw" in ASCII, ebb's
-- namespace for these keys. The trigger on messages tries to take the
-- same key exclusively for its transaction: while the category is armed
-- it cannot, and the write notifies; while nobody has armed it, it can,
-- and the write costs one lock and nothing more. Taking the shared lock
-- waits for every writer that found the category unarmed to commit, so a
-- reader that read the category, found nothing, armed and then read again
-- cannot miss a write. The lock goes with the session, so a listener that
-- disconnects leaves nothing armed behind.
--
-- Each call takes the lock once more; ebb_disarm_category releases once.
CREATE OR REPLACE FUNCTION message_store.ebb_arm_category(
  category varchar
)
RETURNS void
LANGUAGE sql
VOLATILE
AS $$
  SELECT pg_advisory_lock_shared(1700946551, hashtext(category));
$$;
