//! The causation tree of the messages that followed a message, or of the
//! messages correlated to a stream: what `ebb trace` prints.
//!
//! A message written by `follow` (Eventide's, `Metadata::follow`,
//! `MessageType::following`) names its cause in its metadata:
//! `causationMessageGlobalPosition`, `causationMessageStreamName` and
//! `causationMessagePosition`. Message DB's schema has no index on those
//! keys, so the tree is found one level at a time: each level is one scan
//! of the messages written after the earliest message of the level above,
//! unless the operator added the index [`CAUSE`] describes (see
//! [`trace`]). [`trace_within`] bounds the search, for a page that must
//! answer quickly on a store of any size.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use ebb_message_store::{PgStore, StreamName};
use serde::Serialize;
use tokio_postgres::types::{ToSql, Type};

use crate::Error;
use crate::consumer_streams;

/// How many rows one statement reads at most.
const BATCH: u64 = 1000;

/// A trace: its messages in tree order, and whether the limit cut it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Trace {
    /// The messages in tree order (pre-order: each after its cause, before
    /// its cause's later children; siblings and roots in global position
    /// order).
    pub lines: Vec<TraceLine>,
    /// A message was left out for the limit: the tree's first levels (or
    /// a correlation's earliest messages) are kept.
    pub cut: bool,
    /// The search was bounded ([`trace_within`]) and the store goes on
    /// beyond what it read: the global positions it read, from and to;
    /// what was written outside them is not in the trace.
    pub searched: Option<(i64, i64)>,
}

/// The message `origin` names and what followed it, as a tree, or the
/// messages correlated to a stream, as a forest (the roots are those
/// whose cause is not among them); at most `limit` messages (None: all).
///
/// Reads `message_store.messages` directly (SELECT only), as it is in
/// Message DB's schema. With a message id: that message, then the
/// messages whose metadata `causationMessageGlobalPosition` is its global
/// position (or, in metadata without one, whose
/// `causationMessageStreamName` and `causationMessagePosition` are its
/// stream name and position), then theirs, and so on: one statement per
/// level of the tree, each a scan of the messages written after the
/// level above. On a large store, an expression index makes each level an
/// index lookup (the schema does not have it; the trace works without
/// it):
///
/// ```sql
/// CREATE INDEX messages_causation ON message_store.messages
///   ((COALESCE(metadata->>'causationMessageGlobalPosition',
///     (metadata->>'causationMessageStreamName') || '/' ||
///     (metadata->>'causationMessagePosition'))));
/// ```
///
/// With a stream name: every message whose metadata
/// `correlationStreamName` is that name (one scan of the table).
/// [`Error::NotFound`] when there is no message with the id, or none
/// correlated to the stream.
pub async fn trace(store: &PgStore, origin: &Origin, limit: Option<u64>) -> Result<Trace, Error> {
    let client = consumer_streams::client(store).await?;
    let tree = match origin {
        Origin::Message(id) => followers(&client, *id, limit).await?,
        Origin::Correlation(stream) => correlated(&client, stream, 0, limit).await?,
    };
    Ok(Trace {
        lines: tree.lines(),
        cut: tree.cut,
        searched: None,
    })
}

/// As [`trace`], in bounded time on a store of any size: where an exact
/// trace would scan the table, it searches only the `window` messages
/// (by global position) written after the message traced, or, for a
/// correlation, the newest `window` messages; [`Trace::searched`] says so
/// when the store goes on beyond them.
///
/// With the causation index [`trace`] describes, a message's trace is
/// [`trace`]'s, whole: each level is an index lookup. Without it, the
/// window is read once, in global position order, a few columns of each
/// message (each message's cause is written before it, so one pass finds
/// every level), and then the tree's messages whole. A correlation has no
/// index to use: its window is scanned. Either way the time grows with
/// the window, not with the store.
pub async fn trace_within(
    store: &PgStore,
    origin: &Origin,
    limit: Option<u64>,
    window: u64,
) -> Result<Trace, Error> {
    let client = consumer_streams::client(store).await?;
    let window = i64::try_from(window).unwrap_or(i64::MAX);
    let last: i64 = client
        .query_one(LAST_SQL, &[])
        .await
        .map_err(|source| Error::Statement {
            action: "cannot read the store's last global position".into(),
            source,
        })?
        .get(0);
    let (tree, searched) = match origin {
        Origin::Message(id) if has_causation_index(&client).await? => {
            (followers(&client, *id, limit).await?, None)
        }
        Origin::Message(id) => {
            let (tree, searched) = followers_in_window(&client, *id, limit, window).await?;
            (tree, searched.filter(|&(_, until)| until < last))
        }
        Origin::Correlation(stream) => {
            let from = last.saturating_sub(window).max(0);
            let tree = correlated(&client, stream, from, limit).await?;
            (tree, (from > 0).then_some((from + 1, last)))
        }
    };
    Ok(Trace {
        lines: tree.lines(),
        cut: tree.cut,
        searched,
    })
}

/// The store's last global position (0 when empty).
const LAST_SQL: &str = "/* ebb trace: last */ \
    SELECT coalesce(max(global_position), 0)::bigint FROM message_store.messages";

/// Whether the table has a valid index on an expression of the causation
/// metadata (the one [`trace`] describes, or one like it).
async fn has_causation_index(client: &tokio_postgres::Client) -> Result<bool, Error> {
    Ok(client
        .query_one(
            "/* ebb trace: index */ SELECT EXISTS ( \
               SELECT 1 FROM pg_index i \
               WHERE i.indrelid = 'message_store.messages'::regclass AND i.indisvalid \
                 AND pg_get_indexdef(i.indexrelid) LIKE '%causationMessageGlobalPosition%')",
            &[],
        )
        .await
        .map_err(|source| Error::Statement {
            action: "cannot read the message table's indexes".into(),
            source,
        })?
        .get(0))
}

/// How many messages the first statement of a windowed trace reads; each
/// next one reads twice as many, up to [`WINDOW_BATCH_MAX`]: a dense tree
/// fills the limit from the first few, a sparse one pays few round trips.
const WINDOW_BATCH_MIN: i64 = 1_000;
/// The most messages one statement of a windowed trace reads.
const WINDOW_BATCH_MAX: i64 = 32_000;

/// The causes in global positions $1 (exclusive) to $2 (inclusive), at
/// most $3 rows, in order: each message's global position, stream name,
/// position and [`CAUSE`], for the messages that name a cause.
fn causes_sql() -> String {
    format!(
        "/* ebb trace: window */ SELECT m.global_position::bigint, m.stream_name::text, \
           m.position::bigint, {CAUSE} \
         FROM message_store.messages m \
         WHERE m.global_position > $1::bigint AND m.global_position <= $2::bigint \
           AND {CAUSE} IS NOT NULL \
         ORDER BY m.global_position LIMIT $3::bigint"
    )
}

/// The messages at the global positions $1.
fn at_sql() -> String {
    format!(
        "/* ebb trace: messages */ {} WHERE m.global_position = ANY($1::bigint[]) \
         ORDER BY m.global_position",
        select()
    )
}

/// The message `id` and what followed it within `window` global positions
/// after it, in one pass over the window's causes; and the window read,
/// unless the limit ended the pass first.
async fn followers_in_window(
    client: &tokio_postgres::Client,
    id: uuid::Uuid,
    limit: Option<u64>,
    window: i64,
) -> Result<(Tree, Option<(i64, i64)>), Error> {
    let failed = |source| Error::Statement {
        action: format!("cannot read the messages that followed {id}"),
        source,
    };
    let root = rows(client, &by_id_sql(), &[(&id, Type::UUID)])
        .await
        .map_err(failed)?
        .pop()
        .ok_or_else(|| Error::NotFound(format!("no message has the id {id}")))?;
    let start = root.global_position;
    let until = start.saturating_add(window);
    let mut keys: std::collections::HashSet<String> = root.keys().into_iter().collect();
    // One more than the limit leaves room for, to know whether to cut.
    let room = limit.map_or(usize::MAX, |limit| {
        usize::try_from(limit).unwrap_or(usize::MAX)
    });
    let mut found: Vec<i64> = Vec::new();
    let mut after = start;
    let causes = causes_sql();
    let mut full = false;
    let mut size = WINDOW_BATCH_MIN;
    while after < until && !full {
        let batch = client
            .query_typed(
                &causes,
                &[
                    (&after, Type::INT8),
                    (&until, Type::INT8),
                    (&size, Type::INT8),
                ],
            )
            .await
            .map_err(failed)?;
        for row in &batch {
            let (global_position, stream_name, position, cause): (i64, String, i64, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            if keys.contains(&cause) {
                keys.insert(global_position.to_string());
                keys.insert(format!("{stream_name}/{position}"));
                found.push(global_position);
                if found.len() >= room {
                    full = true;
                    break;
                }
            }
        }
        if (batch.len() as i64) < size {
            break;
        }
        after = batch.last().map_or(until, |row| row.get(0));
        size = (size * 2).min(WINDOW_BATCH_MAX);
    }
    let mut tree = Tree::default();
    tree.add(root, limit);
    for message in rows(client, &at_sql(), &[(&found, Type::INT8_ARRAY)])
        .await
        .map_err(failed)?
    {
        tree.add(message, limit);
    }
    Ok((tree, (!full).then_some((start + 1, until))))
}

/// What is traced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The message with this id, and what followed it.
    Message(uuid::Uuid),
    /// The messages whose metadata correlates them to this stream.
    Correlation(String),
}

/// A message of the tree, with what its metadata says of its cause.
#[derive(Debug, Clone)]
struct Node {
    id: String,
    stream_name: String,
    position: i64,
    global_position: i64,
    type_name: String,
    time: DateTime<Utc>,
    /// The key its cause is named by ([`CAUSE`]), if it names one.
    cause: Option<String>,
    /// `causationMessageGlobalPosition`, as text (`->>` gives it).
    causation_global_position: Option<String>,
    correlation_stream_name: Option<String>,
}

impl Node {
    /// The keys a message that follows this one names it by: its global
    /// position, and its stream name and position, as [`CAUSE`] has them.
    fn keys(&self) -> [String; 2] {
        [
            self.global_position.to_string(),
            format!("{}/{}", self.stream_name, self.position),
        ]
    }
}

/// The key a message names its cause by: the causation global position
/// (digits), or, for a message without one, the causation stream name and
/// position as `STREAM/POSITION` (never digits only, so the two kinds of
/// key cannot be taken for each other). One expression, so that one
/// expression index can serve it (see `ebb trace --help`); the cast is a
/// no-op on Message DB's `jsonb` column, which PostgreSQL leaves out, so
/// the index's expression need not have it.
const CAUSE: &str = "COALESCE(m.metadata::jsonb->>'causationMessageGlobalPosition', \
    (m.metadata::jsonb->>'causationMessageStreamName') || '/' || \
    (m.metadata::jsonb->>'causationMessagePosition'))";

/// The columns every query selects, in [`Node`]'s order.
fn select() -> String {
    format!(
        "SELECT m.id::text, m.stream_name::text, m.position::bigint, \
           m.global_position::bigint, m.type::text, m.time::timestamp, {CAUSE}, \
           m.metadata::jsonb->>'causationMessageGlobalPosition', \
           m.metadata::jsonb->>'correlationStreamName' \
         FROM message_store.messages m"
    )
}

/// The message with the id $1.
fn by_id_sql() -> String {
    format!(
        "/* ebb trace: message */ {} WHERE m.id = $1::uuid",
        select()
    )
}

/// The messages after global position $1 whose cause is one of the keys
/// $2 (a level's messages' [`Node::keys`]); at most $3, in global
/// position order.
fn children_sql() -> String {
    format!(
        "/* ebb trace: children */ {} \
         WHERE m.global_position > $1::bigint AND {CAUSE} = ANY($2::text[]) \
         ORDER BY m.global_position LIMIT $3::bigint",
        select()
    )
}

/// The messages after global position $1 whose metadata correlates them
/// to the stream $2; at most $3, in global position order.
fn correlated_sql() -> String {
    format!(
        "/* ebb trace: correlation */ {} \
         WHERE m.global_position > $1::bigint \
           AND m.metadata::jsonb->>'correlationStreamName' = $2::text \
         ORDER BY m.global_position LIMIT $3::bigint",
        select()
    )
}

/// The message `id` and the messages that followed it, one level of the
/// tree at a time, up to `limit` messages.
async fn followers(
    client: &tokio_postgres::Client,
    id: uuid::Uuid,
    limit: Option<u64>,
) -> Result<Tree, Error> {
    let root = rows(client, &by_id_sql(), &[(&id, Type::UUID)])
        .await
        .map_err(|source| Error::Statement {
            action: format!("cannot read the message {id}"),
            source,
        })?
        .pop()
        .ok_or_else(|| Error::NotFound(format!("no message has the id {id}")))?;
    let mut tree = Tree::default();
    tree.add(root, limit);
    let mut level = vec![0];
    while !level.is_empty() && !tree.cut {
        let first = tree.nodes.len();
        let keys: Vec<String> = level
            .iter()
            .flat_map(|&index| tree.nodes[index].keys())
            .collect();
        // What a level caused was written after the level's earliest.
        let mut after = level
            .iter()
            .map(|&index| tree.nodes[index].global_position)
            .min()
            .unwrap_or(0);
        loop {
            let want = tree.wanted(limit);
            let found = rows(
                client,
                &children_sql(),
                &[
                    (&after, Type::INT8),
                    (&keys, Type::TEXT_ARRAY),
                    (&(want as i64), Type::INT8),
                ],
            )
            .await
            .map_err(|source| Error::Statement {
                action: format!("cannot read the messages that followed {id}"),
                source,
            })?;
            let full = found.len() as u64 >= want;
            for message in found {
                after = message.global_position;
                if tree.parent_of(&message).is_some() {
                    tree.add(message, limit);
                }
                if tree.cut {
                    break;
                }
            }
            if !full || tree.cut {
                break;
            }
        }
        level = (first..tree.nodes.len()).collect();
    }
    Ok(tree)
}

/// The messages correlated to `stream` after global position `after`, in
/// global position order, up to `limit` messages; a failure if there are
/// none.
async fn correlated(
    client: &tokio_postgres::Client,
    stream: &str,
    after: i64,
    limit: Option<u64>,
) -> Result<Tree, Error> {
    let mut tree = Tree::default();
    let mut after = after;
    loop {
        let want = tree.wanted(limit);
        let found = rows(
            client,
            &correlated_sql(),
            &[
                (&after, Type::INT8),
                (&stream, Type::TEXT),
                (&(want as i64), Type::INT8),
            ],
        )
        .await
        .map_err(|source| Error::Statement {
            action: format!("cannot read the messages correlated to {stream}"),
            source,
        })?;
        let full = found.len() as u64 >= want;
        for message in found {
            after = message.global_position;
            tree.add(message, limit);
            if tree.cut {
                break;
            }
        }
        if !full || tree.cut {
            break;
        }
    }
    if tree.nodes.is_empty() {
        return Err(Error::NotFound(format!(
            "no message is correlated to {stream} (metadata correlationStreamName)"
        )));
    }
    Ok(tree)
}

impl Origin {
    /// `text` as a message id, or else as a correlation stream name;
    /// [`Error::InvalidInput`] for neither (a UUID with a typo is not
    /// taken for a stream name).
    pub fn parse(text: &str) -> Result<Self, Error> {
        origin(text)
    }
}

/// `text` as a message id, or else as a correlation stream name; a usage
/// error for neither (a UUID with a typo is not taken for a stream name).
fn origin(text: &str) -> Result<Origin, Error> {
    if let Ok(id) = uuid::Uuid::parse_str(text) {
        return Ok(Origin::Message(id));
    }
    let hex_and_dashes = text.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if hex_and_dashes && text.len() >= 32 {
        let err = uuid::Uuid::parse_str(text).unwrap_err();
        return Err(Error::invalid(format!(
            "{text:?} is not a message id: {err}"
        )));
    }
    let name = StreamName::parse(text).map_err(|err| {
        Error::invalid(format!(
            "{text:?} is neither a message id (a UUID) nor a stream name: {err}"
        ))
    })?;
    Ok(Origin::Correlation(name.into_string()))
}

/// The messages `sql` selects with `params`.
async fn rows(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> Result<Vec<Node>, tokio_postgres::Error> {
    let rows = client.query_typed(sql, params).await?;
    Ok(rows.iter().map(node).collect())
}

fn node(row: &tokio_postgres::Row) -> Node {
    let time: NaiveDateTime = row.get(5);
    Node {
        id: row.get(0),
        stream_name: row.get(1),
        position: row.get(2),
        global_position: row.get(3),
        type_name: row.get(4),
        time: time.and_utc(),
        cause: row.get(6),
        causation_global_position: row.get(7),
        correlation_stream_name: row.get(8),
    }
}

/// The messages found, in the order found, each with its cause among them.
#[derive(Debug, Default)]
struct Tree {
    nodes: Vec<Node>,
    /// The index in `nodes` of each one's cause, `None` for a root.
    parents: Vec<Option<usize>>,
    /// Each message's index, by each of its [`Node::keys`].
    by_key: HashMap<String, usize>,
    /// A message was left out for the limit.
    cut: bool,
}

impl Tree {
    /// The cause of `node` among the messages found, if it is there: the
    /// message its causation global position names, or, when it has none,
    /// the one its causation stream name and position name. A cause is
    /// always written before what it caused: a cause named after it is
    /// no cause (and a loop in malformed metadata cannot loop here).
    fn parent_of(&self, node: &Node) -> Option<usize> {
        let cause = node.cause.as_ref()?;
        self.by_key
            .get(cause)
            .copied()
            .filter(|&index| self.nodes[index].global_position < node.global_position)
    }

    /// Adds `node` under its cause (a root if it has none here), unless
    /// the tree holds `limit` messages already: then it is cut.
    fn add(&mut self, node: Node, limit: Option<u64>) {
        let keys = node.keys();
        if self.by_key.contains_key(&keys[0]) {
            return;
        }
        if limit.is_some_and(|limit| self.nodes.len() as u64 >= limit) {
            self.cut = true;
            return;
        }
        let index = self.nodes.len();
        self.parents.push(self.parent_of(&node));
        for key in keys {
            self.by_key.insert(key, index);
        }
        self.nodes.push(node);
    }

    /// How many rows the next statement reads: one more than the limit
    /// leaves room for (to know whether to cut), at most [`BATCH`].
    fn wanted(&self, limit: Option<u64>) -> u64 {
        limit.map_or(BATCH, |limit| {
            (limit.saturating_sub(self.nodes.len() as u64) + 1).min(BATCH)
        })
    }

    /// The messages in tree order (pre-order: each after its cause, before
    /// its cause's later children; siblings and roots in global position
    /// order), each with its depth and the tree drawn before it.
    fn lines(&self) -> Vec<TraceLine> {
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        let mut roots = Vec::new();
        for (index, parent) in self.parents.iter().enumerate() {
            match parent {
                Some(parent) => children[*parent].push(index),
                None => roots.push(index),
            }
        }
        let by_global = |a: &usize, b: &usize| {
            self.nodes[*a]
                .global_position
                .cmp(&self.nodes[*b].global_position)
        };
        roots.sort_by(by_global);
        for siblings in &mut children {
            siblings.sort_by(by_global);
        }
        // (index, depth, the prefix of its children's lines, its own
        // prefix), pushed in reverse so that they pop in order.
        let mut stack: Vec<(usize, usize, String, String)> = roots
            .iter()
            .rev()
            .map(|&root| (root, 0, String::new(), String::new()))
            .collect();
        let mut lines = Vec::with_capacity(self.nodes.len());
        while let Some((index, depth, indent, drawn)) = stack.pop() {
            let node = &self.nodes[index];
            let count = children[index].len();
            for (rank, &child) in children[index].iter().enumerate().rev() {
                let last = rank + 1 == count;
                let (branch, below) = if last {
                    ("└─ ", "   ")
                } else {
                    ("├─ ", "│  ")
                };
                stack.push((
                    child,
                    depth + 1,
                    format!("{indent}{below}"),
                    format!("{indent}{branch}"),
                ));
            }
            let causation_global_position = match self.parents[index] {
                Some(parent) => Some(self.nodes[parent].global_position),
                None => node
                    .causation_global_position
                    .as_deref()
                    .and_then(|text| text.parse().ok()),
            };
            lines.push(TraceLine {
                depth,
                global_position: node.global_position,
                id: node.id.clone(),
                stream_name: node.stream_name.clone(),
                position: node.position,
                type_name: node.type_name.clone(),
                time: node.time,
                causation_global_position,
                correlation_stream_name: node.correlation_stream_name.clone(),
                drawn,
            });
        }
        lines
    }
}

/// One message of a [`Trace`], in tree order. Serialized (`ebb trace
/// --json`) with the fields in camelCase (`globalPosition`,
/// `streamName`), the type as `type`, the time as RFC 3339, UTC, to the
/// microsecond; `drawn` is left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TraceLine {
    /// 0 for a root, 1 for what it caused, and so on.
    pub depth: usize,
    /// Its global position.
    pub global_position: i64,
    /// Its id.
    pub id: String,
    /// Its stream.
    pub stream_name: String,
    /// Its position in that stream.
    pub position: i64,
    /// Its type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// When it was written.
    #[serde(serialize_with = "crate::time::serialize")]
    pub time: DateTime<Utc>,
    /// The global position of the message's cause: its parent in the tree,
    /// or, for a root, what its metadata names (if anything).
    pub causation_global_position: Option<i64>,
    /// Its metadata's `correlationStreamName`.
    pub correlation_stream_name: Option<String>,
    /// The tree drawn before it in text (`│  ├─ `), for a table that draws
    /// the tree in a column.
    #[serde(skip)]
    pub drawn: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(global_position: i64, stream_name: &str, cause: Option<i64>) -> Node {
        Node {
            id: format!("id-{global_position}"),
            stream_name: stream_name.to_owned(),
            position: 0,
            global_position,
            type_name: "Happened".to_owned(),
            time: "2024-05-06T07:08:09.123456Z".parse().unwrap(),
            cause: cause.map(|cause| cause.to_string()),
            causation_global_position: cause.map(|cause| cause.to_string()),
            correlation_stream_name: None,
        }
    }

    fn drawn(tree: &Tree) -> Vec<String> {
        tree.lines()
            .iter()
            .map(|line| format!("{}{}", line.drawn, line.global_position))
            .collect()
    }

    #[test]
    fn children_are_drawn_under_their_cause_in_global_position_order() {
        let mut tree = Tree::default();
        for (global_position, cause) in [
            (1, None),
            (2, Some(1)),
            (3, Some(1)),
            (4, Some(2)),
            (5, Some(3)),
            (6, Some(2)),
            (7, None),
            (8, Some(7)),
        ] {
            tree.add(node(global_position, "a-1", cause), None);
        }
        assert_eq!(
            drawn(&tree),
            [
                "1",
                "├─ 2",
                "│  ├─ 4",
                "│  └─ 6",
                "└─ 3",
                "   └─ 5",
                "7",
                "└─ 8",
            ]
        );
        let depths: Vec<usize> = tree.lines().iter().map(|line| line.depth).collect();
        assert_eq!(depths, [0, 1, 2, 2, 1, 2, 0, 1]);
        assert!(!tree.cut);
    }

    #[test]
    fn a_cause_written_later_is_no_cause_and_the_limit_cuts() {
        let mut tree = Tree::default();
        tree.add(node(5, "a-1", Some(9)), Some(2));
        tree.add(node(9, "a-2", Some(5)), Some(2));
        tree.add(node(10, "a-3", Some(5)), Some(2));
        assert!(tree.cut);
        assert_eq!(drawn(&tree), ["5", "└─ 9"]);
        let lines = tree.lines();
        assert_eq!(lines[0].causation_global_position, Some(9), "as written");
        assert_eq!(lines[1].causation_global_position, Some(5));
    }

    #[test]
    fn without_a_global_position_the_stream_and_position_name_the_cause() {
        let mut tree = Tree::default();
        tree.add(node(3, "a-1", None), None);
        let mut child = node(4, "b-1", None);
        child.cause = Some("a-1/0".into());
        tree.add(child, None);
        assert_eq!(drawn(&tree), ["3", "└─ 4"]);
    }

    #[test]
    fn ids_and_stream_names_are_told_apart() {
        let id = "0b8c2a5e-7f3d-4c1a-9e2b-5d6f7a8b9c0d";
        assert_eq!(origin(id).unwrap(), Origin::Message(id.parse().unwrap()));
        assert_eq!(
            origin("transfer-7").unwrap(),
            Origin::Correlation("transfer-7".into())
        );
        for bad in [
            "0b8c2a5e-7f3d-4c1a-9e2b-5d6f7a8b9c0",
            "0b8c2a5e-7f3d-4c1a-9e2b-5d6f7a8b9c0dd",
            "",
            "-7",
            "transfer-",
            "a:-1",
        ] {
            assert!(
                matches!(origin(bad), Err(Error::InvalidInput(_))),
                "{bad:?} was accepted"
            );
        }
    }
}
