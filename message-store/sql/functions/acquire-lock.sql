-- Serialises writers per category for the rest of the transaction. Because
-- writes to a category commit one after another, global positions in a
-- category become visible in order, and a category reader that has seen
-- position N can never later find a committed message below N.
CREATE OR REPLACE FUNCTION message_store.acquire_lock(
  stream_name varchar
)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
  _category_name_hash bigint;
BEGIN
  _category_name_hash := message_store.hash_64(message_store.category(acquire_lock.stream_name));
  PERFORM pg_advisory_xact_lock(_category_name_hash);
  RETURN _category_name_hash;
END;
$$;
