//! Stream names: `category[:type1+type2][-id1+id2]`.
//!
//! A stream name is a category, optionally followed by category types after
//! a `:` (`account:command`, `account:position`), optionally followed by an
//! id after the first `-`. The id may be compound: its parts are joined by
//! `+` and the first one is the *cardinal id*, which consumer groups
//! partition by. Ids may themselves contain `-` (UUIDs do): only the first
//! `-` separates the category from the id.
//!
//! The free functions ([`category`], [`id`], [`cardinal_id`],
//! [`is_category`]) take any `&str` and agree exactly with the SQL functions
//! of the same names, so that what ebb computes in Rust is what the store
//! computes in PostgreSQL. [`StreamName`] is the validated form every write
//! takes.
//!
//! ```
//! use ebb_message_store::StreamName;
//!
//! let name = StreamName::new("account", "123")?;
//! assert_eq!(name.as_str(), "account-123");
//! assert_eq!(name.category(), "account");
//! assert_eq!(name.id(), Some("123"));
//!
//! let position = StreamName::builder("account").category_type("position").id("worker1").build()?;
//! assert_eq!(position.as_str(), "account:position-worker1");
//! assert_eq!(position.entity_name(), "account");
//! assert_eq!(position.category_types().collect::<Vec<_>>(), ["position"]);
//! # Ok::<(), ebb_message_store::InvalidStreamName>(())
//! ```

use std::fmt;
use std::str::FromStr;

/// Separates the category from the id (the first occurrence only).
pub const ID_SEPARATOR: char = '-';
/// Separates the parts of a compound id, and the types of a category.
pub const COMPOUND_SEPARATOR: char = '+';
/// Separates the entity name from the category types.
pub const CATEGORY_TYPE_SEPARATOR: char = ':';

/// The longest stream name ebb writes, in bytes.
///
/// PostgreSQL refuses b-tree index entries above roughly 2.7 kB, and the
/// `messages_stream` index holds the whole name; refusing long names here
/// gives a clear error instead of a failed insert deep in the server.
pub const MAX_STREAM_NAME_LEN: usize = 2000;

/// The category of a stream name: everything before the first `-`.
///
/// Agrees with the SQL function `message_store.category`.
///
/// ```
/// assert_eq!(ebb_message_store::stream_name::category("account-1+2"), "account");
/// assert_eq!(ebb_message_store::stream_name::category("account:command"), "account:command");
/// ```
pub fn category(stream_name: &str) -> &str {
    match stream_name.split_once(ID_SEPARATOR) {
        Some((category, _)) => category,
        None => stream_name,
    }
}

/// The id of a stream name: everything after the first `-`, `None` if the
/// name has none.
///
/// Agrees with the SQL function `message_store.id`.
///
/// ```
/// use ebb_message_store::stream_name::id;
/// assert_eq!(id("account-6b0c9e5e-1b1e-4c5e-9d7e-1f1a2b3c4d5e"), Some("6b0c9e5e-1b1e-4c5e-9d7e-1f1a2b3c4d5e"));
/// assert_eq!(id("account"), None);
/// ```
pub fn id(stream_name: &str) -> Option<&str> {
    stream_name.split_once(ID_SEPARATOR).map(|(_, id)| id)
}

/// The cardinal id: the first part of a compound id, `None` without an id.
///
/// Agrees with the SQL function `message_store.cardinal_id`.
///
/// ```
/// use ebb_message_store::stream_name::cardinal_id;
/// assert_eq!(cardinal_id("account-123+abc"), Some("123"));
/// assert_eq!(cardinal_id("account-123"), Some("123"));
/// assert_eq!(cardinal_id("account"), None);
/// ```
pub fn cardinal_id(stream_name: &str) -> Option<&str> {
    id(stream_name).map(|id| id.split(COMPOUND_SEPARATOR).next().unwrap_or(id))
}

/// True when the name has no id, that is when it names a category.
///
/// Agrees with the SQL function `message_store.is_category`.
///
/// ```
/// use ebb_message_store::stream_name::is_category;
/// assert!(is_category("account"));
/// assert!(is_category("account:command"));
/// assert!(!is_category("account-1"));
/// ```
pub fn is_category(stream_name: &str) -> bool {
    !stream_name.contains(ID_SEPARATOR)
}

/// The first 64 bits of the MD5 digest of `value`, as a signed integer.
///
/// Agrees bit for bit with the SQL function `message_store.hash_64`, which
/// consumer groups use to assign streams (by cardinal id) to members and
/// writers use to pick the category lock.
///
/// ```
/// assert_eq!(ebb_message_store::hash_64("abc"), -8070080442485551184);
/// ```
pub fn hash_64(value: &str) -> i64 {
    use md5::{Digest, Md5};
    let digest = Md5::digest(value.as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// A validated stream name.
///
/// Every part is non-empty: no empty category, category type or id part.
/// Construct it with [`StreamName::new`], [`StreamName::category_name`],
/// [`StreamName::builder`] or by parsing (`"account-1".parse()`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName {
    /// The name as stored; all accessors slice it, so it is the only field.
    name: String,
}

impl StreamName {
    /// The stream of one entity: `category-id`.
    ///
    /// ```
    /// # use ebb_message_store::StreamName;
    /// assert_eq!(StreamName::new("account", "123")?.as_str(), "account-123");
    /// assert!(StreamName::new("account", "").is_err());
    /// # Ok::<(), ebb_message_store::InvalidStreamName>(())
    /// ```
    pub fn new(category: &str, id: &str) -> Result<Self, InvalidStreamName> {
        Self::parse(format!("{category}{ID_SEPARATOR}{id}"))
    }

    /// A category name (no id), as read by category readers and consumers.
    ///
    /// ```
    /// # use ebb_message_store::StreamName;
    /// let name = StreamName::category_name("account:command")?;
    /// assert!(name.is_category());
    /// assert!(StreamName::category_name("account-1").is_err());
    /// # Ok::<(), ebb_message_store::InvalidStreamName>(())
    /// ```
    pub fn category_name(category: &str) -> Result<Self, InvalidStreamName> {
        let name = Self::parse(category)?;
        if name.is_category() {
            Ok(name)
        } else {
            Err(InvalidStreamName::new(category, Reason::NotACategory))
        }
    }

    /// Starts building a name from its entity name (the category without
    /// types).
    ///
    /// ```
    /// # use ebb_message_store::StreamName;
    /// let name = StreamName::builder("account")
    ///     .category_type("command")
    ///     .ids(["123", "abc"])
    ///     .build()?;
    /// assert_eq!(name.as_str(), "account:command-123+abc");
    /// assert_eq!(name.cardinal_id(), Some("123"));
    /// # Ok::<(), ebb_message_store::InvalidStreamName>(())
    /// ```
    pub fn builder(entity_name: impl Into<String>) -> StreamNameBuilder {
        StreamNameBuilder {
            entity_name: entity_name.into(),
            types: Vec::new(),
            ids: Vec::new(),
        }
    }

    /// Validates a complete stream name.
    ///
    /// ```
    /// # use ebb_message_store::StreamName;
    /// let name = StreamName::parse("account:position-worker1")?;
    /// assert_eq!(name.category(), "account:position");
    /// assert!(StreamName::parse("-123").is_err());
    /// assert!(StreamName::parse("account-1++2").is_err());
    /// # Ok::<(), ebb_message_store::InvalidStreamName>(())
    /// ```
    pub fn parse(name: impl Into<String>) -> Result<Self, InvalidStreamName> {
        let name = name.into();
        match validate(&name) {
            Ok(()) => Ok(Self { name }),
            Err(reason) => Err(InvalidStreamName { name, reason }),
        }
    }

    /// The whole name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Consumes the name, returning the string.
    pub fn into_string(self) -> String {
        self.name
    }

    /// The category, with its types: `account:command` of
    /// `account:command-123`.
    pub fn category(&self) -> &str {
        category(&self.name)
    }

    /// The category without its types: `account` of `account:command-123`.
    pub fn entity_name(&self) -> &str {
        let category = self.category();
        category
            .split_once(CATEGORY_TYPE_SEPARATOR)
            .map_or(category, |(entity, _)| entity)
    }

    /// The category types, in order: `["command"]` of `account:command-1`.
    pub fn category_types(&self) -> impl Iterator<Item = &str> + '_ {
        self.category()
            .split_once(CATEGORY_TYPE_SEPARATOR)
            .map(|(_, types)| types.split(COMPOUND_SEPARATOR))
            .into_iter()
            .flatten()
    }

    /// True when the category has the given type.
    pub fn has_category_type(&self, category_type: &str) -> bool {
        self.category_types().any(|t| t == category_type)
    }

    /// The id (the whole compound id), `None` for a category.
    pub fn id(&self) -> Option<&str> {
        id(&self.name)
    }

    /// The parts of the id, in order; empty for a category.
    pub fn ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.id()
            .map(|id| id.split(COMPOUND_SEPARATOR))
            .into_iter()
            .flatten()
    }

    /// The first part of the id, `None` for a category.
    pub fn cardinal_id(&self) -> Option<&str> {
        cardinal_id(&self.name)
    }

    /// True when the name has no id.
    pub fn is_category(&self) -> bool {
        is_category(&self.name)
    }
}

/// Builds a [`StreamName`] from its parts; [`build`](Self::build) validates.
#[derive(Debug, Clone)]
#[must_use]
pub struct StreamNameBuilder {
    /// The category without types, e.g. `account`.
    entity_name: String,
    /// Category types, joined with `+` after a `:`.
    types: Vec<String>,
    /// Id parts, joined with `+` after a `-`; none makes a category name.
    ids: Vec<String>,
}

impl StreamNameBuilder {
    /// Adds a category type (`command`, `position`, `snapshot`, ...).
    pub fn category_type(mut self, category_type: impl Into<String>) -> Self {
        self.types.push(category_type.into());
        self
    }

    /// Adds one id part; call again for a compound id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.ids.push(id.into());
        self
    }

    /// Adds several id parts, the cardinal id first.
    pub fn ids<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ids.extend(ids.into_iter().map(Into::into));
        self
    }

    /// Validates the parts and joins them.
    pub fn build(self) -> Result<StreamName, InvalidStreamName> {
        let mut name = self.entity_name;
        let reason = if name.contains([ID_SEPARATOR, CATEGORY_TYPE_SEPARATOR, COMPOUND_SEPARATOR]) {
            Some(Reason::InvalidEntityName)
        } else if self
            .types
            .iter()
            .any(|t| t.contains([ID_SEPARATOR, CATEGORY_TYPE_SEPARATOR, COMPOUND_SEPARATOR]))
        {
            Some(Reason::InvalidCategoryType)
        } else if self.ids.iter().any(|id| id.contains(COMPOUND_SEPARATOR)) {
            Some(Reason::InvalidIdPart)
        } else {
            None
        };
        if !self.types.is_empty() {
            name.push(CATEGORY_TYPE_SEPARATOR);
            name.push_str(&self.types.join("+"));
        }
        if !self.ids.is_empty() {
            name.push(ID_SEPARATOR);
            name.push_str(&self.ids.join("+"));
        }
        match reason {
            Some(reason) => Err(InvalidStreamName { name, reason }),
            None => StreamName::parse(name),
        }
    }
}

fn validate(name: &str) -> Result<(), Reason> {
    if name.is_empty() {
        return Err(Reason::Empty);
    }
    if name.len() > MAX_STREAM_NAME_LEN {
        return Err(Reason::TooLong { len: name.len() });
    }
    if name.contains('\0') {
        return Err(Reason::ContainsNul);
    }
    let category = category(name);
    let (entity, types) = match category.split_once(CATEGORY_TYPE_SEPARATOR) {
        Some((entity, types)) => (entity, Some(types)),
        None => (category, None),
    };
    if entity.is_empty() {
        return Err(Reason::EmptyCategory);
    }
    if let Some(types) = types {
        let mut types = types.split(COMPOUND_SEPARATOR);
        if types.clone().any(str::is_empty) {
            return Err(Reason::EmptyCategoryType);
        }
        if types.any(|t| t.contains(CATEGORY_TYPE_SEPARATOR)) {
            return Err(Reason::InvalidCategoryType);
        }
    }
    if let Some(id) = id(name) {
        if id.split(COMPOUND_SEPARATOR).any(str::is_empty) {
            return Err(Reason::EmptyId);
        }
    }
    Ok(())
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.name, f)
    }
}

impl AsRef<str> for StreamName {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl FromStr for StreamName {
    type Err = InvalidStreamName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for StreamName {
    type Error = InvalidStreamName;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl TryFrom<String> for StreamName {
    type Error = InvalidStreamName;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<StreamName> for String {
    fn from(value: StreamName) -> Self {
        value.name
    }
}

impl PartialEq<str> for StreamName {
    fn eq(&self, other: &str) -> bool {
        self.name == other
    }
}

impl PartialEq<&str> for StreamName {
    fn eq(&self, other: &&str) -> bool {
        self.name == *other
    }
}

/// A stream name that could not be accepted, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream name {name:?}: {reason}")]
pub struct InvalidStreamName {
    /// The rejected name (as far as it was assembled).
    name: String,
    /// What is wrong with it.
    reason: Reason,
}

impl InvalidStreamName {
    fn new(name: &str, reason: Reason) -> Self {
        Self {
            name: name.to_owned(),
            reason,
        }
    }

    /// The rejected name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &Reason {
        &self.reason
    }
}

/// Why a stream name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// The name is empty.
    #[error("the name is empty")]
    Empty,
    /// The name is longer than [`MAX_STREAM_NAME_LEN`] bytes.
    #[error("the name is {len} bytes long, more than the {max} allowed", max = MAX_STREAM_NAME_LEN)]
    TooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// PostgreSQL text cannot hold a NUL character.
    #[error("the name contains a NUL character")]
    ContainsNul,
    /// Nothing before the `-` or `:`.
    #[error("the category is empty")]
    EmptyCategory,
    /// An empty category type (`account:` or `account:a++b`).
    #[error("a category type is empty")]
    EmptyCategoryType,
    /// An empty id or id part (`account-`, `account-1++2`).
    #[error("the id or a part of it is empty")]
    EmptyId,
    /// A category was required but the name has an id.
    #[error("a category was expected, but the name has an id")]
    NotACategory,
    /// The builder's entity name contains `-`, `:` or `+`.
    #[error("the entity name contains '-', ':' or '+'")]
    InvalidEntityName,
    /// A category type contains `:` (`account:a:b`), or a builder's
    /// category type contains `-`, `:` or `+`.
    #[error("a category type contains '-', ':' or '+'")]
    InvalidCategoryType,
    /// A builder's id part contains `+`.
    #[error("an id part contains '+'")]
    InvalidIdPart,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parts_of_a_plain_entity_stream() {
        let name = StreamName::parse("account-123").unwrap();
        assert_eq!(name.category(), "account");
        assert_eq!(name.entity_name(), "account");
        assert_eq!(name.id(), Some("123"));
        assert_eq!(name.cardinal_id(), Some("123"));
        assert_eq!(name.ids().collect::<Vec<_>>(), ["123"]);
        assert_eq!(name.category_types().count(), 0);
        assert!(!name.is_category());
    }

    #[test]
    fn ids_may_contain_dashes() {
        let name = StreamName::parse("account-0b8c8a8e-4f6e-4e5e-8a2f-1d3c4b5a6978").unwrap();
        assert_eq!(name.category(), "account");
        assert_eq!(name.id(), Some("0b8c8a8e-4f6e-4e5e-8a2f-1d3c4b5a6978"));
    }

    #[test]
    fn compound_ids_and_category_types() {
        let name = StreamName::parse("account:command+position-123+abc").unwrap();
        assert_eq!(name.category(), "account:command+position");
        assert_eq!(name.entity_name(), "account");
        assert_eq!(
            name.category_types().collect::<Vec<_>>(),
            ["command", "position"]
        );
        assert!(name.has_category_type("position"));
        assert!(!name.has_category_type("snapshot"));
        assert_eq!(name.ids().collect::<Vec<_>>(), ["123", "abc"]);
        assert_eq!(name.cardinal_id(), Some("123"));
    }

    #[test]
    fn category_names() {
        let name = StreamName::parse("account:position").unwrap();
        assert!(name.is_category());
        assert_eq!(name.id(), None);
        assert_eq!(name.cardinal_id(), None);
        assert_eq!(name.ids().count(), 0);
    }

    #[test]
    fn invalid_names_say_why() {
        let cases = [
            ("", Reason::Empty),
            ("-1", Reason::EmptyCategory),
            (":command-1", Reason::EmptyCategory),
            ("account:-1", Reason::EmptyCategoryType),
            ("account:a++b-1", Reason::EmptyCategoryType),
            ("account:a:b-1", Reason::InvalidCategoryType),
            ("account:a:b+-1", Reason::EmptyCategoryType),
            ("account-", Reason::EmptyId),
            ("account-1+", Reason::EmptyId),
            ("account-+1", Reason::EmptyId),
            ("acc\0ount-1", Reason::ContainsNul),
        ];
        for (name, reason) in cases {
            let err = StreamName::parse(name).unwrap_err();
            assert_eq!(err.reason(), &reason, "{name:?}");
            assert_eq!(err.name(), name);
        }
        let long = format!("account-{}", "x".repeat(MAX_STREAM_NAME_LEN));
        assert!(matches!(
            StreamName::parse(long).unwrap_err().reason(),
            Reason::TooLong { .. }
        ));
    }

    #[test]
    fn error_message_names_the_input() {
        let err = StreamName::parse("account-").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid stream name "account-": the id or a part of it is empty"#
        );
    }

    #[test]
    fn builder_rejects_separators_inside_parts() {
        assert_eq!(
            StreamName::builder("acc-ount")
                .id("1")
                .build()
                .unwrap_err()
                .reason(),
            &Reason::InvalidEntityName
        );
        assert_eq!(
            StreamName::builder("account")
                .category_type("a:b")
                .build()
                .unwrap_err()
                .reason(),
            &Reason::InvalidCategoryType
        );
        assert_eq!(
            StreamName::builder("account")
                .id("1+2")
                .build()
                .unwrap_err()
                .reason(),
            &Reason::InvalidIdPart
        );
        assert_eq!(
            StreamName::builder("account")
                .id("")
                .build()
                .unwrap_err()
                .reason(),
            &Reason::EmptyId
        );
    }

    #[test]
    fn category_name_refuses_an_id() {
        assert_eq!(
            StreamName::category_name("account-1").unwrap_err().reason(),
            &Reason::NotACategory
        );
    }

    fn part() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_.]{1,12}"
    }

    fn id_part() -> impl Strategy<Value = String> {
        // Ids may contain '-', as UUIDs do.
        "[a-zA-Z0-9_.-]{0,6}[a-zA-Z0-9]"
    }

    /// `name` taken apart character by character, independently of how
    /// `validate` splits it: (entity, category types, id parts), or why
    /// `validate` should refuse it, checking in the order it does.
    fn take_apart(name: &str) -> Result<(String, Vec<String>, Vec<String>), Reason> {
        if name.is_empty() {
            return Err(Reason::Empty);
        }
        if name.len() > MAX_STREAM_NAME_LEN {
            return Err(Reason::TooLong { len: name.len() });
        }
        if name.contains('\0') {
            return Err(Reason::ContainsNul);
        }
        let mut entity = String::new();
        let mut types: Option<Vec<String>> = None;
        let mut ids: Option<Vec<String>> = None;
        // Types and ids start as one empty part: '+' starts the next,
        // anything else goes on the last.
        let push = |parts: &mut Vec<String>, c: char| match parts.last_mut() {
            Some(part) if c != '+' => part.push(c),
            _ => parts.push(String::new()),
        };
        for c in name.chars() {
            if let Some(ids) = ids.as_mut() {
                // Past the first '-', another '-' or a ':' is part of the id.
                push(ids, c);
            } else if c == '-' {
                ids = Some(vec![String::new()]);
            } else if let Some(types) = types.as_mut() {
                push(types, c);
            } else if c == ':' {
                types = Some(vec![String::new()]);
            } else {
                entity.push(c);
            }
        }
        let types = types.unwrap_or_default();
        let ids = ids.unwrap_or_default();
        if entity.is_empty() {
            return Err(Reason::EmptyCategory);
        }
        if types.iter().any(String::is_empty) {
            return Err(Reason::EmptyCategoryType);
        }
        if types.iter().any(|t| t.contains(':')) {
            return Err(Reason::InvalidCategoryType);
        }
        if ids.iter().any(String::is_empty) {
            return Err(Reason::EmptyId);
        }
        Ok((entity, types, ids))
    }

    /// The name of these parts, joined as the format says.
    fn join(entity: &str, types: &[String], ids: &[String]) -> String {
        let mut name = entity.to_owned();
        if !types.is_empty() {
            name.push(':');
            name.push_str(&types.join("+"));
        }
        if !ids.is_empty() {
            name.push('-');
            name.push_str(&ids.join("+"));
        }
        name
    }

    #[test]
    fn take_apart_knows_the_format() {
        assert_eq!(
            take_apart("account:command+x-1-2+b:c"),
            Ok((
                "account".to_owned(),
                vec!["command".to_owned(), "x".to_owned()],
                vec!["1-2".to_owned(), "b:c".to_owned()],
            ))
        );
        assert_eq!(take_apart("a:b:c+-1"), Err(Reason::EmptyCategoryType));
        assert_eq!(take_apart(":-"), Err(Reason::EmptyCategory));
        assert_eq!(take_apart("a-\0"), Err(Reason::ContainsNul));
    }

    proptest! {
        #[test]
        fn built_names_parse_back_to_their_parts(
            entity in part(),
            types in prop::collection::vec(part(), 0..3),
            ids in prop::collection::vec(id_part(), 0..4),
        ) {
            let name = types
                .iter()
                .fold(StreamName::builder(entity.clone()), |b, t| b.category_type(t.clone()))
                .ids(ids.clone())
                .build()
                .unwrap();
            let joined = join(&entity, &types, &ids);
            prop_assert_eq!(name.as_str(), joined.as_str());
            let reparsed: StreamName = joined.parse().unwrap();
            prop_assert_eq!(reparsed.entity_name(), entity.as_str());
            prop_assert_eq!(reparsed.category_types().map(str::to_owned).collect::<Vec<_>>(), types);
            prop_assert_eq!(reparsed.ids().map(str::to_owned).collect::<Vec<_>>(), ids.clone());
            prop_assert_eq!(reparsed.cardinal_id(), ids.first().map(String::as_str));
            prop_assert_eq!(reparsed.is_category(), ids.is_empty());
        }
    }

    proptest! {
        // Enough cases that names breaking two rules at once, which tell
        // the order of the checks, come up in most runs.
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn parse_never_panics_and_accepts_only_what_it_can_take_apart(
            // Mostly separators (and NUL), so that every rule is met;
            // and any printable text.
            name in prop_oneof!["[a:+\\-\\x00]{0,10}", "\\PC{0,24}"],
        ) {
            match (StreamName::parse(name.clone()), take_apart(&name)) {
                (Ok(parsed), Ok((entity, types, ids))) => {
                    prop_assert!(!parsed.category().is_empty());
                    prop_assert!(!parsed.entity_name().is_empty());
                    prop_assert!(parsed.category_types().all(|t| !t.is_empty()));
                    prop_assert!(parsed.ids().all(|id| !id.is_empty()));
                    prop_assert_eq!(parsed.entity_name(), entity.as_str());
                    prop_assert_eq!(parsed.category_types().collect::<Vec<_>>(), types.clone());
                    prop_assert_eq!(parsed.ids().collect::<Vec<_>>(), ids.clone());
                    prop_assert_eq!(parsed.as_str(), name.as_str());
                    prop_assert_eq!(join(&entity, &types, &ids), name);
                }
                (Err(err), Err(reason)) => {
                    prop_assert_eq!(err.name(), name.as_str());
                    prop_assert_eq!(err.reason(), &reason);
                }
                (parsed, expected) => {
                    prop_assert!(false, "{:?}: parsed as {:?}, expected {:?}", name, parsed, expected);
                }
            }
        }
    }
}
