//! The [`Writer`]: typed messages into the store, with an expected
//! version, as the stream's first message, as a batch, or as a reply.

use ebb_message_store::{ExpectedVersion, MessageStore, StreamName};

use crate::Error;
use crate::message::IntoMessageData;

/// Writes messages to a store.
///
/// Cheap to clone when the store is (a [`PgStore`] shares its pool, a
/// [`MemoryStore`] its messages).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ebb_handler::Error> {
/// use ebb_handler::{MessageType, Writer};
/// use ebb_message_store::{ExpectedVersion, MemoryStore, StreamName};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct Opened { account_id: String }
/// impl MessageType for Opened { const TYPE_NAME: &'static str = "Opened"; }
///
/// let writer = Writer::new(MemoryStore::new());
/// let stream = StreamName::new("account", "1")?;
/// let position = writer.write_initial(&stream, Opened { account_id: "1".into() }).await?;
/// assert_eq!(position, 0);
/// # Ok(()) }
/// ```
///
/// [`PgStore`]: ebb_message_store::PgStore
/// [`MemoryStore`]: ebb_message_store::MemoryStore
#[derive(Debug, Clone)]
pub struct Writer<S> {
    /// Where the messages go.
    store: S,
}

/// What [`Writer::reserve`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Reservation {
    /// The stream was empty and the message is now its first, at
    /// position 0: whatever the reservation guards has not been done yet.
    Made,
    /// The stream already had a message: the reservation was made before
    /// (by this handler earlier, or by another instance), and nothing was
    /// written.
    AlreadyMade,
}

impl<S: MessageStore> Writer<S> {
    /// A writer to `store`.
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// The store written to.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Writes `message` to `stream` and returns its position. With an
    /// expected version other than [`ExpectedVersion::Any`], the write
    /// fails with the store's expected-version error (see
    /// [`Error::is_wrong_expected_version`]) unless the stream is at that
    /// version; an entity's [`Version`](crate::Version) can be passed as
    /// it is.
    pub async fn write(
        &self,
        stream: &StreamName,
        message: impl IntoMessageData,
        expected_version: impl Into<ExpectedVersion>,
    ) -> Result<i64, Error> {
        let message = message.into_message_data()?;
        Ok(self
            .store
            .write(stream, &message, expected_version.into())
            .await?)
    }

    /// Writes `message` as the first message of `stream`; fails with the
    /// expected-version error if the stream has any.
    pub async fn write_initial(
        &self,
        stream: &StreamName,
        message: impl IntoMessageData,
    ) -> Result<i64, Error> {
        self.write(stream, message, ExpectedVersion::NoStream).await
    }

    /// Writes `message` as the first message of `stream`, the reservation
    /// idempotence pattern: the stream is named by an idempotence key (a
    /// deposit's id, say), so the first writer makes the reservation and
    /// every later one, including a re-delivery of the same command, finds
    /// it made. Errors other than the stream's existing are returned.
    pub async fn reserve(
        &self,
        stream: &StreamName,
        message: impl IntoMessageData,
    ) -> Result<Reservation, Error> {
        match self.write_initial(stream, message).await {
            Ok(_) => Ok(Reservation::Made),
            Err(err) if err.is_wrong_expected_version() => Ok(Reservation::AlreadyMade),
            Err(err) => Err(err),
        }
    }

    /// Writes `messages` to `stream` in one transaction, all or none, and
    /// returns the last one's position (for no messages, the stream's
    /// version). The expected version applies to the first message.
    pub async fn write_batch<M: IntoMessageData>(
        &self,
        stream: &StreamName,
        messages: impl IntoIterator<Item = M>,
        expected_version: impl Into<ExpectedVersion>,
    ) -> Result<Option<i64>, Error> {
        let messages = messages
            .into_iter()
            .map(IntoMessageData::into_message_data)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self
            .store
            .write_batch(stream, &messages, expected_version.into())
            .await?)
    }

    /// Writes `message` to the reply stream its metadata names (set by
    /// following the message replied to), and clears that name on the
    /// reply itself, so that the reply asks for no reply. Without a reply
    /// stream the error is [`Error::NoReplyStream`] and nothing is written.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ebb_handler::Error> {
    /// # use ebb_handler::{MessageType, Received, Writer};
    /// # use ebb_message_store::{MemoryStore, MessageStore};
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Deposit {}
    /// # impl MessageType for Deposit { const TYPE_NAME: &'static str = "Deposit"; }
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Accepted {}
    /// # impl MessageType for Accepted { const TYPE_NAME: &'static str = "Accepted"; }
    /// # let mut stored = ebb_message_store::Message { id: uuid::Uuid::new_v4(), stream_name: "account:command-1".into(),
    /// #   type_name: "Deposit".into(), position: 0, global_position: 1, data: serde_json::json!({}).into(),
    /// #   metadata: Default::default(), time: chrono::Utc::now() };
    /// # stored.metadata.reply_stream_name = Some("client-7".into());
    /// # let deposit: Received<Deposit> = Received::decode(stored)?;
    /// let store = MemoryStore::new();
    /// let writer = Writer::new(store.clone());
    /// // deposit.metadata().reply_stream_name is "client-7"
    /// writer.reply(Accepted {}.follow(&deposit)).await?;
    ///
    /// let reply = &store.stream_messages("client-7")[0];
    /// assert_eq!(reply.type_name, "Accepted");
    /// assert_eq!(reply.metadata.reply_stream_name, None);
    /// # Ok(()) }
    /// ```
    pub async fn reply(&self, message: impl IntoMessageData) -> Result<i64, Error> {
        let mut message = message.into_message_data()?;
        let Some(reply_stream) = message.metadata.reply_stream_name.take() else {
            return Err(Error::NoReplyStream {
                type_name: message.type_name,
            });
        };
        let stream = StreamName::parse(reply_stream)?;
        Ok(self
            .store
            .write(&stream, &message, ExpectedVersion::Any)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use ebb_message_store::{MemoryStore, MessageData};
    use serde_json::json;

    use super::*;
    use crate::MessageType;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Added {
        item_id: String,
    }
    impl MessageType for Added {
        const TYPE_NAME: &'static str = "Added";
    }

    fn stream(name: &str) -> StreamName {
        StreamName::parse(name).unwrap()
    }

    #[tokio::test]
    async fn writes_go_to_the_store_with_their_expected_version() {
        let store = MemoryStore::new();
        let writer = Writer::new(store.clone());
        let cart = stream("cart-1");
        writer
            .write_initial(
                &cart,
                Added {
                    item_id: "a".into(),
                },
            )
            .await
            .unwrap();
        writer
            .write(
                &cart,
                Added {
                    item_id: "b".into(),
                },
                ExpectedVersion::Exact(0),
            )
            .await
            .unwrap();
        let last = writer
            .write_batch(
                &cart,
                [
                    Added {
                        item_id: "c".into(),
                    },
                    Added {
                        item_id: "d".into(),
                    },
                ],
                ExpectedVersion::Exact(1),
            )
            .await
            .unwrap();
        assert_eq!(last, Some(3));
        let err = writer
            .write(
                &cart,
                Added {
                    item_id: "e".into(),
                },
                ExpectedVersion::Exact(1),
            )
            .await
            .unwrap_err();
        assert!(err.is_wrong_expected_version(), "{err:?}");

        let writes = store.writes();
        let expected: Vec<_> = writes.iter().map(|w| w.expected_version).collect();
        assert_eq!(
            expected,
            [
                ExpectedVersion::NoStream,
                ExpectedVersion::Exact(0),
                ExpectedVersion::Exact(1)
            ]
        );
        assert_eq!(
            Added::from_message_data(&writes[2].messages[1])
                .unwrap()
                .unwrap(),
            Added {
                item_id: "d".into()
            }
        );
        assert_eq!(writes[0].messages[0].data, json!({ "itemId": "a" }));
    }

    #[tokio::test]
    async fn a_reservation_is_made_once() {
        let store = MemoryStore::new();
        let writer = Writer::new(store.clone());
        let key = stream("cartReservation-abc");
        assert_eq!(
            writer
                .reserve(
                    &key,
                    Added {
                        item_id: "a".into()
                    }
                )
                .await
                .unwrap(),
            Reservation::Made
        );
        assert_eq!(
            writer
                .reserve(
                    &key,
                    Added {
                        item_id: "a".into()
                    }
                )
                .await
                .unwrap(),
            Reservation::AlreadyMade
        );
        assert_eq!(store.stream_messages("cartReservation-abc").len(), 1);
    }

    #[tokio::test]
    async fn a_reply_without_a_reply_stream_is_refused_and_writes_nothing() {
        let store = MemoryStore::new();
        let writer = Writer::new(store.clone());
        let err = writer
            .reply(MessageData::new("Accepted", json!({})))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::NoReplyStream { ref type_name } if type_name == "Accepted"),
            "{err:?}"
        );
        assert!(store.is_empty());
    }
}
