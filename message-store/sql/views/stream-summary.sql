-- Message counts per stream, with each count's share of all messages.
CREATE OR REPLACE VIEW message_store.stream_summary AS
  WITH counts AS (
    SELECT stream_name, count(id) AS message_count
    FROM message_store.messages
    GROUP BY stream_name
  ),
  total AS (
    SELECT count(id)::decimal AS total_count
    FROM message_store.messages
  )
  SELECT stream_name, message_count, round((message_count / total_count) * 100, 2) AS percent
  FROM counts, total
  ORDER BY stream_name;
