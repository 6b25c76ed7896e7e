//! Helpers for a component's unit tests, on any store (the in-memory one,
//! usually): write a command and get it back as a handler receives it, and
//! see what was written to a stream.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ebb_handler::Error> {
//! use ebb_handler::{Received, message, testing};
//! use ebb_message_store::MemoryStore;
//!
//! #[message] struct Deposit { amount: i64 }
//!
//! let store = MemoryStore::new();
//! let deposit: Received<Deposit> = testing::send(&store, "account:command-1", Deposit { amount: 5 }).await?;
//! assert_eq!((deposit.amount, deposit.position()), (5, 0));
//! assert_eq!(testing::types(&store, "account:command-1").await?, ["Deposit"]);
//! # Ok(()) }
//! ```

use ebb_message_store::{ExpectedVersion, MessageStore, StreamName, StreamQuery};

use crate::Error;
use crate::message::{IntoMessageData, MessageType, Received};

/// Writes `message` to `stream_name` and returns it as it was stored, as a
/// handler receives it (its stream, positions and metadata set by the
/// store).
pub async fn send<S, T>(
    store: &S,
    stream_name: &str,
    message: impl IntoMessageData,
) -> Result<Received<T>, Error>
where
    S: MessageStore,
    T: MessageType,
{
    let stream = StreamName::parse(stream_name)?;
    let data = message.into_message_data()?;
    let position = store.write(&stream, &data, ExpectedVersion::Any).await?;
    let stored = store
        .get_stream_messages(
            stream.as_str(),
            &StreamQuery::new().position(position).batch_size(1),
        )
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::Store(ebb_message_store::Error::InvalidArgument(format!(
                "{stream_name} has no message at the position just written, {position}"
            )))
        })?;
    Received::decode(stored)
}

/// The types of the messages in `stream_name`, in order.
pub async fn types<S: MessageStore>(store: &S, stream_name: &str) -> Result<Vec<String>, Error> {
    let messages = store
        .get_stream_messages(stream_name, &StreamQuery::new().batch_size(-1))
        .await?;
    Ok(messages
        .into_iter()
        .map(|message| message.type_name)
        .collect())
}

/// The messages of type `T` in `stream_name`, decoded, in order (those of
/// other types left out).
pub async fn messages<S: MessageStore, T: MessageType>(
    store: &S,
    stream_name: &str,
) -> Result<Vec<Received<T>>, Error> {
    let messages = store
        .get_stream_messages(stream_name, &StreamQuery::new().batch_size(-1))
        .await?;
    messages
        .into_iter()
        .filter(|message| message.type_name == T::TYPE_NAME)
        .map(Received::decode)
        .collect()
}
