-- The row type the read functions return. JSON columns come back as text
-- (varchar), as Message DB clients expect. CREATE TYPE has no IF NOT EXISTS,
-- and dropping it would drop the functions returning it, so it is only
-- created when absent.
DO $$
BEGIN
  IF NOT EXISTS (
    SELECT 1
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = 'message_store' AND t.typname = 'message'
  ) THEN
    CREATE TYPE message_store.message AS (
      id varchar,
      stream_name varchar,
      type varchar,
      position bigint,
      global_position bigint,
      data varchar,
      metadata varchar,
      time timestamp
    );
  END IF;
END
$$;
