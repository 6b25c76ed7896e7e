-- The first 64 bits of md5(value) as a signed bigint. Category locks and
-- consumer-group membership are derived from it, so every client must agree
-- on it bit for bit.
CREATE OR REPLACE FUNCTION message_store.hash_64(
  value varchar
)
RETURNS bigint
LANGUAGE sql
IMMUTABLE
AS $$
  SELECT left('x' || md5(value), 17)::bit(64)::bigint;
$$;
