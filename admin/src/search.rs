//! Streams and categories found by name, with a `*` wildcard
//! (`account-*`, `*-42`), a page at a time: what the dashboard's search
//! shows.
//!
//! The store has no table of streams: a stream is the messages that name
//! it. So its names are read from the `messages_stream` index by a loose
//! scan, one index probe per distinct name (not per message), in the
//! index's order. A pattern that begins with text (`account-*`) is looked
//! for only in the range of the index that holds the names beginning with
//! that text, where the index's collation guarantees one (see
//! `consumer_streams`); a pattern that begins with `*` reads the names
//! from the start. Either way one page probes at most [`SEARCH_PROBES`]
//! names: a rare match on a store of many streams ends the page early,
//! with a cursor to go on from ([`StreamSearch::next`]), rather than
//! reading the whole index at once.

use chrono::{DateTime, NaiveDateTime, Utc};
use ebb_message_store::{PgStore, deadpool_postgres};
use serde::Serialize;

use crate::Error;
use crate::consumer_streams::{self, NameOrder};

/// The most stream names one page of a search probes.
pub const SEARCH_PROBES: i32 = 5_000;

/// One page of a search by name: the categories that match (all of them,
/// on every page) and the page's streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StreamSearch {
    /// The categories whose name matches, in order.
    pub categories: Vec<String>,
    /// The streams of this page that match, in the index's order, at most
    /// the limit asked for.
    pub streams: Vec<FoundStream>,
    /// Where the next page starts (pass it as `after`): the last name this
    /// page read; None when the search has read every name it could
    /// match.
    pub next: Option<String>,
}

/// A stream found by a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FoundStream {
    /// Its name.
    pub stream_name: String,
    /// Its messages (its version + 1).
    pub messages: i64,
    /// When its last message was written.
    #[serde(serialize_with = "crate::time::serialize")]
    pub last_written: DateTime<Utc>,
}

/// The streams and categories whose name matches `pattern`, at most
/// `limit` streams a page, after the stream `after` (a page's
/// [`StreamSearch::next`]; None for the first page).
///
/// In `pattern`, `*` stands for any text (none included) and every other
/// character for itself; a pattern without a `*` finds the names that
/// begin with it (`account` is `account*`), and an empty one every name.
/// Matching is case-sensitive, as stream names are.
pub async fn search_streams(
    store: &PgStore,
    pattern: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<StreamSearch, Error> {
    let pattern = Pattern::new(pattern);
    let client = consumer_streams::client(store).await?;
    let categories: Vec<String> = consumer_streams::categories(&client)
        .await?
        .into_iter()
        .filter(|category| pattern.finds_category(category))
        .collect();
    let order = consumer_streams::stream_index_order(&client).await?;
    let (from, until) = match pattern.range(order) {
        Some((from, until)) => (from, until),
        None => (String::new(), None),
    };
    // A cursor before the range's start would read names the pattern
    // cannot match.
    let from = match after {
        Some(after) if after > from.as_str() || order == NameOrder::Other => after.to_owned(),
        _ => from,
    };
    let want = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    let statement = if until.is_some() {
        SEARCH_IN_RANGE
    } else {
        SEARCH_FROM
    };
    let rows = client
        .query(
            statement,
            &[
                &from,
                &until.clone().unwrap_or_default(),
                &SEARCH_PROBES,
                &pattern.like,
                &want,
            ],
        )
        .await
        .map_err(|source| Error::Statement {
            action: format!("cannot search the stream names for {}", pattern.text),
            source,
        })?;
    let mut names = Vec::new();
    let mut last_probed: Option<String> = None;
    for row in &rows {
        let (name, probe, hit): (String, i32, bool) = (row.get(0), row.get(1), row.get(2));
        last_probed = Some(name.clone());
        // The cursor's own name was on the previous page.
        if hit && after != Some(name.as_str()) {
            names.push(name);
        }
        if probe >= SEARCH_PROBES {
            break;
        }
    }
    let full = names.len() > limit;
    names.truncate(limit);
    let ended_by_budget = rows
        .last()
        .is_some_and(|row| row.get::<_, i32>(1) >= SEARCH_PROBES);
    let next = if full {
        names.last().cloned()
    } else if ended_by_budget {
        last_probed
    } else {
        None
    };
    let streams = describe(&client, &names).await?;
    Ok(StreamSearch {
        categories,
        streams,
        next,
    })
}

/// A loose scan of `messages_stream` from `$1` (inclusive) to `$2`
/// (exclusive), at most `$3` names; the names that match the LIKE
/// pattern `$4`, and the last name probed, each with its probe's number
/// and whether it matched; at most `$5` matches.
macro_rules! search_scan {
    ($until:literal) => {
        concat!(
            "WITH RECURSIVE names(name, probe) AS ( \
              (SELECT stream_name, 1 FROM message_store.messages \
                WHERE stream_name >= $1::text",
            $until,
            " ORDER BY stream_name LIMIT 1) \
              UNION ALL \
              SELECT (SELECT m.stream_name FROM message_store.messages m \
                       WHERE m.stream_name > n.name",
            $until,
            " ORDER BY m.stream_name LIMIT 1), n.probe + 1 \
              FROM names n WHERE n.name IS NOT NULL AND n.probe < $3::int \
            ) \
            SELECT name, probe, name LIKE $4::text FROM names \
            WHERE name IS NOT NULL AND (name LIKE $4::text OR probe >= $3::int) \
            LIMIT $5::bigint"
        )
    };
}

/// [`search_scan`] up to `$2`.
const SEARCH_IN_RANGE: &str = search_scan!(" AND stream_name < $2::text");
/// [`search_scan`] to the end of the index (`$2` unused, but typed).
const SEARCH_FROM: &str = search_scan!(" AND $2::text IS NOT NULL");

/// Each of the streams `$1`: its last message's position and time (one
/// probe of `messages_stream` each).
const DESCRIBE_STREAMS: &str = "\
    SELECT s.name, last.position, last.time \
    FROM unnest($1::text[]) WITH ORDINALITY AS s(name, n) \
    JOIN LATERAL ( \
      SELECT position, time FROM message_store.messages \
      WHERE stream_name = s.name ORDER BY position DESC LIMIT 1 \
    ) AS last ON true \
    ORDER BY s.n";

async fn describe(
    client: &deadpool_postgres::Object,
    names: &[String],
) -> Result<Vec<FoundStream>, Error> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let rows = client
        .query(DESCRIBE_STREAMS, &[&names])
        .await
        .map_err(|source| Error::Statement {
            action: "cannot read the streams found".into(),
            source,
        })?;
    Ok(rows
        .iter()
        .map(|row| {
            let time: NaiveDateTime = row.get(2);
            FoundStream {
                stream_name: row.get(0),
                messages: row.get::<_, i64>(1) + 1,
                last_written: time.and_utc(),
            }
        })
        .collect())
}

/// A search pattern, as text, as a LIKE pattern, and as the text every
/// name it matches begins with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// As given.
    text: String,
    /// The LIKE pattern (`\` escapes).
    like: String,
    /// The text before the first `*`.
    prefix: String,
    /// The parts between the `*`s, for matching names here.
    parts: Vec<String>,
}

impl Pattern {
    fn new(text: &str) -> Self {
        let with_star = if text.contains('*') {
            text.to_owned()
        } else {
            format!("{text}*")
        };
        let parts: Vec<String> = with_star.split('*').map(str::to_owned).collect();
        let like = parts
            .iter()
            .map(|part| {
                part.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            })
            .collect::<Vec<_>>()
            .join("%");
        Self {
            text: text.to_owned(),
            like,
            prefix: parts[0].clone(),
            parts,
        }
    }

    /// Whether `name` matches, as LIKE would match it.
    fn matches(&self, name: &str) -> bool {
        let last = self.parts.len() - 1;
        let Some(mut rest) = name.strip_prefix(self.parts[0].as_str()) else {
            return false;
        };
        if last == 0 {
            return rest.is_empty();
        }
        for part in &self.parts[1..last] {
            match rest.find(part.as_str()) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.ends_with(self.parts[last].as_str())
    }

    /// Whether a search lists `category`: its name matches, or the
    /// pattern's text before its first `*` names a stream of it
    /// (`account-*` lists `account`).
    fn finds_category(&self, category: &str) -> bool {
        self.matches(category)
            || self
                .prefix
                .split_once('-')
                .is_some_and(|(of, _)| of == category)
    }

    /// The range of the `messages_stream` index, from inclusive and until
    /// exclusive (None: to the end), that holds every name beginning with
    /// the prefix, under the index's `order`; None when no range is known
    /// (no prefix, or a collation that does not keep them together).
    fn range(&self, order: NameOrder) -> Option<(String, Option<String>)> {
        if self.prefix.is_empty() {
            return None;
        }
        match order {
            NameOrder::Bytes => Some((self.prefix.clone(), successor(&self.prefix))),
            NameOrder::Icu => Some((
                self.prefix.clone(),
                Some(format!("{}\u{ffff}", self.prefix)),
            )),
            NameOrder::Other => None,
        }
    }
}

/// The least text greater, in code point order, than every text that
/// begins with `prefix`: the prefix with its last character that can be
/// incremented incremented and the rest dropped; None when there is none
/// (all U+10FFFF).
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{d7ff}' => Some('\u{e000}'),
            _ => char::from_u32(u32::from(last) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_without_a_star_is_a_prefix() {
        let pattern = Pattern::new("account");
        assert_eq!(pattern.like, "account%");
        for name in ["account", "account-1", "account:command-7"] {
            assert!(pattern.matches(name), "{name}");
        }
        assert!(!pattern.matches("accoun"));
        assert!(!pattern.matches("my-account"));
    }

    #[test]
    fn stars_match_any_text_and_like_characters_are_escaped() {
        let pattern = Pattern::new("*-4_2%");
        assert_eq!(pattern.like, "%-4\\_2\\%");
        assert!(pattern.matches("account-4_2%"));
        assert!(!pattern.matches("account-4x2%"));
        let middle = Pattern::new("account*:x*-1");
        assert!(middle.matches("account:y:x+z-1"));
        assert!(!middle.matches("account:y-1"));
        assert!(Pattern::new("").matches("anything"));
        let exact = Pattern::new("a*b");
        assert!(exact.matches("ab") && exact.matches("a-b") && !exact.matches("a-bc"));
    }

    #[test]
    fn ranges_hold_every_name_with_the_prefix() {
        let pattern = Pattern::new("account-1*");
        let (from, until) = pattern.range(NameOrder::Bytes).unwrap();
        let until = until.unwrap();
        assert_eq!((from.as_str(), until.as_str()), ("account-1", "account-2"));
        for name in ["account-1", "account-10", "account-1\u{10ffff}"] {
            assert!(from.as_str() <= name && name < until.as_str(), "{name}");
        }
        assert_eq!(Pattern::new("*-1").range(NameOrder::Bytes), None);
        assert_eq!(Pattern::new("a").range(NameOrder::Other), None);
        assert_eq!(successor("a\u{10ffff}"), Some("b".into()));
        assert_eq!(successor("\u{10ffff}"), None);
        assert_eq!(successor("\u{d7ff}"), Some("\u{e000}".into()));
    }
}
