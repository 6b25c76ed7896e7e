-- True when the name has no '-', that is no id. A NULL name is not a
-- category (false, not NULL), as in Message DB.
CREATE OR REPLACE FUNCTION message_store.is_category(
  stream_name varchar
)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
AS $$
  SELECT coalesce(strpos(stream_name, '-') = 0, false);
$$;
