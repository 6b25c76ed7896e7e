-- Everything after the first '-', or NULL when the name has no id.
CREATE OR REPLACE FUNCTION message_store.id(
  stream_name varchar
)
RETURNS varchar
LANGUAGE sql
IMMUTABLE
AS $$
  SELECT CASE
    WHEN strpos(stream_name, '-') = 0 THEN NULL
    ELSE substring(stream_name FROM strpos(stream_name, '-') + 1)
  END::varchar;
$$;
