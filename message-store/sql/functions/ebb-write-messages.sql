-- Writes messages to any streams, each as write_message would write it
-- alone, in the order given, in one call: ebb's group commit sends the
-- writes that many callers make to a category at the same time this way,
-- so that they share one round trip, one lock and one WAL flush.
--
-- Each category's lock is taken once, in one order for every caller (the
-- lock write_message takes, so that writers through either function take
-- turns). Each message's expected version is checked against its stream's
-- version at that point, the messages before it in the call counted: a
-- message that does not match is not written and does not fail the others.
-- For each message, positions holds the position it was written at (NULL
-- when its expected version did not match) and stream_versions the version
-- of its stream that it was checked against (-1: no stream).
--
-- Anything else that fails (a message id already taken, say) fails the
-- whole call, which then wrote nothing.
CREATE OR REPLACE FUNCTION message_store.ebb_write_messages(
  ids varchar[],
  stream_names varchar[],
  types varchar[],
  data jsonb[],
  metadata jsonb[],
  expected_versions bigint[],
  OUT positions bigint[],
  OUT stream_versions bigint[]
)
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
  _count integer := coalesce(cardinality(ebb_write_messages.ids), 0);
  _hash bigint;
  _streams varchar[];
  _versions bigint[];
  _i integer;
  _k integer;
BEGIN
  IF coalesce(cardinality(ebb_write_messages.stream_names), 0) <> _count
      OR coalesce(cardinality(ebb_write_messages.types), 0) <> _count
      OR coalesce(cardinality(ebb_write_messages.data), 0) <> _count
      OR coalesce(cardinality(ebb_write_messages.metadata), 0) <> _count
      OR coalesce(cardinality(ebb_write_messages.expected_versions), 0) <> _count THEN
    RAISE EXCEPTION 'ebb_write_messages: every array must hold one element per message';
  END IF;

  positions := array_fill(NULL::bigint, ARRAY[_count]);
  stream_versions := positions;
  IF _count = 0 THEN
    RETURN;
  END IF;

  FOR _hash IN
    SELECT DISTINCT message_store.hash_64(message_store.category(s.name))
    FROM unnest(ebb_write_messages.stream_names) AS s(name)
    ORDER BY 1
  LOOP
    PERFORM pg_advisory_xact_lock(_hash);
  END LOOP;

  SELECT array_agg(s.name), array_agg(coalesce(message_store.stream_version(s.name), -1))
  INTO _streams, _versions
  FROM (SELECT DISTINCT unnest(ebb_write_messages.stream_names) AS name) AS s;

  FOR _i IN 1.._count LOOP
    _k := array_position(_streams, ebb_write_messages.stream_names[_i]);
    stream_versions[_i] := _versions[_k];
    IF ebb_write_messages.expected_versions[_i] IS NULL
        OR ebb_write_messages.expected_versions[_i] = _versions[_k] THEN
      _versions[_k] := _versions[_k] + 1;
      positions[_i] := _versions[_k];
    END IF;
  END LOOP;

  INSERT INTO message_store.messages (id, stream_name, position, type, data, metadata)
  SELECT
    ebb_write_messages.ids[m.i]::uuid,
    ebb_write_messages.stream_names[m.i],
    positions[m.i],
    ebb_write_messages.types[m.i],
    ebb_write_messages.data[m.i],
    ebb_write_messages.metadata[m.i]
  FROM generate_subscripts(ebb_write_messages.ids, 1) AS m(i)
  WHERE positions[m.i] IS NOT NULL
  ORDER BY m.i;
END;
$$;
