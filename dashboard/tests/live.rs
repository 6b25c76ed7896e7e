//! The live pages' event streams: a message written while a stream's page
//! is open arrives as an event; the overview's and the consumers' first
//! event carries their figures.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{Dashboard, data, options, write};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

/// The event stream at `uri`, read as text, event by event.
struct Events {
    body: Body,
    buffered: String,
}

impl Events {
    async fn open(router: &axum::Router, uri: &str) -> Self {
        let response = router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(content_type, "text/event-stream");
        assert!(
            response
                .headers()
                .contains_key(header::CONTENT_SECURITY_POLICY)
        );
        Self {
            body: response.into_body(),
            buffered: String::new(),
        }
    }

    /// The next event (its lines), keep-alive comments skipped.
    async fn next(&mut self) -> String {
        loop {
            if let Some(end) = self.buffered.find("\n\n") {
                let event: String = self.buffered.drain(..end + 2).collect();
                if event.lines().any(|line| line.starts_with("data:")) {
                    return event;
                }
                continue;
            }
            let frame = self
                .body
                .frame()
                .await
                .expect("the stream goes on")
                .unwrap();
            if let Ok(bytes) = frame.into_data() {
                self.buffered.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }

    /// Events until one contains `text`, within `limit`.
    async fn until(&mut self, text: &str, limit: Duration) -> String {
        tokio::time::timeout(limit, async {
            loop {
                let event = self.next().await;
                if event.contains(text) {
                    return event;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("an event with {text:?} within {limit:?}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_written_while_a_stream_page_is_open_arrives_as_an_event() {
    let dashboard = Dashboard::new(options()).await;
    let first = write(
        &dashboard.store,
        "account-7",
        data("Opened", serde_json::json!({})),
    )
    .await;
    let mut events = Events::open(&dashboard.router, "/live/streams/account-7").await;
    let event = events
        .until(&first.id.to_string(), Duration::from_secs(20))
        .await;
    assert!(event.starts_with("event: messages"), "{event}");

    let second = write(
        &dashboard.store,
        "account-7",
        data("Deposited", serde_json::json!({ "amount": 4242 })),
    )
    .await;
    let event = events
        .until(&second.id.to_string(), Duration::from_secs(20))
        .await;
    assert!(event.contains("4242"), "{event}");
    // Newest first.
    assert!(event.find(&second.id.to_string()) < event.find(&first.id.to_string()));

    // The category's page too.
    let mut category = Events::open(&dashboard.router, "/live/streams/account").await;
    category
        .until(&second.id.to_string(), Duration::from_secs(20))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_and_consumers_streams_send_their_figures() {
    let dashboard = Dashboard::new(options()).await;
    let written = write(
        &dashboard.store,
        "ledger-1",
        data("Posted", serde_json::json!({})),
    )
    .await;
    write(
        &dashboard.store,
        "ledger:position-w9",
        data(
            ebb_consumer::POSITION_TYPE,
            serde_json::json!({ "position": written.global_position }),
        ),
    )
    .await;
    let mut overview = Events::open(&dashboard.router, "/live/overview").await;
    let event = overview.until("ledger · w9", Duration::from_secs(20)).await;
    assert!(event.starts_with("event: overview"), "{event}");
    let mut consumers = Events::open(&dashboard.router, "/live/consumers").await;
    let event = consumers
        .until("ledger:position-w9", Duration::from_secs(20))
        .await;
    assert!(event.starts_with("event: consumers"), "{event}");
    // Written now, the next message is seen in the category counts.
    write(
        &dashboard.store,
        "audit-1",
        data("Noted", serde_json::json!({})),
    )
    .await;
    overview.until(">audit<", Duration::from_secs(30)).await;
}
