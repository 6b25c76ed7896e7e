-- Append only: the role may read and insert, never update or delete.
GRANT SELECT, INSERT ON message_store.messages TO message_store;
GRANT SELECT ON message_store.ebb_schema_versions TO message_store;
-- Arming sets a category's wake-up flag; every write (its trigger) reads
-- and clears it.
GRANT SELECT, INSERT, UPDATE ON message_store.ebb_category_waiters TO message_store;
