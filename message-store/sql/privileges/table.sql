-- Append only: the role may read and insert, never update or delete.
GRANT SELECT, INSERT ON message_store.messages TO message_store;
GRANT SELECT ON message_store.ebb_schema_versions TO message_store;
