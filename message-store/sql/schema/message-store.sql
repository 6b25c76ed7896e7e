-- The schema every Message DB client expects to find the store in.
CREATE SCHEMA IF NOT EXISTS message_store;
