-- The position of the stream's last message, NULL for an empty stream.
CREATE OR REPLACE FUNCTION message_store.stream_version(
  stream_name varchar
)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
  _stream_version bigint;
BEGIN
  SELECT max(m.position) INTO _stream_version
  FROM message_store.messages m
  WHERE m.stream_name = stream_version.stream_name;
  RETURN _stream_version;
END;
$$;
