//! The dashboard's router over a test database of its own, requests sent
//! to it without a socket (`tower::ServiceExt::oneshot`), and a consumer
//! that parks messages, as a component's does.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use ebb_consumer::{Consumer, ConsumerConfig, Control};
use ebb_handler::{BoxError, Dispatcher, Received, message};
use ebb_localpg::TestDatabase;
use ebb_message_store::{Message, MessageData, Metadata, PgStore};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

/// A dashboard over a fresh database.
pub struct Dashboard {
    pub router: Router,
    pub store: PgStore,
    /// Kept for the store's sake: the database is dropped with it.
    pub db: TestDatabase,
}

/// Options for tests: pages wait as long as it takes for their first
/// figures (a loaded machine is slow, and a test checks the figures).
pub fn options() -> ebb_dashboard::Options {
    ebb_dashboard::Options {
        first_render_wait: Duration::from_secs(30),
        refresh: Duration::from_secs(1),
        ..ebb_dashboard::Options::default()
    }
}

impl Dashboard {
    pub async fn new(options: ebb_dashboard::Options) -> Self {
        let db = ebb_tests::database().await;
        let store = ebb_tests::store_for(&db, 4);
        let router = ebb_dashboard::router(store.clone(), options);
        Self { router, store, db }
    }

    /// A dashboard with `options` over the same database.
    pub fn with(&self, options: ebb_dashboard::Options) -> Router {
        ebb_dashboard::router(self.store.clone(), options)
    }
}

/// A response, its body read whole.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// The value of the hidden CSRF field of the page's forms.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with the CSRF token");
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

pub async fn send(router: &Router, request: Request<Body>) -> Page {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub async fn get(router: &Router, uri: &str) -> Page {
    send(router, Request::get(uri).body(Body::empty()).unwrap()).await
}

/// A form posted from the dashboard's own pages, as a browser sends it.
pub async fn post(router: &Router, uri: &str, form: &[(&str, &str)]) -> Page {
    send(router, post_request(uri, form)).await
}

pub fn post_request(uri: &str, form: &[(&str, &str)]) -> Request<Body> {
    let body: Vec<String> = form
        .iter()
        .map(|(key, value)| format!("{key}={}", encode(value)))
        .collect();
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "127.0.0.1:8460")
        .header(header::ORIGIN, "http://127.0.0.1:8460")
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(body.join("&")))
        .unwrap()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

pub async fn write(store: &PgStore, stream: &str, message: MessageData) -> Message {
    ebb_tests::write_and_read_back(store, stream, &message).await
}

pub fn data(type_name: &str, data: serde_json::Value) -> MessageData {
    MessageData::new(type_name, data)
}

/// Writes `cause`'s follower to `stream`: its metadata names `cause` and
/// carries its correlation.
pub async fn follow(store: &PgStore, stream: &str, type_name: &str, cause: &Message) -> Message {
    let mut metadata = Metadata::default();
    metadata.follow(cause);
    write(
        store,
        stream,
        data(type_name, serde_json::json!({})).with_metadata(metadata),
    )
    .await
}

#[message]
struct Noted {
    n: i64,
}

/// Notes 1..=4, each in its own stream `note-N`; a consumer of `note`
/// (identifier `w1`) whose handler fails on notes 3 and 4 parked them,
/// and was stopped: the parked messages and their global positions.
pub async fn parked_notes(store: &PgStore, db: &TestDatabase) -> Vec<i64> {
    for n in 1..=4 {
        write(
            store,
            &format!("note-{n}"),
            data("Noted", serde_json::json!({ "n": n })),
        )
        .await;
    }
    let config = ConsumerConfig {
        identifier: Some("w1".into()),
        poll_interval: Duration::from_millis(100),
        position_update_interval: 1,
        park_after_retries: true,
        handler_retry_ms: Vec::new(),
        ..ConsumerConfig::new("note")
    };
    let consumer_store = ebb_tests::store_for(db, 2);
    let dispatcher = Dispatcher::new().on(|noted: Received<Noted>| async move {
        if noted.n >= 3 {
            return Err(BoxError::from(format!(
                "note {} cannot be handled",
                noted.n
            )));
        }
        Ok(())
    });
    let consumer = Consumer::new(config, consumer_store)
        .unwrap()
        .handler(dispatcher);
    let control = Control::new();
    let run = tokio::spawn({
        let control = control.clone();
        async move { consumer.run(&control).await }
    });
    // Reads the parked stream until both notes are there.
    let started = Instant::now();
    let parked = loop {
        let parked = ebb_admin::parked(store, "note", Some("w1")).await.unwrap();
        if parked.len() >= 2 {
            break parked;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "notes 3 and 4 parked within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    control.stop();
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the consumer stops")
        .unwrap()
        .unwrap();
    parked
        .iter()
        .map(|(_, message)| message.parked.global_position)
        .collect()
}
