-- The stream's highest-position message, optionally the highest of a type.
CREATE OR REPLACE FUNCTION message_store.get_last_stream_message(
  stream_name varchar,
  type varchar DEFAULT NULL
)
RETURNS SETOF message_store.message
LANGUAGE plpgsql
VOLATILE
AS $$
BEGIN
  RETURN QUERY
    SELECT
      m.id::varchar,
      m.stream_name::varchar,
      m.type::varchar,
      m.position::bigint,
      m.global_position::bigint,
      m.data::varchar,
      m.metadata::varchar,
      m.time::timestamp
    FROM message_store.messages m
    WHERE m.stream_name = get_last_stream_message.stream_name
      AND (get_last_stream_message.type IS NULL OR m.type = get_last_stream_message.type)
    ORDER BY m.position DESC
    LIMIT 1;
END;
$$;
