-- The login role Message DB clients connect as. Roles are cluster-wide and
-- the install lock is per database, so two installs into different
-- databases may race here: losing that race is not an error.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'message_store') THEN
    CREATE ROLE message_store WITH LOGIN;
  END IF;
EXCEPTION
  WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
