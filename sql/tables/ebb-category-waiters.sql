-- ebb's wake-up flags: a row per category a consumer has armed
-- (ebb_arm_category), `waiting` while one waits for its next message. The
-- first write to the category after the arming clears the flag and sends
-- one notification (ebb_wake_category_waiters); later writes find it clear
-- and send none, so that only a write someone waits for pays for a NOTIFY.
-- UNLOGGED: the flags are worth nothing after a crash (consumers arm again
-- when their listening connection comes back), and writing them costs no
-- WAL.
CREATE UNLOGGED TABLE IF NOT EXISTS message_store.ebb_category_waiters (
  category varchar NOT NULL,
  waiting boolean NOT NULL,
  CONSTRAINT ebb_category_waiters_pkey PRIMARY KEY (category)
);
