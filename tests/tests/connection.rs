//! The pool's connections: over the private cluster's Unix socket they are
//! opened by ebb itself (registered for readability only, see
//! `ebb_message_store::pg`'s connector); these tests hold that path to what
//! tokio-postgres's own connections do. (On `DATABASE_URL`'s server they
//! go the way its URL says.)

use ebb_message_store::{ExpectedVersion, MessageData, MessageStore, StreamName, StreamQuery};
use ebb_tests::{database, store_for};
use futures_util::TryStreamExt as _;
use serde_json::json;

/// The private cluster is reached over its Unix socket.
async fn assert_over_the_socket(store: &ebb_message_store::PgStore) {
    let over_tcp = ebb_tests::assert_transport_as_configured(store).await;
    assert!(!over_tcp || ebb_tests::database_url_is_set());
}

/// A batch of 8 MB cannot go into the socket's buffer in one piece: the
/// write has to wait for the server to read. It must arrive whole, and the
/// one connection must serve the next statements as usual.
#[tokio::test]
async fn a_batch_larger_than_the_socket_buffer_is_written_whole_on_one_connection() {
    let db = database().await;
    let store = store_for(&db, 1);
    assert_over_the_socket(&store).await;
    let stream = StreamName::new("upload", "big").unwrap();
    let chunk = "x".repeat(16 * 1024);
    let batch: Vec<_> = (0..512)
        .map(|n| MessageData::new("ChunkStored", json!({ "n": n, "chunk": chunk })))
        .collect();
    let last = store
        .write_batch(&stream, &batch, ExpectedVersion::NoStream)
        .await
        .unwrap();
    assert_eq!(last, Some(511));
    let position = store
        .write(
            &stream,
            &MessageData::new("Uploaded", json!({})),
            ExpectedVersion::Exact(511),
        )
        .await
        .unwrap();
    assert_eq!(position, 512);
    let read: Vec<_> = store
        .read_stream(stream.as_str(), StreamQuery::new().batch_size(100))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(read.len(), 513);
    for (expected, message) in read.iter().enumerate().take(512) {
        assert_eq!(message.position, expected as i64);
        assert_eq!(message.data.to_value().unwrap()["n"], json!(expected));
        assert_eq!(
            message.data.to_value().unwrap()["chunk"]
                .as_str()
                .map(str::len),
            Some(chunk.len())
        );
    }
    assert_eq!(read[512].type_name, "Uploaded");
}

/// Many statements, one after another, on one connection: every reply is
/// read (none is left waiting for a wake-up that never comes).
#[tokio::test(flavor = "current_thread")]
async fn a_single_writer_on_one_thread_gets_every_reply() {
    let db = database().await;
    let store = store_for(&db, 1);
    assert_over_the_socket(&store).await;
    let stream = StreamName::new("counter", "1").unwrap();
    for n in 0..500_i64 {
        let expected = if n == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(n - 1)
        };
        let position = store
            .write(
                &stream,
                &MessageData::new("Incremented", json!({})),
                expected,
            )
            .await
            .unwrap();
        assert_eq!(position, n);
    }
    assert_eq!(
        store.stream_version(stream.as_str()).await.unwrap(),
        Some(499)
    );
}
