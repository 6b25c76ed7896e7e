-- Message counts per category and type, with each count's share of all messages.
CREATE OR REPLACE VIEW message_store.category_type_summary AS
  WITH counts AS (
    SELECT message_store.category(stream_name) AS category, type, count(id) AS message_count
    FROM message_store.messages
    GROUP BY message_store.category(stream_name), type
  ),
  total AS (
    SELECT count(id)::decimal AS total_count
    FROM message_store.messages
  )
  SELECT category, type, message_count, round((message_count / total_count) * 100, 2) AS percent
  FROM counts, total
  ORDER BY category, type;
