//! Group commit: the writes callers make to one category at the same time
//! go to the server together, in one call (see
//! [`PgStoreConfig::group_commit`]).
//!
//! Message DB serializes the writes to a category behind a lock that each
//! holds until it has committed, WAL flush included, so a busy category
//! takes one write, and one flush, at a time, however many writers it
//! has. Here a category has a *turn*, held by one writer at a time:
//!
//! - a write to a category nobody holds the turn of takes it and goes out
//!   at once, alone, as `write_message` (no waiting: one writer alone is as
//!   fast as before);
//! - a write made while the turn is held joins the category's queue and
//!   waits;
//! - when the holder's write ends, whatever has queued goes out in one
//!   call of `ebb_write_messages` from a task of its own (so that no
//!   caller's cancellation reaches the others' writes), and so on until
//!   the queue is empty.
//!
//! The function writes each message as `write_message` would, in queue
//! order, under the same lock, and reports a wrong expected version to its
//! own writer only (see `sql/functions/ebb-write-messages.sql`). When the
//! call fails as a whole with an error the server reported (a message id
//! already taken, say), it wrote nothing, and each write is sent again
//! alone, for an answer of its own. When it fails for a reason none of
//! them caused, each writer gets that error: a timeout or a pool error as
//! it is, a database error (the connection lost, say) in
//! [`Error::Grouped`], which shares it. A database installed by Message
//! DB's own scripts has no `ebb_write_messages`: the first call finds that
//! out, and from then on every write goes alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;
use tokio::sync::oneshot;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{Json, Type};
use uuid::Uuid;

use super::PgStore;
use super::call::Call;
use crate::error::classify;
use crate::{Error, ExpectedVersion, MessageData, StreamName};

/// The most writes one call carries; the rest wait for the next.
const MOST_IN_ONE_CALL: usize = 500;

const WRITE_MESSAGES: &str = "SELECT positions, stream_versions FROM message_store.ebb_write_messages(\
    $1::varchar[], $2::varchar[], $3::varchar[], $4::jsonb[], $5::jsonb[], $6::bigint[])";

const WRITE_MESSAGES_TYPES: [Type; 6] = [
    Type::VARCHAR_ARRAY,
    Type::VARCHAR_ARRAY,
    Type::VARCHAR_ARRAY,
    Type::JSONB_ARRAY,
    Type::JSONB_ARRAY,
    Type::INT8_ARRAY,
];

/// The categories whose turn is held, with the writes queued for each: a
/// category is in the map exactly while its turn is held.
#[derive(Default)]
pub(super) struct Groups {
    queues: Mutex<HashMap<Box<str>, Vec<Queued>>>,
    /// Set once the database is found to have no `ebb_write_messages`.
    unavailable: AtomicBool,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Groups")
            .field("unavailable", &self.unavailable.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A write waiting in a queue, and where its answer goes.
struct Queued {
    write: Write,
    answer: oneshot::Sender<Result<i64, Error>>,
}

/// One message to write, owned, with its JSON already serialized (by the
/// writer's own task, not the one that sends the group).
struct Write {
    id: Uuid,
    stream_name: StreamName,
    type_name: String,
    data: Box<RawValue>,
    metadata: Option<Box<RawValue>>,
    expected_version: Option<i64>,
}

impl Write {
    fn new(
        stream_name: &StreamName,
        message: &MessageData,
        expected_version: ExpectedVersion,
    ) -> Result<Self, Error> {
        let raw = |value| serde_json::value::to_raw_value(value).map_err(Error::Serialize);
        Ok(Self {
            id: message.id,
            stream_name: stream_name.clone(),
            type_name: message.type_name.clone(),
            data: raw(&message.data)?,
            metadata: message.metadata_json().as_ref().map(raw).transpose()?,
            expected_version: expected_version.to_sql(),
        })
    }

    /// The error for this write's expected version when its stream was at
    /// `actual`.
    fn wrong_version(&self, actual: i64) -> Error {
        Error::WrongExpectedVersion {
            stream_name: self.stream_name.to_string(),
            expected: self.expected_version.unwrap_or_default(),
            actual,
        }
    }
}

/// The turn of a category, held by the writer whose write is out; passed
/// on to the queue when dropped, however the holder ended.
pub(super) struct Turn {
    store: PgStore,
    category: Box<str>,
    /// Set once the category is free again: nothing to pass on.
    ended: bool,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if !self.ended {
            pass_on(&self.store, &self.category);
        }
    }
}

impl Groups {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Vec<Queued>>> {
        // Every change to the map is whole by the time the lock is let go.
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether writes are grouped: the database has the function.
    pub(super) fn available(&self) -> bool {
        !self.unavailable.load(Ordering::Relaxed)
    }
}

/// Writes one message through the category's turn: at once when the turn
/// is free, else with the writes queued behind it.
pub(super) async fn write(
    store: &PgStore,
    stream_name: &StreamName,
    message: &MessageData,
    expected_version: ExpectedVersion,
) -> Result<i64, Error> {
    expected_version.validate()?;
    message.validate()?;
    let groups = &store.groups;
    let category = stream_name.category();
    let mut write = None;
    loop {
        if let Some(turn) = take_turn(store, category) {
            let written = write_alone(store, stream_name, message, expected_version).await;
            drop(turn);
            return written;
        }
        let queued = match write.take() {
            Some(queued) => queued,
            None => Write::new(stream_name, message, expected_version)?,
        };
        let (answer, answered) = oneshot::channel();
        let queued = Queued {
            write: queued,
            answer,
        };
        let refused = match groups.lock().get_mut(category) {
            Some(queue) => {
                queue.push(queued);
                None
            }
            None => Some(queued),
        };
        match refused {
            // The sender is dropped unanswered only when the task sending
            // the group is dropped: the runtime is shutting down.
            None => return answered.await.unwrap_or(Err(Error::Cancelled)),
            // The turn was passed on and the queue emptied meanwhile:
            // take it.
            Some(queued) => write = Some(queued.write),
        }
    }
}

/// The category's turn, if nobody holds it.
fn take_turn(store: &PgStore, category: &str) -> Option<Turn> {
    let mut queues = store.groups.lock();
    if queues.contains_key(category) {
        return None;
    }
    queues.insert(category.into(), Vec::new());
    Some(Turn {
        store: store.clone(),
        category: category.into(),
        ended: false,
    })
}

/// Ends a turn: the category is free again if nothing queued, else a task
/// takes the turn and sends the queue.
fn pass_on(store: &PgStore, category: &str) {
    let Some(group) = next_group(store, category) else {
        return;
    };
    let turn = Turn {
        store: store.clone(),
        category: category.into(),
        ended: false,
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(send_groups(turn, group));
        }
        // No runtime to send it on: the queued writers hear so, and the
        // turn passes on again (dropped) to whatever queued meanwhile.
        Err(_) => {
            for queued in group {
                let _ = queued.answer.send(Err(Error::Cancelled));
            }
            drop(turn);
        }
    }
}

/// Takes the next group off the category's queue, or frees the category
/// if none waits.
fn next_group(store: &PgStore, category: &str) -> Option<Vec<Queued>> {
    let mut queues = store.groups.lock();
    let queue = queues.get_mut(category)?;
    if queue.is_empty() {
        queues.remove(category);
        return None;
    }
    let rest = queue.split_off(queue.len().min(MOST_IN_ONE_CALL));
    Some(std::mem::replace(queue, rest))
}

/// Sends `group`, then each group that queues meanwhile, holding `turn`
/// until none is left.
async fn send_groups(turn: Turn, mut group: Vec<Queued>) {
    loop {
        send_group(&turn.store, group).await;
        // The writers just answered are woken; let them queue their next
        // writes before the next group is taken, so that it carries them.
        tokio::task::yield_now().await;
        match next_group(&turn.store, &turn.category) {
            Some(next) => group = next,
            None => {
                // Freed already: nothing to pass on.
                let mut turn = turn;
                turn.ended = true;
                return;
            }
        }
    }
}

/// Writes one group and answers each of its writers.
async fn send_group(store: &PgStore, group: Vec<Queued>) {
    if group.len() == 1 || !store.groups.available() {
        for queued in group {
            let written = write_queued(store, &queued.write).await;
            let _ = queued.answer.send(written);
        }
        return;
    }
    match write_together(store, &group).await {
        Ok(answers) => {
            for (queued, answer) in group.into_iter().zip(answers) {
                let _ = queued.answer.send(answer);
            }
        }
        // The server refused the call as a whole, so it wrote nothing:
        // each write is sent again alone, for an answer of its own.
        Err(err) if err.sqlstate().is_some() && !err.is_transient() => {
            if err.sqlstate() == Some(&SqlState::UNDEFINED_FUNCTION) {
                if !store.groups.unavailable.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        "the database has no message_store.ebb_write_messages (installed by \
                         Message DB's own scripts?): writes go one by one, as write_message; \
                         `ebb db install` adds it"
                    );
                }
            } else {
                tracing::debug!(error = %err, count = group.len(), "a group failed as a whole; writing each alone");
            }
            for queued in group {
                let written = write_queued(store, &queued.write).await;
                let _ = queued.answer.send(written);
            }
        }
        // A reason none of them caused: each gets the error.
        Err(err) => {
            let shared = Arc::new(err);
            for queued in group {
                let err = shared
                    .copy_plain()
                    .unwrap_or_else(|| Error::Grouped(Arc::clone(&shared)));
                let _ = queued.answer.send(Err(err));
            }
        }
    }
}

/// Writes one message alone, as a store without group commit does.
async fn write_alone(
    store: &PgStore,
    stream_name: &StreamName,
    message: &MessageData,
    expected_version: ExpectedVersion,
) -> Result<i64, Error> {
    let call = store.call().await?;
    call.run(
        "write_message",
        super::operations::write_message(
            &call.statements(),
            stream_name,
            message,
            expected_version,
        ),
    )
    .await
}

/// Writes one queued message alone, as `write_message`.
async fn write_queued(store: &PgStore, write: &Write) -> Result<i64, Error> {
    let call = store.call().await?;
    call.run(
        "write_message",
        super::operations::write_serialized(
            &call.statements(),
            &write.id,
            &write.stream_name,
            &write.type_name,
            Json(&*write.data),
            write.metadata.as_deref().map(Json),
            write.expected_version,
        ),
    )
    .await
}

/// Writes a group in one call; an answer for each write, in order.
async fn write_together(
    store: &PgStore,
    group: &[Queued],
) -> Result<Vec<Result<i64, Error>>, Error> {
    let call: Call = store.call().await?;
    let ids: Vec<String> = group.iter().map(|q| q.write.id.to_string()).collect();
    let stream_names: Vec<&str> = group.iter().map(|q| q.write.stream_name.as_str()).collect();
    let types: Vec<&str> = group.iter().map(|q| q.write.type_name.as_str()).collect();
    let data: Vec<Json<&RawValue>> = group.iter().map(|q| Json(&*q.write.data)).collect();
    let metadata: Vec<Option<Json<&RawValue>>> = group
        .iter()
        .map(|q| q.write.metadata.as_deref().map(Json))
        .collect();
    let expected: Vec<Option<i64>> = group.iter().map(|q| q.write.expected_version).collect();
    let statements = call.statements();
    let rows = call
        .run("write_message", async {
            use super::client::StoreClient as _;
            statements
                .query_rows(
                    WRITE_MESSAGES,
                    &[&ids, &stream_names, &types, &data, &metadata, &expected],
                    &WRITE_MESSAGES_TYPES,
                )
                .await
                .map_err(classify)
        })
        .await?;
    let [row] = rows.as_slice() else {
        return Err(Error::UnexpectedRows {
            statement: "ebb_write_messages".into(),
            count: rows.len(),
        });
    };
    let positions: Vec<Option<i64>> = row.try_get(0).map_err(Error::Database)?;
    let versions: Vec<Option<i64>> = row.try_get(1).map_err(Error::Database)?;
    if positions.len() != group.len() || versions.len() != group.len() {
        return Err(Error::UnexpectedRows {
            statement: "ebb_write_messages (its arrays)".into(),
            count: positions.len(),
        });
    }
    tracing::debug!(
        category = %group[0].write.stream_name.category(),
        count = group.len(),
        "wrote a group"
    );
    Ok(group
        .iter()
        .zip(positions.into_iter().zip(versions))
        .map(|(queued, (position, version))| match position {
            Some(position) => Ok(position),
            None => Err(queued.write.wrong_version(version.unwrap_or(-1))),
        })
        .collect())
}
