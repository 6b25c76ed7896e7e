-- The part of a stream name before the first '-' (the whole name when it
-- has none). IMMUTABLE because the messages_category index is built on it.
CREATE OR REPLACE FUNCTION message_store.category(
  stream_name varchar
)
RETURNS varchar
LANGUAGE sql
IMMUTABLE
AS $$
  SELECT split_part(stream_name, '-', 1)::varchar;
$$;
