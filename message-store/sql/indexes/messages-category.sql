-- Category reads in global position order, optionally by correlation.
CREATE INDEX IF NOT EXISTS messages_category ON message_store.messages (
  message_store.category(stream_name),
  global_position,
  message_store.category(metadata->>'correlationStreamName')
);
