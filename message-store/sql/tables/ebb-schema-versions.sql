-- ebb's own record of what it installed, and when. Message DB keeps no such
-- table (its version lives only in message_store_version()), so its absence
-- means "installed by something other than ebb".
CREATE TABLE IF NOT EXISTS message_store.ebb_schema_versions (
  version text NOT NULL,
  message_db_version text NOT NULL,
  installed_at timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
