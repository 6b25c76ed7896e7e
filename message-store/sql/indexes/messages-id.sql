-- Message ids are unique across the store: a retried write of the same
-- message fails instead of storing it twice.
CREATE UNIQUE INDEX IF NOT EXISTS messages_id ON message_store.messages (id);
