//! Where a consumer stands, kept as Eventide keeps it: messages of type
//! `Recorded` with data `{"position": N}` in the consumer's position
//! stream, the last one counting.

use ebb_message_store::{ExpectedVersion, MessageData, MessageStore, StreamName};
use serde_json::json;

use crate::Error;

/// The type of position messages.
pub const POSITION_TYPE: &str = "Recorded";

/// Reads and records a consumer's position in its stream.
#[derive(Debug, Clone)]
pub struct PositionStore<S> {
    store: S,
    stream: StreamName,
}

/// The data of a position message.
#[derive(serde::Deserialize)]
struct Recorded {
    position: i64,
}

impl<S: MessageStore> PositionStore<S> {
    /// The positions in `stream` of `store`.
    pub fn new(store: S, stream: StreamName) -> Self {
        Self { store, stream }
    }

    /// The stream positions are recorded in.
    pub fn stream_name(&self) -> &StreamName {
        &self.stream
    }

    /// The last position recorded, `None` when there is none.
    pub async fn get(&self) -> Result<Option<i64>, Error> {
        let Some(message) = self
            .store
            .get_last_stream_message(self.stream.as_str(), Some(POSITION_TYPE))
            .await?
        else {
            return Ok(None);
        };
        let recorded: Recorded = message.data()?;
        Ok(Some(recorded.position))
    }

    /// Records `position`, the global position of the last message
    /// handled.
    pub async fn put(&self, position: i64) -> Result<(), Error> {
        Ok(self.write(position).await?)
    }

    /// [`put`](Self::put) with the store's own error, which the retry
    /// rules classify.
    pub(crate) async fn write(&self, position: i64) -> Result<(), ebb_message_store::Error> {
        let message = MessageData::new(POSITION_TYPE, json!({ "position": position }));
        self.store
            .write(&self.stream, &message, ExpectedVersion::Any)
            .await?;
        tracing::debug!(stream = %self.stream, position, "recorded position");
        Ok(())
    }
}
