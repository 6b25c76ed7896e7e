//! Entities: the [`Entity`] trait, its [`Projection`] (an apply function
//! per event type), and the [`Version`] an entity was fetched at.

use std::collections::HashMap;
use std::fmt;

use ebb_message_store::{ExpectedVersion, Message, StreamName};

use crate::Error;
use crate::message::{MessageType, Received};

/// An entity projected from the events of its stream, `CATEGORY-ID`.
///
/// ```
/// use ebb_handler::{Entity, MessageType, Projection, Received};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct Deposited { amount: i64, sequence: i64 }
/// impl MessageType for Deposited { const TYPE_NAME: &'static str = "Deposited"; }
///
/// #[derive(Debug, Clone, Default, PartialEq)]
/// struct Account { balance: i64, sequence: Option<i64> }
///
/// impl Entity for Account {
///     const CATEGORY: &'static str = "account";
///
///     fn projection() -> Projection<Self> {
///         Projection::new().apply(|account: &mut Account, deposited: Received<Deposited>| {
///             account.balance += deposited.amount;
///             account.sequence = Some(deposited.sequence);
///         })
///     }
/// }
/// ```
pub trait Entity: Default + Clone + Send + Sync + 'static {
    /// The category of the entity's streams (`account` for
    /// `account-123`).
    const CATEGORY: &'static str;

    /// How the entity's events change it: one function per event type.
    /// Events of other types in the stream are passed over. Called once
    /// per [`EntityStore`](crate::EntityStore).
    fn projection() -> Projection<Self>;

    /// The stream of entity `id`: `CATEGORY-id` (`Account::stream_name("123")`).
    fn stream_name(id: &str) -> Result<StreamName, Error> {
        Ok(StreamName::new(Self::CATEGORY, id)?)
    }

    /// The stream of entity `id`'s snapshots: `CATEGORY:snapshot-id` (or
    /// `CATEGORY+snapshot-id` when the category already has types).
    fn snapshot_stream_name(id: &str) -> Result<StreamName, Error> {
        let separator = if Self::CATEGORY.contains(':') {
            '+'
        } else {
            ':'
        };
        Ok(StreamName::parse(format!(
            "{}{separator}snapshot-{id}",
            Self::CATEGORY
        ))?)
    }
}

/// The function that applies one event type. Boxed, because one projection
/// holds functions for many event types.
type Apply<E> = Box<dyn Fn(&mut E, Message) -> Result<(), Error> + Send + Sync>;

/// An apply function per event type, for an entity `E`.
pub struct Projection<E> {
    /// By event type name.
    applies: HashMap<&'static str, Apply<E>>,
}

impl<E> fmt::Debug for Projection<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Projection")
            .field("event_types", &self.applies.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<E> Default for Projection<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> Projection<E> {
    /// A projection that applies nothing yet.
    pub fn new() -> Self {
        Self {
            applies: HashMap::new(),
        }
    }

    /// Applies events of type `T` with `apply`. A second function for the
    /// same type replaces the first.
    #[must_use]
    pub fn apply<T: MessageType>(
        mut self,
        apply: impl Fn(&mut E, Received<T>) + Send + Sync + 'static,
    ) -> Self {
        self.applies.insert(
            T::TYPE_NAME,
            Box::new(move |entity, message| {
                apply(entity, Received::decode(message)?);
                Ok(())
            }),
        );
        self
    }

    /// True when events of `type_name` change the entity.
    pub fn applies(&self, type_name: &str) -> bool {
        self.applies.contains_key(type_name)
    }

    /// Applies `event` to `entity` if its type has a function; an event
    /// that does not decode is an error and leaves the entity as it was
    /// before the event.
    pub fn apply_event(&self, entity: &mut E, event: Message) -> Result<(), Error> {
        match self.applies.get(event.type_name.as_str()) {
            Some(apply) => apply(entity, event),
            None => Ok(()),
        }
    }
}

/// The version an entity was fetched at: the position of the last message
/// in its stream, or no stream at all.
///
/// Passed to [`Writer::write`](crate::Writer::write) as the expected
/// version, it makes the write fail if the stream moved on since the
/// fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// The stream has no messages.
    NoStream,
    /// The stream's last message is at this position.
    At(i64),
}

impl Version {
    /// The last message's position, `None` for no stream.
    pub fn position(self) -> Option<i64> {
        match self {
            Self::NoStream => None,
            Self::At(position) => Some(position),
        }
    }

    /// The position the stream's next message gets.
    pub fn next_position(self) -> i64 {
        self.position().map_or(0, |position| position + 1)
    }
}

impl From<Version> for ExpectedVersion {
    fn from(version: Version) -> Self {
        match version {
            Version::NoStream => ExpectedVersion::NoStream,
            Version::At(position) => ExpectedVersion::Exact(position),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_and_convert() {
        assert!(Version::NoStream < Version::At(0));
        assert!(Version::At(0) < Version::At(1));
        assert_eq!(Version::NoStream.next_position(), 0);
        assert_eq!(Version::At(4).next_position(), 5);
        assert_eq!(
            ExpectedVersion::from(Version::NoStream),
            ExpectedVersion::NoStream
        );
        assert_eq!(
            ExpectedVersion::from(Version::At(3)),
            ExpectedVersion::Exact(3)
        );
    }
}
