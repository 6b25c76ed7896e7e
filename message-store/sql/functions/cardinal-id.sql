-- The first of a compound id ('123' of 'account-123+abc'), NULL when the
-- name has no id. Consumer groups partition streams by it, so all streams of
-- one entity go to the same member.
CREATE OR REPLACE FUNCTION message_store.cardinal_id(
  stream_name varchar
)
RETURNS varchar
LANGUAGE sql
IMMUTABLE
AS $$
  SELECT split_part(message_store.id(stream_name), '+', 1)::varchar;
$$;
