-- Message counts per type and stream, with each count's share of all messages.
CREATE OR REPLACE VIEW message_store.type_stream_summary AS
  WITH counts AS (
    SELECT type, stream_name, count(id) AS message_count
    FROM message_store.messages
    GROUP BY type, stream_name
  ),
  total AS (
    SELECT count(id)::decimal AS total_count
    FROM message_store.messages
  )
  SELECT type, stream_name, message_count, round((message_count / total_count) * 100, 2) AS percent
  FROM counts, total
  ORDER BY type, stream_name;
