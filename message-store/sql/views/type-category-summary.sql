-- Message counts per type and category, with each count's share of all messages.
CREATE OR REPLACE VIEW message_store.type_category_summary AS
  WITH counts AS (
    SELECT type, message_store.category(stream_name) AS category, count(id) AS message_count
    FROM message_store.messages
    GROUP BY type, message_store.category(stream_name)
  ),
  total AS (
    SELECT count(id)::decimal AS total_count
    FROM message_store.messages
  )
  SELECT type, category, message_count, round((message_count / total_count) * 100, 2) AS percent
  FROM counts, total
  ORDER BY type, category;
