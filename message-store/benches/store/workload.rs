//! What every side writes and reads: the message, its stream names and the read category.

use ebb_message_store::{MessageData, Metadata};
use serde_json::json;

use crate::BoxError;

/// The one message type every side writes.
pub(crate) const TYPE_NAME: &str = "Benchmarked";
/// The category the read case loads and reads.
pub(crate) const READ_CATEGORY: &str = "benchRead";
/// How many streams the read category's messages are spread over.
pub(crate) const READ_STREAMS: u64 = 1000;

/// What every written message carries: the same data and metadata on all
/// sides, sized like a typical event of an entity stream.
pub(crate) fn payload() -> MessageData {
    let data = json!({
        "accountId": "4f1c7a3e-2b9d-4c8e-9a7f-1e2d3c4b5a69",
        "amount": 1250,
        "currency": "EUR",
        "reference": "benchmark deposit",
        "processedTime": "2024-05-01T12:00:00.000Z",
    });
    let metadata = Metadata {
        causation_message_stream_name: Some(
            "benchCommand-4f1c7a3e-2b9d-4c8e-9a7f-1e2d3c4b5a69".into(),
        ),
        causation_message_position: Some(3),
        causation_message_global_position: Some(123_456),
        correlation_stream_name: Some("benchTransfer-9d2e".into()),
        schema_version: Some("1".into()),
        ..Metadata::default()
    };
    MessageData::new(TYPE_NAME, data).with_metadata(metadata)
}

/// The payload's data and metadata as JSON text, for the sides that send
/// them in SQL: pgbench's variables and the read case's load.
pub(crate) fn json_text(payload: &MessageData) -> Result<(String, String), BoxError> {
    Ok((
        serde_json::to_string(&payload.data)?,
        serde_json::to_string(&payload.metadata)?,
    ))
}

/// xorshift64*: stream ids need to be spread, not unpredictable, and the
/// generator must cost next to nothing inside the measured loop.
#[derive(Debug)]
pub(crate) struct Entities {
    /// The generator's state; never zero.
    state: u64,
    /// Ids are drawn from `1..=count`.
    count: u64,
}

impl Entities {
    pub(crate) fn new(seed: u64, count: u64) -> Self {
        Self {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            count,
        }
    }

    /// Writer `writer`'s generator in slice `slice`: distinct for every
    /// slice and every writer, so that slices do not repeat each other's
    /// streams.
    pub(crate) fn for_writer(slice: u64, writer: usize, count: u64) -> Self {
        Entities::new((slice << 16) + writer as u64 + 1, count)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) % self.count + 1
    }
}

/// How the writers of a case spread over categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Categories {
    /// Every writer writes to `bench-<id>`.
    Shared,
    /// Writer `k` writes to `bench<k>-<id>` (pgbench's `:client_id` is k).
    PerWriter,
}

impl Categories {
    pub(crate) fn category(self, writer: usize) -> String {
        match self {
            Categories::Shared => "bench".to_owned(),
            Categories::PerWriter => format!("bench{writer}"),
        }
    }

    /// The stream-name expression of the pgbench script, the same names
    /// ebb writes.
    pub(crate) fn sql_stream_name(self) -> &'static str {
        match self {
            Categories::Shared => "'bench-' || :entity::text",
            Categories::PerWriter => "'bench' || :client_id::text || '-' || :entity::text",
        }
    }
}
