-- Every insert into messages, whichever client made it (ebb, Eventide,
-- psql calling write_message), wakes the category's armed consumers.
-- Created only when missing (CREATE OR REPLACE TRIGGER needs PostgreSQL
-- 14), so that reinstalling leaves a trigger an operator disabled
-- disabled.
DO $$
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM pg_trigger
    WHERE tgname = 'messages_wake_category_waiters'
      AND tgrelid = 'message_store.messages'::regclass
  ) THEN
    CREATE TRIGGER messages_wake_category_waiters
    AFTER INSERT ON message_store.messages
    FOR EACH ROW EXECUTE FUNCTION message_store.ebb_wake_category_waiters();
  END IF;
END;
$$;
