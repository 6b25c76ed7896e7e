//! Run with:
//! `cargo build --release -p ebb-message-store --example write_instructions`, then
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured_writes*' target/release/examples/write_instructions ebb 4000`
//! (and with `1000`, and with `driver` instead of `ebb`).
//!
//! Client instructions per single write, for `BENCHMARKS.md`: `ebb` writes
//! with `PgStore::write`, `driver` with a bare tokio-postgres prepared
//! statement on a connection opened the ordinary way, one after another on
//! a current-thread runtime against a private cluster. callgrind counts
//! only what runs inside `measured_writes` (the writes, and the connection
//! task polled by the same thread); the difference between 4,000 and 1,000
//! writes, divided by 3,000, is the cost of one write without start-up.

use ebb_message_store::{
    ExpectedVersion, MessageData, MessageStore, PgStore, PgStoreConfig, StreamName,
};
use serde_json::json;

const WRITE: &str = "SELECT message_store.write_message(\
    $1::varchar, $2::varchar, $3::varchar, $4::jsonb, $5::jsonb, $6::bigint)";

/// The connection a side writes with.
enum Writer {
    Ebb(PgStore),
    Driver(tokio_postgres::Client, tokio_postgres::Statement),
}

#[inline(never)]
fn measured_writes(runtime: &tokio::runtime::Runtime, writer: &Writer, count: usize) {
    runtime.block_on(async {
        for n in 0..count {
            let data = json!({ "a": 1, "b": "two", "c": [3], "d": { "e": 4 }, "f": true });
            match writer {
                Writer::Ebb(store) => {
                    let stream = StreamName::new("bench", &(n % 1000).to_string()).unwrap();
                    let message = MessageData::new("Benchmarked", data);
                    store
                        .write(&stream, &message, ExpectedVersion::Any)
                        .await
                        .unwrap();
                }
                Writer::Driver(client, statement) => {
                    let stream = format!("bench-{}", n % 1000);
                    let id = uuid::Uuid::new_v4().to_string();
                    let (metadata, expected): (Option<serde_json::Value>, Option<i64>) =
                        (None, None);
                    client
                        .query_one(
                            statement,
                            &[&id, &stream, &"Benchmarked", &data, &metadata, &expected],
                        )
                        .await
                        .unwrap();
                }
            }
        }
    });
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (side, count) = match (args.next(), args.next()) {
        (Some(side), Some(count)) => (side, count.parse::<usize>()?),
        _ => return Err("usage: write_instructions ebb|driver COUNT".into()),
    };
    let cluster = ebb_localpg::Cluster::start()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let config = cluster.config("postgres");
    let writer = runtime.block_on(async {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        ebb_message_store::schema::install(&client).await?;
        let writer = match side.as_str() {
            "ebb" => Writer::Ebb(PgStore::new(PgStoreConfig {
                max_connections: 1,
                ..PgStoreConfig::new(config.clone())
            })?),
            "driver" => {
                let statement = client.prepare(WRITE).await?;
                Writer::Driver(client, statement)
            }
            other => return Err(format!("unknown side {other:?}").into()),
        };
        Ok::<_, Box<dyn std::error::Error>>(writer)
    })?;
    // Connecting and preparing happen here, outside the counted writes.
    measured_writes(&runtime, &writer, 10);
    measured_writes(&runtime, &writer, count);
    Ok(())
}
