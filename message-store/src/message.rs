//! Message data: what is written ([`MessageData`]), what is read back
//! ([`Message`]), their [`Metadata`], and the [`ExpectedVersion`] of a write.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{Error, JsonText};

/// A message to write: id, type, data and metadata.
///
/// The id is generated when the value is made, not when it is written, so a
/// write that is retried after an unclear failure (a lost connection) can
/// never store the message twice: the second attempt fails with
/// [`Error::DuplicateMessageId`] instead.
///
/// ```
/// use ebb_message_store::MessageData;
/// use serde_json::json;
///
/// let deposit = MessageData::new("Deposited", json!({ "accountId": "123", "amount": 10 }));
/// assert_eq!(deposit.type_name, "Deposited");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MessageData {
    /// Unique across the store; a second write of the same id is refused.
    pub id: Uuid,
    /// The message type, in PascalCase by convention (`Deposited`).
    pub type_name: String,
    /// The message's attributes: must be a JSON object, keys in camelCase.
    pub data: Value,
    /// Causation, correlation, reply and properties.
    pub metadata: Metadata,
}

impl MessageData {
    /// A message with a fresh random id and empty metadata.
    pub fn new(type_name: impl Into<String>, data: Value) -> Self {
        Self {
            id: Uuid::new_v4(),
            type_name: type_name.into(),
            data,
            metadata: Metadata::default(),
        }
    }

    /// A message whose data is `data` serialized with serde.
    ///
    /// ```
    /// # use ebb_message_store::MessageData;
    /// #[derive(serde::Serialize)]
    /// #[serde(rename_all = "camelCase")]
    /// struct Deposited { account_id: String, amount: i64 }
    ///
    /// let message = MessageData::serialize("Deposited", &Deposited { account_id: "1".into(), amount: 5 })?;
    /// assert_eq!(message.data["accountId"], "1");
    /// # Ok::<(), ebb_message_store::Error>(())
    /// ```
    pub fn serialize<T: Serialize + ?Sized>(
        type_name: impl Into<String>,
        data: &T,
    ) -> Result<Self, Error> {
        let data = serde_json::to_value(data).map_err(Error::Serialize)?;
        Ok(Self::new(type_name, data))
    }

    /// Replaces the generated id.
    #[must_use]
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }

    /// Replaces the metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Makes this message follow `previous`: the causation fields point at
    /// it, and its correlation, reply stream and properties carry over (its
    /// local properties do not). See [`Metadata::follow`].
    ///
    /// ```
    /// # use ebb_message_store::{Message, MessageData};
    /// # fn example(command: &Message) {
    /// let event = MessageData::new("Deposited", serde_json::json!({})).follow(command);
    /// assert_eq!(event.metadata.causation_message_global_position, Some(command.global_position));
    /// # }
    /// ```
    #[must_use]
    pub fn follow(mut self, previous: &Message) -> Self {
        self.metadata.follow(previous);
        self
    }

    /// Checks what the store cannot check for us: a non-empty type without
    /// surrounding whitespace and an object as data.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.type_name.is_empty() || self.type_name.trim() != self.type_name {
            return Err(Error::InvalidMessage {
                id: self.id,
                reason: format!(
                    "the type {:?} is empty or has surrounding whitespace",
                    self.type_name
                ),
            });
        }
        if self.type_name.contains('\0') {
            return Err(Error::InvalidMessage {
                id: self.id,
                reason: "the type contains a NUL character".into(),
            });
        }
        if !self.data.is_object() {
            return Err(Error::InvalidMessage {
                id: self.id,
                reason: format!("data must be a JSON object, not {}", json_kind(&self.data)),
            });
        }
        Ok(())
    }

    /// The metadata as the store keeps it: `None` (SQL NULL) when empty.
    pub(crate) fn metadata_json(&self) -> Option<Value> {
        if self.metadata.is_empty() {
            None
        } else {
            // Metadata holds only strings, numbers and JSON maps: it always
            // serializes.
            serde_json::to_value(&self.metadata).ok()
        }
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A message read from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The id it was written with.
    pub id: Uuid,
    /// The stream it belongs to.
    pub stream_name: String,
    /// The message type (`Deposited`).
    pub type_name: String,
    /// Its position in its stream, from 0.
    pub position: i64,
    /// Its position in the whole store, from 1; what consumers record and
    /// what the sequence idempotence pattern compares.
    pub global_position: i64,
    /// The data as the store returned it, still text: decode it with
    /// [`data`](Self::data) into the type it is, once. SQL NULL reads as
    /// JSON `null`.
    pub data: JsonText,
    /// The metadata as written (empty when the store holds NULL).
    pub metadata: Metadata,
    /// When it was written (the store keeps UTC without a zone).
    pub time: DateTime<Utc>,
}

impl Message {
    /// Deserializes the data into `T`, straight from the stored text;
    /// [`Error::Deserialize`], naming the stream, the positions and the
    /// type, when it does not fit.
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// #[serde(rename_all = "camelCase")]
    /// struct Deposited { account_id: String, amount: i64 }
    ///
    /// # let message = ebb_message_store::Message {
    /// #     id: uuid::Uuid::new_v4(),
    /// #     stream_name: "account-123".into(),
    /// #     type_name: "Deposited".into(),
    /// #     position: 0,
    /// #     global_position: 1,
    /// #     data: serde_json::json!({ "accountId": "123", "amount": 10 }).into(),
    /// #     metadata: Default::default(),
    /// #     time: chrono::Utc::now(),
    /// # };
    /// let deposited: Deposited = message.data()?;
    /// assert_eq!(deposited.amount, 10);
    /// # Ok::<(), ebb_message_store::Error>(())
    /// ```
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, Error> {
        self.data.decode().map_err(|source| Error::Deserialize {
            stream_name: self.stream_name.clone(),
            position: self.position,
            global_position: self.global_position,
            type_name: self.type_name.clone(),
            source,
        })
    }

    /// The message's category (`account` of `account-123`).
    pub fn category(&self) -> &str {
        crate::stream_name::category(&self.stream_name)
    }

    /// The message's stream id, `None` if its stream is a category.
    pub fn stream_id(&self) -> Option<&str> {
        crate::stream_name::id(&self.stream_name)
    }
}

/// The metadata of a message, with the keys Eventide writes.
///
/// On the wire keys are camelCase and empty values are omitted. Keys this
/// struct does not know are kept in [`other`](Self::other) and written back,
/// so ebb never drops what another client put there.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The stream of the message that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_message_stream_name: Option<String>,
    /// The stream position of the message that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_message_position: Option<i64>,
    /// The global position of the message that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_message_global_position: Option<i64>,
    /// The stream a workflow correlates its messages to; category readers
    /// can filter on its category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_stream_name: Option<String>,
    /// Where a reply to this message goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_stream_name: Option<String>,
    /// Properties that follow the message downstream.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
    /// Properties that stay with this message (not carried by `follow`).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub local_properties: Map<String, Value>,
    /// The version of the data's schema, when the writer declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
    /// Any other keys, kept as they were.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Metadata {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Sets the causation fields to `previous` and carries over its
    /// correlation and reply stream names and its properties. Local
    /// properties are not carried over.
    pub fn follow(&mut self, previous: &Message) {
        self.causation_message_stream_name = Some(previous.stream_name.clone());
        self.causation_message_position = Some(previous.position);
        self.causation_message_global_position = Some(previous.global_position);
        self.correlation_stream_name
            .clone_from(&previous.metadata.correlation_stream_name);
        self.reply_stream_name
            .clone_from(&previous.metadata.reply_stream_name);
        self.properties.clone_from(&previous.metadata.properties);
    }

    /// Parses metadata as the store returns it (text, possibly NULL).
    pub(crate) fn from_json_text(text: Option<&str>) -> Result<Self, serde_json::Error> {
        match text {
            None => Ok(Self::default()),
            Some(text) => serde_json::from_str(text),
        }
    }
}

/// Reading metadata by hand rather than by derive: `#[serde(flatten)]`
/// (how a derive would keep unknown keys) buffers the whole object before
/// reading it again, and metadata is read with every message.
mod wire {
    use std::fmt;

    use serde::Deserialize;
    use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
    use serde_json::{Map, Value};

    use super::Metadata;

    /// A metadata key: one of the struct's fields, or any other.
    enum Key {
        CausationMessageStreamName,
        CausationMessagePosition,
        CausationMessageGlobalPosition,
        CorrelationStreamName,
        ReplyStreamName,
        Properties,
        LocalProperties,
        SchemaVersion,
        Other(String),
    }

    impl Key {
        fn of(key: &str) -> Self {
            match key {
                "causationMessageStreamName" => Self::CausationMessageStreamName,
                "causationMessagePosition" => Self::CausationMessagePosition,
                "causationMessageGlobalPosition" => Self::CausationMessageGlobalPosition,
                "correlationStreamName" => Self::CorrelationStreamName,
                "replyStreamName" => Self::ReplyStreamName,
                "properties" => Self::Properties,
                "localProperties" => Self::LocalProperties,
                "schemaVersion" => Self::SchemaVersion,
                other => Self::Other(other.to_owned()),
            }
        }
    }

    impl<'de> Deserialize<'de> for Key {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct KeyVisitor;
            impl Visitor<'_> for KeyVisitor {
                type Value = Key;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a metadata key")
                }
                fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                    Ok(Key::of(key))
                }
                fn visit_string<E: de::Error>(self, key: String) -> Result<Key, E> {
                    Ok(match Key::of(&key) {
                        Key::Other(_) => Key::Other(key),
                        known => known,
                    })
                }
            }
            deserializer.deserialize_identifier(KeyVisitor)
        }
    }

    impl<'de> Deserialize<'de> for Metadata {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_map(MetadataVisitor)
        }
    }

    struct MetadataVisitor;

    /// Sets a field once; a second occurrence of a key is an error, as
    /// a derive would make it.
    fn once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
        map: &mut A,
        slot: &mut Option<T>,
        seen: &mut bool,
        name: &'static str,
    ) -> Result<(), A::Error> {
        if std::mem::replace(seen, true) {
            return Err(de::Error::duplicate_field(name));
        }
        *slot = map.next_value()?;
        Ok(())
    }

    impl<'de> Visitor<'de> for MetadataVisitor {
        type Value = Metadata;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a metadata object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
            let mut metadata = Metadata::default();
            let mut seen = [false; 8];
            while let Some(key) = map.next_key::<Key>()? {
                match key {
                    Key::CausationMessageStreamName => once(
                        &mut map,
                        &mut metadata.causation_message_stream_name,
                        &mut seen[0],
                        "causationMessageStreamName",
                    )?,
                    Key::CausationMessagePosition => once(
                        &mut map,
                        &mut metadata.causation_message_position,
                        &mut seen[1],
                        "causationMessagePosition",
                    )?,
                    Key::CausationMessageGlobalPosition => once(
                        &mut map,
                        &mut metadata.causation_message_global_position,
                        &mut seen[2],
                        "causationMessageGlobalPosition",
                    )?,
                    Key::CorrelationStreamName => once(
                        &mut map,
                        &mut metadata.correlation_stream_name,
                        &mut seen[3],
                        "correlationStreamName",
                    )?,
                    Key::ReplyStreamName => once(
                        &mut map,
                        &mut metadata.reply_stream_name,
                        &mut seen[4],
                        "replyStreamName",
                    )?,
                    Key::SchemaVersion => once(
                        &mut map,
                        &mut metadata.schema_version,
                        &mut seen[5],
                        "schemaVersion",
                    )?,
                    Key::Properties => {
                        if std::mem::replace(&mut seen[6], true) {
                            return Err(de::Error::duplicate_field("properties"));
                        }
                        metadata.properties = map.next_value_seed(Properties)?;
                    }
                    Key::LocalProperties => {
                        if std::mem::replace(&mut seen[7], true) {
                            return Err(de::Error::duplicate_field("localProperties"));
                        }
                        metadata.local_properties = map.next_value_seed(Properties)?;
                    }
                    Key::Other(key) => {
                        let value: Value = map.next_value()?;
                        metadata.other.insert(key, value);
                    }
                }
            }
            Ok(metadata)
        }
    }

    /// Properties written either as a JSON object (ebb, current Eventide)
    /// or as a list of `{"name": .., "value": ..}` entries (older
    /// Eventide), or null.
    struct Properties;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum PropertiesWire {
        Map(Map<String, Value>),
        List(Vec<Entry>),
        Null,
    }

    #[derive(Deserialize)]
    struct Entry {
        name: String,
        #[serde(default)]
        value: Value,
    }

    impl<'de> DeserializeSeed<'de> for Properties {
        type Value = Map<String, Value>;

        fn deserialize<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            Ok(match PropertiesWire::deserialize(deserializer)? {
                PropertiesWire::Map(map) => map,
                PropertiesWire::List(entries) => {
                    entries.into_iter().map(|e| (e.name, e.value)).collect()
                }
                PropertiesWire::Null => Map::new(),
            })
        }
    }
}

/// What a write expects the stream's version to be.
///
/// The version is the position of the stream's last message; an empty
/// stream has version -1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// No expectation: the write appends whatever the stream holds.
    #[default]
    Any,
    /// The stream must be empty (the write is its first message).
    NoStream,
    /// The stream's last message must be at this position.
    Exact(i64),
}

impl ExpectedVersion {
    /// The value `write_message` takes: NULL, -1 or the position.
    pub fn to_sql(self) -> Option<i64> {
        match self {
            Self::Any => None,
            Self::NoStream => Some(-1),
            Self::Exact(position) => Some(position),
        }
    }

    /// The expectation for a stream whose current version is `version`
    /// (`None` for an empty stream), as read before a write.
    ///
    /// ```
    /// # use ebb_message_store::ExpectedVersion;
    /// assert_eq!(ExpectedVersion::from_version(None), ExpectedVersion::NoStream);
    /// assert_eq!(ExpectedVersion::from_version(Some(4)), ExpectedVersion::Exact(4));
    /// ```
    pub fn from_version(version: Option<i64>) -> Self {
        match version {
            None | Some(-1) => Self::NoStream,
            Some(position) => Self::Exact(position),
        }
    }

    /// The expectation itself, or [`Error::InvalidArgument`] for an exact
    /// version below 0: no message has a negative position (an empty
    /// stream is [`NoStream`](Self::NoStream)). Every write checks it
    /// before sending anything.
    ///
    /// ```
    /// # use ebb_message_store::ExpectedVersion;
    /// assert!(ExpectedVersion::Exact(0).validate().is_ok());
    /// assert!(ExpectedVersion::Exact(-1).validate().is_err());
    /// ```
    pub fn validate(self) -> Result<Self, Error> {
        match self {
            Self::Exact(position) if position < 0 => Err(Error::InvalidArgument(format!(
                "expected version {position} is not a stream position (0 or more); \
                 an empty stream is ExpectedVersion::NoStream"
            ))),
            _ => Ok(self),
        }
    }

    /// True when a stream at `version` (`None` when empty) satisfies this
    /// expectation.
    pub fn matches(self, version: Option<i64>) -> bool {
        match self.to_sql() {
            None => true,
            Some(expected) => expected == version.unwrap_or(-1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(stream_name: &str, metadata: Metadata) -> Message {
        Message {
            id: Uuid::new_v4(),
            stream_name: stream_name.into(),
            type_name: "Deposit".into(),
            position: 3,
            global_position: 42,
            data: json!({}).into(),
            metadata,
            time: Utc::now(),
        }
    }

    /// Metadata with every named field set.
    fn every_field() -> Metadata {
        Metadata {
            causation_message_stream_name: Some("account:command-1".into()),
            causation_message_position: Some(2),
            causation_message_global_position: Some(9),
            correlation_stream_name: Some("transfer-7".into()),
            reply_stream_name: Some("client-1".into()),
            properties: Map::from_iter([("tenant".into(), json!("a"))]),
            local_properties: Map::from_iter([("trace".into(), json!(1))]),
            schema_version: Some("2".into()),
            other: Map::new(),
        }
    }

    #[test]
    fn metadata_wire_keys_are_camel_case_and_empty_values_omitted() {
        let metadata = every_field();
        assert_eq!(
            serde_json::to_value(&metadata).unwrap(),
            json!({
                "causationMessageStreamName": "account:command-1",
                "causationMessagePosition": 2,
                "causationMessageGlobalPosition": 9,
                "correlationStreamName": "transfer-7",
                "replyStreamName": "client-1",
                "properties": { "tenant": "a" },
                "localProperties": { "trace": 1 },
                "schemaVersion": "2",
            })
        );
        assert_eq!(
            serde_json::to_value(Metadata::default()).unwrap(),
            json!({})
        );
    }

    #[test]
    fn unknown_metadata_keys_survive_a_round_trip() {
        let wire = json!({ "correlationStreamName": "x-1", "someClientKey": [1, 2] });
        let metadata: Metadata = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(metadata.correlation_stream_name.as_deref(), Some("x-1"));
        assert_eq!(serde_json::to_value(&metadata).unwrap(), wire);
    }

    #[test]
    fn metadata_text_reads_every_field_nulls_and_unknown_keys() {
        let full = Metadata {
            other: Map::from_iter([("client\u{e9}".into(), json!({ "k": [1] }))]),
            ..every_field()
        };
        let text = serde_json::to_string(&full).unwrap();
        assert_eq!(Metadata::from_json_text(Some(&text)).unwrap(), full);

        // Nulls read as absent; an escaped key is still recognised.
        let text = r#"{"replyStreamName": null, "properties": null,
            "localProperties": [{"name": "t", "value": 3}],
            "correlation\u0053treamName": "x-1", "causationMessagePosition": null}"#;
        let metadata = Metadata::from_json_text(Some(text)).unwrap();
        assert_eq!(
            metadata,
            Metadata {
                correlation_stream_name: Some("x-1".into()),
                local_properties: Map::from_iter([("t".into(), json!(3))]),
                ..Metadata::default()
            }
        );
        assert_eq!(Metadata::from_json_text(None).unwrap(), Metadata::default());
    }

    #[test]
    fn metadata_that_does_not_fit_is_an_error_naming_the_problem() {
        let cases = [
            (
                r#"{"schemaVersion": "1", "schemaVersion": "2"}"#,
                "duplicate field `schemaVersion`",
            ),
            (
                r#"{"causationMessagePosition": "two"}"#,
                "invalid type: string \"two\"",
            ),
            (r#"[1, 2]"#, "expected a metadata object"),
            (r#"{"properties": 7}"#, "did not match any variant"),
        ];
        for (text, expected) in cases {
            let err = Metadata::from_json_text(Some(text))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn properties_written_as_a_list_are_read() {
        let metadata: Metadata = serde_json::from_value(json!({
            "properties": [{ "name": "tenant", "value": "a" }]
        }))
        .unwrap();
        assert_eq!(metadata.properties["tenant"], json!("a"));
    }

    #[test]
    fn follow_sets_causation_and_carries_correlation_reply_and_properties() {
        let previous = read(
            "account:command-1",
            Metadata {
                correlation_stream_name: Some("transfer-7".into()),
                reply_stream_name: Some("client-1".into()),
                properties: Map::from_iter([("tenant".into(), json!("a"))]),
                local_properties: Map::from_iter([("trace".into(), json!(1))]),
                ..Metadata::default()
            },
        );
        let next = MessageData::new("Deposited", json!({})).follow(&previous);
        assert_eq!(
            next.metadata.causation_message_stream_name.as_deref(),
            Some("account:command-1")
        );
        assert_eq!(next.metadata.causation_message_position, Some(3));
        assert_eq!(next.metadata.causation_message_global_position, Some(42));
        assert_eq!(
            next.metadata.correlation_stream_name.as_deref(),
            Some("transfer-7")
        );
        assert_eq!(next.metadata.reply_stream_name.as_deref(), Some("client-1"));
        assert_eq!(next.metadata.properties["tenant"], json!("a"));
        assert!(next.metadata.local_properties.is_empty());
    }

    #[test]
    fn data_deserializes_or_says_which_message_does_not() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Deposited {
            account_id: String,
            amount: i64,
        }
        #[derive(Debug, serde::Deserialize)]
        struct Opened {
            #[allow(dead_code)]
            owner: String,
        }

        let message = Message {
            type_name: "Deposited".into(),
            global_position: 42,
            data: json!({ "accountId": "123", "amount": 10 }).into(),
            ..read("account-123", Metadata::default())
        };
        assert_eq!(
            message.data::<Deposited>().unwrap(),
            Deposited {
                account_id: "123".into(),
                amount: 10
            }
        );

        let err = message.data::<Opened>().unwrap_err();
        let Error::Deserialize {
            stream_name,
            position,
            global_position,
            type_name,
            source,
        } = &err
        else {
            panic!("expected Error::Deserialize, got {err:?}");
        };
        assert_eq!(stream_name, "account-123");
        assert_eq!(*position, 3);
        assert_eq!(*global_position, 42);
        assert_eq!(type_name, "Deposited");
        assert!(
            source.to_string().contains("missing field `owner`"),
            "{source}"
        );
        let cause = std::error::Error::source(&err).expect("a source");
        assert!(
            std::ptr::addr_eq(cause, source),
            "serde's error is the source"
        );
        assert_eq!(
            err.to_string(),
            "Deposited message at position 3 of account-123 (global position 42) does not deserialize",
            "the cause is not printed twice"
        );
    }

    #[test]
    fn data_must_be_an_object() {
        for data in [json!(1), json!("x"), json!([1]), json!(null), json!(true)] {
            let err = MessageData::new("Deposited", data).validate().unwrap_err();
            assert!(matches!(err, Error::InvalidMessage { .. }), "{err}");
            assert!(err.to_string().contains("data must be a JSON object"));
        }
        MessageData::new("Deposited", json!({})).validate().unwrap();
    }

    #[test]
    fn the_type_must_be_present() {
        for type_name in ["", " Deposited", "Deposited\n", "De\0posited"] {
            assert!(
                MessageData::new(type_name, json!({})).validate().is_err(),
                "{type_name:?}"
            );
        }
    }

    #[test]
    fn expected_versions() {
        assert_eq!(ExpectedVersion::Any.to_sql(), None);
        assert_eq!(ExpectedVersion::NoStream.to_sql(), Some(-1));
        assert_eq!(ExpectedVersion::Exact(3).to_sql(), Some(3));
        assert!(ExpectedVersion::Any.matches(Some(7)));
        assert!(ExpectedVersion::NoStream.matches(None));
        assert!(!ExpectedVersion::NoStream.matches(Some(0)));
        assert!(ExpectedVersion::Exact(0).matches(Some(0)));
        assert!(!ExpectedVersion::Exact(0).matches(None));
    }

    #[test]
    fn an_exact_version_below_zero_is_refused() {
        for position in [-1, -2, i64::MIN] {
            let err = ExpectedVersion::Exact(position).validate().unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
            assert!(err.to_string().contains("NoStream"), "{err}");
        }
        for valid in [
            ExpectedVersion::Any,
            ExpectedVersion::NoStream,
            ExpectedVersion::Exact(0),
            ExpectedVersion::Exact(i64::MAX),
        ] {
            assert_eq!(valid.validate().unwrap(), valid);
        }
    }
}
