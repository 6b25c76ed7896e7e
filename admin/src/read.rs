//! The messages of a stream or a category, batch by batch: what `ebb
//! read` prints.

use ebb_message_store::stream_name::is_category;
use ebb_message_store::{
    CategoryQuery, ConsumerGroup, Message, MessageStore as _, PgStore, StreamName, StreamQuery,
};

use crate::Error;

/// Reads a stream (`account-123`), or a category (`account`,
/// `account:command`: a name without an id), one batch after the other,
/// from a position on.
#[derive(Debug, Clone)]
pub struct Reader {
    /// The stream's or the category's name.
    name: String,
    /// Where the next batch starts, and the category's filters.
    source: Source,
}

/// What is read: one stream, or a category with its filters.
#[derive(Debug, Clone)]
enum Source {
    Stream(StreamQuery),
    Category(CategoryQuery),
}

impl Reader {
    /// A reader of `name`: a stream, from the stream position `from` (0
    /// without one), or a category (a name without an id), from the
    /// global position `from` (1 without one, or when lower).
    /// [`Error::InvalidInput`] for a name that is no stream's or
    /// category's.
    pub fn new(name: &str, from: Option<i64>) -> Result<Self, Error> {
        let name = StreamName::parse(name)
            .map_err(|err| Error::invalid(err.to_string()))?
            .into_string();
        let source = if is_category(&name) {
            Source::Category(CategoryQuery::new().position(from.unwrap_or(1).max(1)))
        } else {
            Source::Stream(StreamQuery::new().position(from.unwrap_or(0)))
        };
        Ok(Self { name, source })
    }

    /// The name read, as parsed.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a category is read (a name without an id).
    pub fn is_category(&self) -> bool {
        matches!(self.source, Source::Category(_))
    }

    /// Reads only the messages whose metadata correlates them to a stream
    /// of `category` (a category's read only); [`Error::InvalidInput`]
    /// for a stream's read, or a `category` that is not a category.
    pub fn correlation(mut self, category: &str) -> Result<Self, Error> {
        StreamName::category_name(category)
            .map_err(|err| Error::invalid(format!("the correlation takes a category: {err}")))?;
        match &mut self.source {
            Source::Category(query) => {
                query.correlation = Some(category.to_owned());
                Ok(self)
            }
            Source::Stream(_) => Err(self.only_categories("a correlation")),
        }
    }

    /// Reads only the share of the category's streams that `group`'s
    /// member handles (a category's read only); [`Error::InvalidInput`]
    /// for a stream's read, or a member not in `0..size`.
    pub fn consumer_group(mut self, group: ConsumerGroup) -> Result<Self, Error> {
        if group.size < 1 || !(0..group.size).contains(&group.member) {
            return Err(Error::invalid(format!(
                "the member must be from 0 to SIZE - 1, and SIZE at least 1 (got {}/{})",
                group.member, group.size
            )));
        }
        match &mut self.source {
            Source::Category(query) => {
                query.consumer_group = Some(group);
                Ok(self)
            }
            Source::Stream(_) => Err(self.only_categories("a consumer group")),
        }
    }

    /// A filter of `what` refused for a stream.
    fn only_categories(&self, what: &str) -> Error {
        Error::invalid(format!(
            "{what} filters a category, and {} is a stream (a category's name has no id)",
            self.name
        ))
    }

    /// Reads the next `batch_size` messages (at most) and moves past them.
    pub async fn next_batch(
        &mut self,
        store: &PgStore,
        batch_size: i64,
    ) -> Result<Vec<Message>, Error> {
        let name = &self.name;
        let failed = |source| Error::Store {
            action: format!("cannot read {name}"),
            source,
        };
        match &mut self.source {
            Source::Stream(query) => {
                query.batch_size = batch_size;
                let batch = store
                    .get_stream_messages(name, query)
                    .await
                    .map_err(failed)?;
                if let Some(last) = batch.last() {
                    query.position = last.position + 1;
                }
                Ok(batch)
            }
            Source::Category(query) => {
                query.batch_size = batch_size;
                let batch = store
                    .get_category_messages(name, query)
                    .await
                    .map_err(failed)?;
                if let Some(last) = batch.last() {
                    query.position = last.global_position + 1;
                }
                Ok(batch)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_without_an_id_are_read_as_categories() {
        let stream = Reader::new("account-1", None).unwrap();
        assert!(!stream.is_category());
        assert_eq!(stream.name(), "account-1");
        let category = Reader::new("account:command", Some(-5)).unwrap();
        assert!(category.is_category());
        let Source::Category(query) = &category.source else {
            unreachable!()
        };
        assert_eq!(query.position, 1);
        assert!(
            Reader::new("account-", None)
                .unwrap_err()
                .is_invalid_input()
        );
    }

    #[test]
    fn only_a_category_is_filtered() {
        let group = ConsumerGroup { member: 0, size: 2 };
        for err in [
            Reader::new("account-1", None)
                .unwrap()
                .correlation("transfer")
                .unwrap_err(),
            Reader::new("account-1", None)
                .unwrap()
                .consumer_group(group)
                .unwrap_err(),
            Reader::new("account", None)
                .unwrap()
                .correlation("transfer-1")
                .unwrap_err(),
            Reader::new("account", None)
                .unwrap()
                .consumer_group(ConsumerGroup { member: 2, size: 2 })
                .unwrap_err(),
        ] {
            assert!(err.is_invalid_input(), "{err}");
        }
        let filtered = Reader::new("account", None)
            .unwrap()
            .correlation("transfer")
            .and_then(|reader| reader.consumer_group(group))
            .unwrap();
        let Source::Category(query) = &filtered.source else {
            unreachable!()
        };
        assert_eq!(query.correlation.as_deref(), Some("transfer"));
    }
}
