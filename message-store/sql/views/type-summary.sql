-- Message counts per message type, with each count's share of all messages.
CREATE OR REPLACE VIEW message_store.type_summary AS
  WITH counts AS (
    SELECT type, count(id) AS message_count
    FROM message_store.messages
    GROUP BY type
  ),
  total AS (
    SELECT count(id)::decimal AS total_count
    FROM message_store.messages
  )
  SELECT type, message_count, round((message_count / total_count) * 100, 2) AS percent
  FROM counts, total
  ORDER BY type;
