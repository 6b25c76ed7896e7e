-- Every insert into messages, whichever client made it (ebb, Eventide,
-- psql calling write_message), notifies the readers that armed its
-- category (ebb_arm_category).
--
-- The WHEN clause is all a write pays while nobody has armed its
-- category: it takes the category's arming key exclusively for the
-- transaction, which it can unless a listening session holds the key
-- shared. Only when it cannot does the function run and notify. Holding
-- the key until commit is what makes arming wait for this write.
--
-- Created only when missing (CREATE OR REPLACE TRIGGER would re-enable a
-- trigger an operator disabled), but replaced when it is an earlier
-- version without the WHEN clause.
DO $$
DECLARE
  _definition text;
BEGIN
  SELECT pg_get_triggerdef(oid) INTO _definition
  FROM pg_trigger
  WHERE tgname = 'messages_wake_category_waiters'
    AND tgrelid = 'message_store.messages'::regclass;

  IF _definition IS NOT NULL AND position('pg_try_advisory_xact_lock' IN _definition) = 0 THEN
    DROP TRIGGER messages_wake_category_waiters ON message_store.messages;
    _definition := NULL;
  END IF;

  IF _definition IS NULL THEN
    CREATE TRIGGER messages_wake_category_waiters
    AFTER INSERT ON message_store.messages
    FOR EACH ROW
    WHEN (NOT pg_try_advisory_xact_lock(1700946551, hashtext(split_part(NEW.stream_name, '-', 1))))
    EXECUTE FUNCTION message_store.ebb_wake_category_waiters();
  END IF;
END;
$$;
