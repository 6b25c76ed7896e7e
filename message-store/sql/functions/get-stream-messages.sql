-- Messages of one stream from a position (inclusive), in position order.
-- batch_size -1 means no limit. The condition is raw SQL and is refused
-- unless the message_store.sql_condition setting is on.
CREATE OR REPLACE FUNCTION message_store.get_stream_messages(
  stream_name varchar,
  "position" bigint DEFAULT 0,
  batch_size bigint DEFAULT 1000,
  condition varchar DEFAULT NULL
)
RETURNS SETOF message_store.message
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
  _command text;
BEGIN
  IF message_store.is_category(get_stream_messages.stream_name) THEN
    RAISE EXCEPTION
      'Must be a stream name: %',
      get_stream_messages.stream_name;
  END IF;

  "position" := coalesce(get_stream_messages."position", 0);
  batch_size := coalesce(get_stream_messages.batch_size, 1000);

  -- Without a condition the query is static, so PL/pgSQL prepares it once
  -- per session; the dynamic form below is planned at every call, which
  -- doubled the cost of reading a short stream (an entity store's fetch).
  -- LIMIT NULL is no limit.
  IF get_stream_messages.condition IS NULL THEN
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
      WHERE m.stream_name = get_stream_messages.stream_name
        AND m.position >= get_stream_messages."position"
      ORDER BY m.position ASC
      LIMIT CASE
        WHEN get_stream_messages.batch_size = -1 THEN NULL
        ELSE get_stream_messages.batch_size
      END;
    RETURN;
  END IF;

  _command := '
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
    WHERE m.stream_name = $1
      AND m.position >= $2';

  IF get_stream_messages.condition IS NOT NULL THEN
    IF coalesce(current_setting('message_store.sql_condition', true), 'off') IN ('off', '') THEN
      RAISE EXCEPTION 'Retrieval with SQL condition is not activated';
    END IF;
    _command := _command || format(' AND (%s)', get_stream_messages.condition);
  END IF;

  _command := _command || ' ORDER BY m.position ASC';

  IF get_stream_messages.batch_size <> -1 THEN
    _command := _command || ' LIMIT $3';
  END IF;

  RETURN QUERY EXECUTE _command USING
    get_stream_messages.stream_name,
    get_stream_messages."position",
    get_stream_messages.batch_size;
END;
$$;
