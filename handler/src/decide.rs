//! Eventide's handler pattern in one call: [`EntityStore::handle`]
//! fetches the entity with its version, skips a command it has applied
//! (the sequence guard), asks the handler's decision for the events, and
//! writes them expecting the version, retried on the expected-version
//! conflict.
//!
//! - [`Events`]: what a decision writes: none, one, or several, of any
//!   types.
//! - [`Handled`]: what became of the command.
//! - [`Sequences`]: the commands an entity has applied, a library concept:
//!   each event written by [`EntityStore::handle`] follows its command, so
//!   its metadata names the command's stream and global position, and the
//!   entity store keeps, per command category, the highest global position
//!   applied.
//!
//! [`EntityStore::handle`]: crate::EntityStore::handle

use std::fmt;

use ebb_message_store::{Message, MessageData};

use crate::Error;
use crate::message::{IntoMessageData, MessageType, Outgoing};

/// What a decision writes to the entity's stream: nothing, one event, or
/// several (written together, all or none), each of any type.
///
/// A [`MessageType`] value, an [`Outgoing`] or a [`MessageData`] converts
/// into it, so a decision returns `Ok(Deposited { .. })`; one that returns
/// one of several types says so with `.into()`:
///
/// ```
/// # use ebb_handler::{Events, message};
/// # #[message] struct Withdrawn { amount: i64 }
/// # #[message] struct WithdrawalRejected { amount: i64 }
/// fn decide(balance: i64, amount: i64) -> Events {
///     if balance >= amount {
///         Withdrawn { amount }.into()
///     } else {
///         WithdrawalRejected { amount }.into()
///     }
/// }
/// assert_eq!(decide(10, 5).len(), 1);
/// ```
#[derive(Default)]
pub struct Events(Vec<Pending>);

/// One event, converted to its stored form when it is written.
type Pending = Box<dyn FnOnce() -> Result<MessageData, Error> + Send>;

impl Events {
    /// No event: the command changes nothing (nothing is written).
    pub fn none() -> Self {
        Self::default()
    }

    /// These events and then `more`.
    #[must_use]
    pub fn and(mut self, more: impl Into<Events>) -> Self {
        self.0.extend(more.into().0);
        self
    }

    /// How many events there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The events in their stored form.
    pub(crate) fn into_message_data(self) -> Result<Vec<MessageData>, Error> {
        self.0.into_iter().map(|pending| pending()).collect()
    }

    fn one(event: impl IntoMessageData + Send + 'static) -> Self {
        Self(vec![Box::new(move || event.into_message_data())])
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Events").field(&self.0.len()).finish()
    }
}

impl<T: MessageType> From<T> for Events {
    fn from(event: T) -> Self {
        Self::one(event)
    }
}

impl<T: MessageType> From<Outgoing<T>> for Events {
    fn from(event: Outgoing<T>) -> Self {
        Self::one(event)
    }
}

impl From<MessageData> for Events {
    fn from(event: MessageData) -> Self {
        Self::one(event)
    }
}

impl From<Vec<MessageData>> for Events {
    fn from(events: Vec<MessageData>) -> Self {
        events.into_iter().fold(Self::none(), Events::and)
    }
}

impl<E: Into<Events>> From<Option<E>> for Events {
    fn from(event: Option<E>) -> Self {
        event.map_or_else(Self::none, Into::into)
    }
}

/// What [`EntityStore::handle`](crate::EntityStore::handle) did with a
/// command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Its events were written; the last one is at `position` of the
    /// entity's stream.
    Written {
        /// The stream position of the last event written.
        position: i64,
    },
    /// The entity had applied it already (a re-delivery): nothing was
    /// written.
    AlreadyApplied {
        /// The command's global position.
        sequence: i64,
        /// The highest global position of a command of its category the
        /// entity has applied.
        applied: i64,
    },
    /// The decision wrote no event.
    Nothing,
}

/// The commands an entity has applied: per command category, the highest
/// global position of a command one of its events followed (its metadata's
/// `causationMessageGlobalPosition`, in `causationMessageStreamName`'s
/// category).
///
/// Commands of one entity come in one command stream (which
/// [`EntityStore::handle`](crate::EntityStore::handle) checks), and so in
/// order: a command at or below that position was applied already. Kept
/// per category, so that commands of another category (another consumer,
/// reading at its own pace) never pass for applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sequences(Vec<(String, i64)>);

impl Sequences {
    /// Takes `event` into account: the command it followed, if it names
    /// one.
    pub(crate) fn record(&mut self, event: &Message) {
        let metadata = &event.metadata;
        let (Some(stream), Some(position)) = (
            metadata.causation_message_stream_name.as_deref(),
            metadata.causation_message_global_position,
        ) else {
            return;
        };
        self.raise(ebb_message_store::stream_name::category(stream), position);
    }

    fn raise(&mut self, category: &str, position: i64) {
        match self.0.iter_mut().find(|(known, _)| known == category) {
            Some((_, applied)) => *applied = (*applied).max(position),
            None => self.0.push((category.to_owned(), position)),
        }
    }

    /// The highest global position of a command of `category` applied.
    pub fn applied(&self, category: &str) -> Option<i64> {
        self.0
            .iter()
            .find(|(known, _)| known == category)
            .map(|(_, position)| *position)
    }

    /// True when the command at `global_position` of `stream_name` was
    /// applied already.
    pub fn has_applied(&self, stream_name: &str, global_position: i64) -> bool {
        self.applied(ebb_message_store::stream_name::category(stream_name))
            .is_some_and(|applied| applied >= global_position)
    }

    /// As JSON, for a snapshot: `{"category": position, ...}`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        self.0
            .iter()
            .map(|(category, position)| (category.clone(), serde_json::Value::from(*position)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    /// From a snapshot's JSON; what is not a position is left out.
    pub(crate) fn from_json(json: Option<&serde_json::Value>) -> Self {
        let mut sequences = Self::default();
        if let Some(serde_json::Value::Object(map)) = json {
            for (category, position) in map {
                if let Some(position) = position.as_i64() {
                    sequences.raise(category, position);
                }
            }
        }
        sequences
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Message {
        Message {
            id: uuid::Uuid::new_v4(),
            stream_name: "account-1".into(),
            type_name: "Deposited".into(),
            position: 0,
            global_position: 10,
            data: json!({}).into(),
            metadata: ebb_message_store::Metadata::default(),
            time: chrono::Utc::now(),
        }
    }

    fn followed(stream: &str, global_position: i64) -> Message {
        let mut message = event();
        message.metadata.causation_message_stream_name = Some(stream.into());
        message.metadata.causation_message_global_position = Some(global_position);
        message
    }

    #[test]
    fn sequences_keep_the_highest_per_command_category() {
        let mut sequences = Sequences::default();
        sequences.record(&followed("account:command-1", 7));
        sequences.record(&followed("account:command-1", 5));
        sequences.record(&followed("transfer-9", 20));
        sequences.record(&event());
        assert_eq!(sequences.applied("account:command"), Some(7));
        assert_eq!(sequences.applied("transfer"), Some(20));
        assert!(sequences.has_applied("account:command-1", 7));
        assert!(!sequences.has_applied("account:command-1", 8));
        assert!(!sequences.has_applied("other-1", 1));
        let back = Sequences::from_json(Some(&sequences.to_json()));
        assert_eq!(back, sequences);
        assert_eq!(Sequences::from_json(None), Sequences::default());
    }

    #[test]
    fn events_convert_from_every_kind_of_message() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Noted {
            n: i64,
        }
        impl MessageType for Noted {
            const TYPE_NAME: &'static str = "Noted";
        }
        let events = Events::from(Noted { n: 1 })
            .and(Outgoing::new(Noted { n: 2 }))
            .and(MessageData::new("Other", json!({})))
            .and(None::<Noted>)
            .and(Some(Noted { n: 3 }));
        assert_eq!(events.len(), 4);
        let data = events.into_message_data().unwrap();
        let types: Vec<_> = data.iter().map(|d| d.type_name.as_str()).collect();
        assert_eq!(types, ["Noted", "Noted", "Other", "Noted"]);
        assert_eq!(data[1].data, json!({ "n": 2 }));
        assert!(Events::none().is_empty());
    }
}
