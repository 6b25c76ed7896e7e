-- Releases one arming of a category by this session (see
-- ebb_arm_category); true if it held one.
CREATE OR REPLACE FUNCTION message_store.ebb_disarm_category(
  category varchar
)
RETURNS boolean
LANGUAGE sql
VOLATILE
AS $$
  SELECT pg_advisory_unlock_shared(1700946551, hashtext(category));
$$;
