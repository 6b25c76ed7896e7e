-- Appends one message to a stream and returns its position. The category
-- lock is taken before the version is read, so the expected-version check
-- and the insert cannot interleave with another writer to the category.
CREATE OR REPLACE FUNCTION message_store.write_message(
  id varchar,
  stream_name varchar,
  "type" varchar,
  data jsonb,
  metadata jsonb DEFAULT NULL,
  expected_version bigint DEFAULT NULL
)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
  _stream_version bigint;
  _next_position bigint;
BEGIN
  PERFORM message_store.acquire_lock(write_message.stream_name);

  _stream_version := coalesce(message_store.stream_version(write_message.stream_name), -1);

  IF write_message.expected_version IS NOT NULL
      AND write_message.expected_version <> _stream_version THEN
    RAISE EXCEPTION
      'Wrong expected version: % (Stream: %, Stream Version: %)',
      write_message.expected_version,
      write_message.stream_name,
      _stream_version;
  END IF;

  _next_position := _stream_version + 1;

  INSERT INTO message_store.messages (id, stream_name, position, type, data, metadata)
  VALUES (
    write_message.id::uuid,
    write_message.stream_name,
    _next_position,
    write_message.type,
    write_message.data,
    write_message.metadata
  );

  RETURN _next_position;
END;
$$;
