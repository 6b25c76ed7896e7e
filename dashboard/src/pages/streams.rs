//! `/streams`: streams and categories found by name; `/streams/NAME`: a
//! stream's or a category's messages, newest first (live) or from a
//! position, with their data and metadata, and links along causation and
//! correlation.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use ebb_message_store::stream_name::is_category;
use ebb_message_store::{Message, StreamName};
use futures_util::stream;
use maud::{Markup, html};

use crate::app::{App, one_line};
use crate::paths::{Base, param, params, query};
use crate::view::{self, Nav};

/// `GET /streams?q=PATTERN&after=NAME`.
pub(crate) async fn search(
    State(app): State<Arc<App>>,
    Extension(base): Extension<Base>,
    RawQuery(raw): RawQuery,
) -> Response {
    let pairs = params(raw.as_deref());
    let pattern = param(&pairs, "q").unwrap_or_default().trim().to_owned();
    let after = param(&pairs, "after").filter(|after| !after.is_empty());
    let found =
        match ebb_admin::search_streams(&app.store, &pattern, after, app.options.page_size).await {
            Ok(found) => found,
            Err(err) => return internal(&base, &err),
        };
    let now = Utc::now();
    let body = html! {
        h1 { "Streams" }
        form.filters method="get" action=(base.url("/streams")) {
            label { "Name " input type="search" name="q" value=(pattern) placeholder="account-*" autofocus; }
            button type="submit" { "Find" }
            span.note { "* stands for any text; a name without * finds the names that begin with it." }
        }
        @if after.is_none() {
            section.panel {
                h2 { "Categories" }
                @if found.categories.is_empty() {
                    (view::empty("No category matches."))
                } @else {
                    ul.chips {
                        @for category in &found.categories {
                            li { a.mono href=(base.stream(category)) { (category) } }
                        }
                    }
                }
            }
        }
        section.panel {
            h2 { "Streams" @if let Some(after) = after { " after " span.mono { (after) } } }
            @if found.streams.is_empty() {
                (view::empty("No stream matches."))
            } @else {
                table.data {
                    thead { tr { th { "Stream" } th.num { "Messages" } th { "Last written" } } }
                    tbody {
                        @for stream in &found.streams {
                            tr {
                                td.mono { a href=(base.stream(&stream.stream_name)) { (stream.stream_name) } }
                                td.num { (view::number(stream.messages)) }
                                td { (view::ago(stream.last_written, now)) }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = &found.next {
                nav.pager {
                    a href=(base.url(&format!("/streams{}", query(&[("q", Some(pattern.clone())), ("after", Some(next.clone()))])))) { "More →" }
                }
            }
        }
    };
    view::respond(
        StatusCode::OK,
        view::page(&base, app.options.read_only, "Streams", Nav::Streams, body),
    )
}

/// Which messages of a stream a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    /// Newest first, before a position (None: the newest).
    Newest { before: Option<i64> },
    /// Oldest first, from a position.
    From(i64),
}

/// `GET /streams/NAME?before=N` or `?from=N`.
pub(crate) async fn stream(
    State(app): State<Arc<App>>,
    Extension(base): Extension<Base>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(err) = StreamName::parse(name.as_str()) {
        return view::error_page(
            &base,
            StatusCode::BAD_REQUEST,
            "Not a stream name",
            &err.to_string(),
        );
    }
    let pairs = params(raw.as_deref());
    let position = |key: &str| -> Result<Option<i64>, String> {
        param(&pairs, key)
            .filter(|value| !value.is_empty())
            .map(|value| {
                value
                    .parse::<i64>()
                    .ok()
                    .filter(|position| *position >= 0)
                    .ok_or_else(|| {
                        format!("{key}={value:?} is not a position (a whole number, 0 or more)")
                    })
            })
            .transpose()
    };
    let view = match (position("from"), position("before")) {
        (Err(message), _) | (_, Err(message)) => {
            return view::error_page(&base, StatusCode::BAD_REQUEST, "Not a position", &message);
        }
        (Ok(Some(_)), Ok(Some(_))) => {
            return view::error_page(
                &base,
                StatusCode::BAD_REQUEST,
                "Two positions",
                "Give from (oldest first) or before (newest first), not both.",
            );
        }
        (Ok(Some(from)), Ok(None)) => View::From(from),
        (Ok(None), before) => View::Newest {
            before: before.ok().flatten(),
        },
    };
    let category = is_category(&name);
    let size = app.options.page_size;
    let limit = i64::try_from(size).unwrap_or(i64::MAX);
    let messages = match view {
        View::Newest { before } => ebb_admin::newest(&app.store, &name, before, limit).await,
        View::From(from) => match ebb_admin::Reader::new(&name, Some(from)) {
            Ok(mut reader) => reader.next_batch(&app.store, limit).await,
            Err(err) => Err(err),
        },
    };
    let messages = match messages {
        Ok(messages) => messages,
        Err(err) if err.is_invalid_input() => {
            return view::error_page(
                &base,
                StatusCode::BAD_REQUEST,
                "Not a stream name",
                &one_line(&err),
            );
        }
        Err(err) => return internal(&base, &err),
    };
    if messages.is_empty() && view == (View::Newest { before: None }) {
        let what = if category { "category" } else { "stream" };
        return view::error_page(
            &base,
            StatusCode::NOT_FOUND,
            &format!("No such {what}"),
            &format!("The store has no message in the {what} {name}."),
        );
    }
    let at = |message: &Message| {
        if category {
            message.global_position
        } else {
            message.position
        }
    };
    let now = Utc::now();
    let kind = if category { "Category" } else { "Stream" };
    let body = html! {
        header.page-head {
            h1 { span.kind { (kind) } " " span.mono { (name) } }
            nav.links {
                @if !category {
                    a href=(base.stream(ebb_message_store::stream_name::category(&name))) { "its category" }
                }
                a href=(base.trace(&name)) title="the messages whose metadata correlates them to this stream" { "correlated trace" }
            }
        }
        nav.pager {
            a href=(base.stream(&name)) aria-current=[(view == View::Newest { before: None }).then_some("page")] { "Newest" }
            a href=(format!("{}?from={}", base.stream(&name), if category { 1 } else { 0 })) { "Oldest" }
            form.inline method="get" action=(base.stream(&name)) {
                label { "From " (if category { "global position" } else { "position" }) " "
                    input type="number" name="from" min="0" required; }
                button type="submit" { "Go" }
            }
        }
        @match view {
            View::Newest { before: None } => {
                div.live hx-ext="sse" sse-connect=(format!("{}/live/streams/{}", base.0, crate::paths::encode(&name))) sse-swap="messages" {
                    (list(&base, &messages, category, now))
                }
                p.note { "Newest first; new messages appear as they are written." }
            }
            _ => {
                @if messages.is_empty() {
                    (view::empty("No message here."))
                } @else {
                    (list(&base, &messages, category, now))
                }
            }
        }
        nav.pager {
            @match view {
                View::Newest { .. } => {
                    @if let Some(last) = messages.last().filter(|_| messages.len() == size) {
                        a href=(format!("{}?before={}", base.stream(&name), at(last))) { "Older →" }
                    }
                }
                View::From(_) => {
                    @if let Some(last) = messages.last().filter(|_| messages.len() == size) {
                        a href=(format!("{}?from={}", base.stream(&name), at(last) + 1)) { "Newer →" }
                    }
                }
            }
        }
    };
    view::respond(
        StatusCode::OK,
        view::page(&base, app.options.read_only, &name, Nav::Streams, body),
    )
}

/// `/live/streams/NAME`: the newest page again each time a message is
/// written to the stream or category.
pub(crate) async fn live(
    State(app): State<Arc<App>>,
    Extension(base): Extension<Base>,
    Path(name): Path<String>,
) -> Response {
    if let Err(err) = StreamName::parse(name.as_str()) {
        return view::error_page(
            &base,
            StatusCode::BAD_REQUEST,
            "Not a stream name",
            &err.to_string(),
        );
    }
    let Some(refresher) = app.stream(&name) else {
        return view::error_page(
            &base,
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many live streams",
            "Too many different streams are shown live at once; reload the page later.",
        );
    };
    let category = is_category(&name);
    let receiver = refresher.subscribe();
    // What the last event showed: the newest message's global position
    // (None for none); nothing sent yet at first.
    let state = (base, receiver, None::<Option<i64>>);
    let events = stream::unfold(state, move |(base, mut receiver, mut shown)| async move {
        loop {
            let latest = receiver.borrow_and_update().clone();
            if let Some(Ok(messages)) = latest.as_ref().map(|snapshot| &snapshot.value) {
                let newest = messages.first().map(|message| message.global_position);
                if shown != Some(newest) {
                    shown = Some(newest);
                    let html = list(&base, messages, category, Utc::now());
                    let event = Event::default().event("messages").data(html.into_string());
                    return Some((Ok(event), (base, receiver, shown)));
                }
            }
            receiver.changed().await.ok()?;
        }
    });
    super::live(events).into_response()
}

/// A page's messages, each with its data and metadata.
fn list(base: &Base, messages: &[Message], category: bool, now: DateTime<Utc>) -> Markup {
    html! {
        @if messages.is_empty() {
            (view::empty("No message yet."))
        }
        @for message in messages {
            (self::message(base, message, category, now))
        }
    }
}

/// One message: where it is, what it is, its data and metadata, and its
/// links along causation and correlation.
pub(crate) fn message(
    base: &Base,
    message: &Message,
    show_stream: bool,
    now: DateTime<Utc>,
) -> Markup {
    let metadata = &message.metadata;
    let metadata_json = serde_json::to_string(metadata).unwrap_or_default();
    html! {
        article.message id=(format!("m{}", message.global_position)) {
            header.message-head {
                span.type { (message.type_name) }
                @if show_stream {
                    a.mono href=(base.stream(&message.stream_name)) { (message.stream_name) }
                }
                span.mono title="position in its stream" { "#" (message.position) }
                span.mono.muted title="global position" { "global " (message.global_position) }
                (view::time(message.time, now))
                a.mono.muted href=(base.trace(&message.id.to_string())) title="what followed this message" { (message.id) }
            }
            div.message-links {
                @if let (Some(stream), Some(position)) = (&metadata.causation_message_stream_name, metadata.causation_message_position) {
                    span { "caused by " a.mono href=(format!("{}?from={position}#m{}", base.stream(stream), metadata.causation_message_global_position.unwrap_or_default())) { (stream) "#" (position) } }
                }
                @if let Some(correlation) = &metadata.correlation_stream_name {
                    span { "correlated to " a.mono href=(base.stream(correlation)) { (correlation) } " (" a href=(base.trace(correlation)) { "trace" } ")" }
                }
                @if let Some(reply) = &metadata.reply_stream_name {
                    span { "reply to " a.mono href=(base.stream(reply)) { (reply) } }
                }
            }
            div.message-body {
                div { h3 { "data" } (view::json(message.data.as_str())) }
                div { h3 { "metadata" } (view::json(if metadata.is_empty() { "{}" } else { &metadata_json })) }
            }
        }
    }
}

/// The store failed: a 500 page with the error.
pub(crate) fn internal(base: &Base, err: &ebb_admin::Error) -> Response {
    tracing::warn!(error = %one_line(err), "dashboard: a page's query failed");
    view::error_page(
        base,
        StatusCode::INTERNAL_SERVER_ERROR,
        "The store failed",
        &one_line(err),
    )
}
