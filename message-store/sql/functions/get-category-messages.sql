-- Messages of every stream in a category from a global position
-- (inclusive), in global position order; optionally only those correlated
-- to a category, only one consumer group member's share, or those matching
-- a raw SQL condition (refused unless message_store.sql_condition is on).
CREATE OR REPLACE FUNCTION message_store.get_category_messages(
  category varchar,
  "position" bigint DEFAULT 1,
  batch_size bigint DEFAULT 1000,
  correlation varchar DEFAULT NULL,
  consumer_group_member bigint DEFAULT NULL,
  consumer_group_size bigint DEFAULT NULL,
  condition varchar DEFAULT NULL
)
RETURNS SETOF message_store.message
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
  _command text;
BEGIN
  IF NOT message_store.is_category(get_category_messages.category) THEN
    RAISE EXCEPTION
      'Must be a category: %',
      get_category_messages.category;
  END IF;

  "position" := coalesce(get_category_messages."position", 1);
  batch_size := coalesce(get_category_messages.batch_size, 1000);

  -- The category() expressions match the messages_category index.
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
    WHERE message_store.category(m.stream_name) = $1
      AND m.global_position >= $2';

  IF get_category_messages.correlation IS NOT NULL THEN
    IF strpos(get_category_messages.correlation, '-') > 0 THEN
      RAISE EXCEPTION
        'Correlation must be a category (Correlation: %)',
        get_category_messages.correlation;
    END IF;
    _command := _command || '
      AND message_store.category(m.metadata->>''correlationStreamName'') = $4';
  END IF;

  IF (get_category_messages.consumer_group_member IS NULL)
      <> (get_category_messages.consumer_group_size IS NULL) THEN
    RAISE EXCEPTION
      'Consumer group member and size must be specified (Consumer Group Member: %, Consumer Group Size: %)',
      get_category_messages.consumer_group_member,
      get_category_messages.consumer_group_size;
  END IF;

  IF get_category_messages.consumer_group_size IS NOT NULL THEN
    IF get_category_messages.consumer_group_size < 1 THEN
      RAISE EXCEPTION
        'Consumer group size must not be less than 1 (Consumer Group Member: %, Consumer Group Size: %)',
        get_category_messages.consumer_group_member,
        get_category_messages.consumer_group_size;
    END IF;

    IF get_category_messages.consumer_group_member < 0 THEN
      RAISE EXCEPTION
        'Consumer group member must not be less than 0 (Consumer Group Member: %, Consumer Group Size: %)',
        get_category_messages.consumer_group_member,
        get_category_messages.consumer_group_size;
    END IF;

    IF get_category_messages.consumer_group_member >= get_category_messages.consumer_group_size THEN
      RAISE EXCEPTION
        'Consumer group member must be less than the group size (Consumer Group Member: %, Consumer Group Size: %)',
        get_category_messages.consumer_group_member,
        get_category_messages.consumer_group_size;
    END IF;

    -- A stream without an id has no cardinal id, so the NULL hash matches
    -- no member: such streams are not delivered to consumer groups.
    _command := _command || '
      AND mod(abs(message_store.hash_64(message_store.cardinal_id(m.stream_name))), $6) = $5';
  END IF;

  -- Without a condition the query is static, so PL/pgSQL prepares it once
  -- per session; the dynamic form below is planned at every call, which
  -- is most of the cost of a short read (a caught-up consumer's poll).
  -- LIMIT NULL is no limit.
  IF get_category_messages.condition IS NULL THEN
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
      WHERE message_store.category(m.stream_name) = get_category_messages.category
        AND m.global_position >= get_category_messages."position"
        AND (get_category_messages.correlation IS NULL
          OR message_store.category(m.metadata->>'correlationStreamName') = get_category_messages.correlation)
        AND (get_category_messages.consumer_group_size IS NULL
          OR mod(abs(message_store.hash_64(message_store.cardinal_id(m.stream_name))),
                 get_category_messages.consumer_group_size) = get_category_messages.consumer_group_member)
      ORDER BY m.global_position ASC
      LIMIT CASE
        WHEN get_category_messages.batch_size = -1 THEN NULL
        ELSE get_category_messages.batch_size
      END;
    RETURN;
  END IF;

  IF get_category_messages.condition IS NOT NULL THEN
    IF coalesce(current_setting('message_store.sql_condition', true), 'off') IN ('off', '') THEN
      RAISE EXCEPTION 'Retrieval with SQL condition is not activated';
    END IF;
    _command := _command || format(' AND (%s)', get_category_messages.condition);
  END IF;

  _command := _command || ' ORDER BY m.global_position ASC';

  IF get_category_messages.batch_size <> -1 THEN
    _command := _command || ' LIMIT $3';
  END IF;

  RETURN QUERY EXECUTE _command USING
    get_category_messages.category,
    get_category_messages."position",
    get_category_messages.batch_size,
    get_category_messages.correlation,
    get_category_messages.consumer_group_member,
    get_category_messages.consumer_group_size;
END;
$$;
