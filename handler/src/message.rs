//! Typed messages: the [`MessageType`] trait, a message as received
//! ([`Received`]), and a message on its way out ([`Outgoing`]).

use std::ops::Deref;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ebb_message_store::{Message, MessageData, Metadata};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::Error;

/// A message type: a plain serde struct and the type name it is stored
/// under.
///
/// Data keys on the wire are camelCase, as Eventide writes them: derive
/// with `#[serde(rename_all = "camelCase")]`.
///
/// ```
/// use ebb_handler::{IntoMessageData, MessageType};
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// pub struct Deposit {
///     pub deposit_id: String,
///     pub account_id: String,
///     pub amount: i64,
/// }
///
/// impl MessageType for Deposit {
///     const TYPE_NAME: &'static str = "Deposit";
/// }
///
/// let data = Deposit { deposit_id: "d1".into(), account_id: "a1".into(), amount: 5 }
///     .into_message_data()?;
/// assert_eq!(data.type_name, "Deposit");
/// assert_eq!(data.data["depositId"], "d1");
/// # Ok::<(), ebb_handler::Error>(())
/// ```
pub trait MessageType: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The type name the message is stored under (`Deposit`), by
    /// convention the struct's name.
    const TYPE_NAME: &'static str;

    /// This message, to be written after `previous`: its causation points
    /// at `previous`, and `previous`'s correlation stream, reply stream and
    /// properties carry over (its local properties do not). See
    /// [`Metadata::follow`].
    fn follow(self, previous: &impl AsRef<Message>) -> Outgoing<Self>
    where
        Self: Sized,
    {
        Outgoing::new(self).follow(previous)
    }

    /// A message of this type following `previous`, as Eventide's
    /// `follow` makes one: its causation metadata names `previous` (see
    /// [`follow`](Self::follow)), and its fields are copied from the
    /// same-named fields of `previous`'s data (by their names on the
    /// wire). A field `previous` lacks must have a default
    /// (`#[serde(default)]`), or it is [`Error::Copy`]; use
    /// [`following_with`](Self::following_with) to set it. To copy
    /// nothing, build the message and call [`follow`](Self::follow).
    ///
    /// ```
    /// # use ebb_handler::{MessageType, Received, message, testing};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ebb_handler::Error> {
    /// #[message] struct PlaceOrder { order_id: String, amount: i64, note: String }
    /// #[message] struct OrderPlaced { order_id: String, amount: i64 }
    ///
    /// # let store = ebb_message_store::MemoryStore::new();
    /// let place: Received<PlaceOrder> = testing::send(&store, "order:command-1",
    ///     PlaceOrder { order_id: "1".into(), amount: 5, note: "fragile".into() }).await?;
    /// let placed = OrderPlaced::following(&place)?;
    /// assert_eq!((placed.body.order_id.as_str(), placed.body.amount), ("1", 5));
    /// assert_eq!(placed.metadata.causation_message_global_position, Some(place.global_position()));
    /// # Ok(()) }
    /// ```
    fn following(previous: &impl AsRef<Message>) -> Result<Outgoing<Self>, Error>
    where
        Self: Sized,
    {
        Self::following_with(previous, serde_json::Map::new())
    }

    /// [`following`](Self::following), with `fields` (wire names, JSON
    /// values) set over the copied ones: for fields `previous` lacks, or
    /// that differ.
    fn following_with(
        previous: &impl AsRef<Message>,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Outgoing<Self>, Error>
    where
        Self: Sized,
    {
        let previous = previous.as_ref();
        let copy_error = |source| Error::Copy {
            type_name: Self::TYPE_NAME,
            from: previous.type_name.clone(),
            source,
        };
        let mut data: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(previous.data.as_str()).unwrap_or_default();
        data.extend(fields);
        let body = Self::deserialize(&serde_json::Value::Object(data)).map_err(copy_error)?;
        let mut outgoing = Outgoing::new(body);
        outgoing.metadata.follow(previous);
        Ok(outgoing)
    }

    /// The message in `data`, if it is of this type; for asserting what a
    /// handler wrote (see [`MemoryStore::writes`]).
    ///
    /// [`MemoryStore::writes`]: ebb_message_store::MemoryStore::writes
    fn from_message_data(data: &MessageData) -> Option<Result<Self, serde_json::Error>>
    where
        Self: Sized,
    {
        (data.type_name == Self::TYPE_NAME).then(|| Self::deserialize(&data.data))
    }
}

/// A message of type `T` as it was read: its data, decoded, and the stored
/// message it came from (stream, positions, metadata, time).
///
/// Derefs to `T`, so `deposit.amount` reads the data; the message's
/// global position, what the sequence idempotence pattern compares, is
/// [`global_position`](Self::global_position).
#[derive(Debug, Clone, PartialEq)]
pub struct Received<T> {
    /// The decoded data.
    data: T,
    /// The stored message, kept whole for `follow` and for the handler's
    /// questions about it; shared, so that a message given to several
    /// handlers is not copied for each.
    message: Arc<Message>,
}

impl<T: MessageType> Received<T> {
    /// Decodes `message`. Its type is not checked (a dispatcher has done
    /// that); its data must be a JSON object that fits `T`, or the error is
    /// [`ebb_message_store::Error::Deserialize`], naming the stream, the
    /// position, the type and serde's cause. (serde would otherwise read a
    /// JSON array as a struct, field by field, so that `["d1", "1", 500]`
    /// written by another program would pass for a `Deposit`.)
    ///
    /// Takes a [`Message`] or an `Arc<Message>` (which is not copied).
    pub fn decode(message: impl Into<Arc<Message>>) -> Result<Self, Error> {
        let message = message.into();
        let text = message.data.as_str().trim_start();
        if !text.starts_with('{') {
            let kind = match text.chars().next() {
                Some('[') => "an array",
                Some('"') => "a string",
                Some('n') => "null",
                Some('t' | 'f') => "a boolean",
                _ => "a number",
            };
            return Err(ebb_message_store::Error::Deserialize {
                stream_name: message.stream_name.clone(),
                position: message.position,
                global_position: message.global_position,
                type_name: message.type_name.clone(),
                source: <serde_json::Error as serde::de::Error>::custom(format!(
                    "message data must be a JSON object, not {kind}"
                )),
            }
            .into());
        }
        Ok(Self {
            data: message.data()?,
            message,
        })
    }
}

impl<T> Received<T> {
    /// The decoded data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The decoded data, taken out.
    pub fn into_data(self) -> T {
        self.data
    }

    /// The stored message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The message's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.message.metadata
    }

    /// The stream the message is in.
    pub fn stream_name(&self) -> &str {
        &self.message.stream_name
    }

    /// The message's id.
    pub fn id(&self) -> Uuid {
        self.message.id
    }

    /// Its position in its stream.
    pub fn position(&self) -> i64 {
        self.message.position
    }

    /// Its position in the whole store: the sequence number the
    /// idempotence pattern records and compares.
    pub fn global_position(&self) -> i64 {
        self.message.global_position
    }

    /// When it was written.
    pub fn time(&self) -> DateTime<Utc> {
        self.message.time
    }
}

impl<T> Deref for Received<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T> AsRef<Message> for Received<T> {
    fn as_ref(&self) -> &Message {
        &self.message
    }
}

/// A typed message on its way to the store: its body, the id it will be
/// written with, and its metadata.
///
/// The id is fixed when this is made, so that writing it again after an
/// unclear failure cannot store it twice (see
/// [`ebb_message_store::MessageData`]).
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Outgoing<T> {
    /// The message's data.
    pub body: T,
    /// The id it is written with.
    pub id: Uuid,
    /// Causation, correlation, reply stream and properties.
    pub metadata: Metadata,
}

impl<T: MessageType> Outgoing<T> {
    /// `body` with a new id and no metadata.
    pub fn new(body: T) -> Self {
        Self {
            body,
            id: Uuid::new_v4(),
            metadata: Metadata::default(),
        }
    }

    /// Sets the causation fields to `previous` and carries over its
    /// correlation and reply stream names and its properties (see
    /// [`Metadata::follow`]).
    pub fn follow(mut self, previous: &impl AsRef<Message>) -> Self {
        self.metadata.follow(previous.as_ref());
        self
    }

    /// Replaces the id.
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }

    /// Replaces the metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// What a [`Writer`](crate::Writer) can write: a [`MessageType`] value
/// (new id, no metadata), an [`Outgoing`], or an untyped
/// [`MessageData`].
pub trait IntoMessageData {
    /// The message as the store writes it.
    fn into_message_data(self) -> Result<MessageData, Error>;
}

impl IntoMessageData for MessageData {
    fn into_message_data(self) -> Result<MessageData, Error> {
        Ok(self)
    }
}

impl<T: MessageType> IntoMessageData for Outgoing<T> {
    fn into_message_data(self) -> Result<MessageData, Error> {
        let data = serde_json::to_value(&self.body).map_err(|source| Error::Serialize {
            type_name: T::TYPE_NAME,
            source,
        })?;
        Ok(MessageData::new(T::TYPE_NAME, data)
            .with_id(self.id)
            .with_metadata(self.metadata))
    }
}

impl<T: MessageType> IntoMessageData for T {
    fn into_message_data(self) -> Result<MessageData, Error> {
        Outgoing::new(self).into_message_data()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Deposit {
        account_id: String,
        amount: i64,
    }

    impl MessageType for Deposit {
        const TYPE_NAME: &'static str = "Deposit";
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Deposited {
        account_id: String,
        amount: i64,
        sequence: i64,
    }

    impl MessageType for Deposited {
        const TYPE_NAME: &'static str = "Deposited";
    }

    fn stored(data: serde_json::Value) -> Message {
        Message {
            id: Uuid::new_v4(),
            stream_name: "account:command-1".into(),
            type_name: "Deposit".into(),
            position: 4,
            global_position: 17,
            data: data.into(),
            metadata: Metadata {
                correlation_stream_name: Some("transfer-9".into()),
                reply_stream_name: Some("client-3".into()),
                local_properties: serde_json::Map::from_iter([("trace".into(), json!(1))]),
                ..Metadata::default()
            },
            time: Utc::now(),
        }
    }

    #[test]
    fn a_received_message_is_its_data_and_knows_where_it_is() {
        let deposit: Received<Deposit> =
            Received::decode(stored(json!({ "accountId": "1", "amount": 5 }))).unwrap();
        assert_eq!(deposit.amount, 5, "derefs to the data");
        assert_eq!(deposit.stream_name(), "account:command-1");
        assert_eq!(deposit.position(), 4);
        assert_eq!(deposit.global_position(), 17);
        assert_eq!(
            deposit.metadata().correlation_stream_name.as_deref(),
            Some("transfer-9")
        );
    }

    #[test]
    fn data_that_does_not_fit_is_a_decode_error_naming_the_message() {
        let err = Received::<Deposit>::decode(stored(json!({ "accountId": "1" }))).unwrap_err();
        assert!(err.is_decode(), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("Deposit message at position 4 of account:command-1"),
            "{text}"
        );
        let cause = std::error::Error::source(&err).expect("serde's error");
        assert!(
            cause.to_string().contains("missing field `amount`"),
            "{cause}"
        );
    }

    #[test]
    fn data_that_is_not_an_object_is_a_decode_error_even_when_serde_would_take_it() {
        // serde reads an array as a struct field by field: this one fits.
        let array = json!(["1", 5]);
        assert!(serde_json::from_value::<Deposit>(array.clone()).is_ok());
        for (data, kind) in [
            (array, "an array"),
            (json!("x"), "a string"),
            (json!(42), "a number"),
            (json!(null), "null"),
        ] {
            let err = Received::<Deposit>::decode(stored(data)).unwrap_err();
            assert!(err.is_decode(), "{err:?}");
            let cause = std::error::Error::source(&err).expect("the cause");
            assert_eq!(
                cause.to_string(),
                format!("message data must be a JSON object, not {kind}")
            );
        }
    }

    #[test]
    fn follow_carries_causation_correlation_reply_and_properties() {
        let deposit: Received<Deposit> =
            Received::decode(stored(json!({ "accountId": "1", "amount": 5 }))).unwrap();
        let data = Deposited {
            account_id: "1".into(),
            amount: 5,
            sequence: deposit.global_position(),
        }
        .follow(&deposit)
        .into_message_data()
        .unwrap();
        assert_eq!(data.type_name, "Deposited");
        assert_eq!(
            data.data,
            json!({ "accountId": "1", "amount": 5, "sequence": 17 })
        );
        let metadata = &data.metadata;
        assert_eq!(
            metadata.causation_message_stream_name.as_deref(),
            Some("account:command-1")
        );
        assert_eq!(metadata.causation_message_position, Some(4));
        assert_eq!(metadata.causation_message_global_position, Some(17));
        assert_eq!(
            metadata.correlation_stream_name.as_deref(),
            Some("transfer-9")
        );
        assert_eq!(metadata.reply_stream_name.as_deref(), Some("client-3"));
        assert!(metadata.local_properties.is_empty());
    }

    #[test]
    fn an_outgoing_message_keeps_its_id() {
        let outgoing = Outgoing::new(Deposit {
            account_id: "1".into(),
            amount: 1,
        });
        let id = outgoing.id;
        assert_eq!(outgoing.into_message_data().unwrap().id, id);
        let written = Deposit {
            account_id: "1".into(),
            amount: 1,
        }
        .into_message_data()
        .unwrap();
        assert_eq!(
            Deposit::from_message_data(&written).unwrap().unwrap(),
            Deposit {
                account_id: "1".into(),
                amount: 1
            }
        );
        assert!(Deposited::from_message_data(&written).is_none());
    }

    #[test]
    fn a_body_that_does_not_serialize_is_a_typed_error() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Keyed {
            by_pair: std::collections::BTreeMap<(i32, i32), i32>,
        }
        impl MessageType for Keyed {
            const TYPE_NAME: &'static str = "Keyed";
        }
        let err = Keyed {
            by_pair: [((1, 2), 3)].into(),
        }
        .into_message_data()
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Serialize {
                    type_name: "Keyed",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
