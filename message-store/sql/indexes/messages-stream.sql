-- One message per stream position; also serves stream reads and
-- stream_version().
CREATE UNIQUE INDEX IF NOT EXISTS messages_stream ON message_store.messages (stream_name, position);
