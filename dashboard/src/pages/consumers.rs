//! `/consumers`: every consumer that has recorded a position: where it
//! stands against its category's head, how far behind in messages and in
//! time, and what it recorded of failures and parked messages; live.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use ebb_admin::{ConsumerName, ConsumerStatus, FAILURES};
use futures_util::stream;
use maud::{Markup, html};

use crate::app::{App, ConsumersView};
use crate::live::Latest;
use crate::paths::{Base, query};
use crate::view::{self, Nav};

pub(crate) async fn page(
    State(app): State<Arc<App>>,
    Extension(base): Extension<Base>,
) -> Response {
    let consumers = app.consumers.current(app.options.first_render_wait).await;
    let body = html! {
        h1 { "Consumers" }
        div.live hx-ext="sse" sse-connect=(base.url("/live/consumers")) sse-swap="consumers" {
            (fragment(&base, &consumers))
        }
    };
    view::respond(
        StatusCode::OK,
        view::page(
            &base,
            app.options.read_only,
            "Consumers",
            Nav::Consumers,
            body,
        ),
    )
}

/// `/live/consumers`: the table re-rendered each time it is read again.
pub(crate) async fn live(
    State(app): State<Arc<App>>,
    Extension(base): Extension<Base>,
) -> impl IntoResponse {
    let receiver = app.consumers.subscribe();
    let events = stream::unfold(
        (base, receiver, true),
        |(base, mut receiver, first)| async move {
            if !first {
                receiver.changed().await.ok()?;
            }
            let html = fragment(&base, &receiver.borrow_and_update().clone());
            let event = Event::default().event("consumers").data(html.into_string());
            Some((Ok(event), (base, receiver, false)))
        },
    );
    super::live(events)
}

/// The consumer as a link to its position stream: `account · w1`.
pub(crate) fn consumer_link(base: &Base, line: &ConsumerStatus) -> Markup {
    html! {
        a href=(base.stream(&line.position_stream)) title=(line.position_stream) {
            (line.category) " · " (line.identifier.as_deref().unwrap_or("(no identifier)"))
        }
    }
}

fn fragment(base: &Base, consumers: &Latest<ConsumersView>) -> Markup {
    let now = Utc::now();
    let Some(snapshot) = consumers else {
        return view::loading();
    };
    let consumers = match &snapshot.value {
        Ok(consumers) => consumers,
        Err(error) => return view::failed(error),
    };
    let estimated = consumers.lines.iter().any(|line| line.estimated);
    html! {
        header.panel-head {
            p.note {
                (consumers.lines.len()) " consumers. Lag is the category's messages after the consumer's \
                recorded position; waiting, how long ago the oldest of them was written."
            }
            (view::freshness(snapshot.taken_at, now))
        }
        @if consumers.lines.is_empty() {
            (view::empty("No consumer has recorded a position yet."))
        } @else {
            table.data {
                thead { tr {
                    th { "Category" }
                    th { "Consumer" }
                    th.num { "Position" }
                    th.num { "Head" }
                    th.num { "Lag" }
                    th { "Waiting" }
                    th { "Recorded" }
                    th.num { "Failures" }
                    th.num { "Parked" }
                } }
                tbody {
                    @for (line, waiting) in consumers.lines.iter().zip(&consumers.waiting) {
                        tr.behind[line.lag > 0] {
                            td.mono { a href=(base.stream(&line.category)) { (line.category) } }
                            td.mono {
                                a href=(base.stream(&line.position_stream)) title=(line.position_stream) {
                                    (line.identifier.as_deref().unwrap_or("(none)"))
                                }
                            }
                            td.num.mono { @if let Some(position) = line.position { (position) } @else { span.muted { "—" } } }
                            td.num.mono { @if let Some(head) = line.head { (head) } @else { span.muted { "—" } } }
                            td.num { (view::count(line.lag, line.estimated)) }
                            td { @if let Some(time) = waiting { (view::span_between(*time, now)) } @else { span.muted { "caught up" } } }
                            td { @if let Some(time) = line.recorded_at { (view::ago(time, now)) } @else { span.muted { "never" } } }
                            td.num {
                                @if line.failures > 0 {
                                    @if let Some(stream) = failures_stream(line) {
                                        a.warn href=(base.stream(&stream)) { (line.failures) }
                                    } @else { span.warn { (line.failures) } }
                                } @else { span.muted { "0" } }
                            }
                            td.num {
                                @if line.parked > 0 {
                                    a.warn href=(base.url(&format!("/parked{}", query(&[("category", Some(line.category.clone())), ("consumer", line.identifier.clone())])))) { (line.parked) }
                                } @else { span.muted { "0" } }
                            }
                        }
                    }
                }
            }
            @if estimated {
                p.note { "~ estimated by PostgreSQL's planner; lags of up to " (view::number(ebb_admin::EXACT_LAG_UP_TO)) " messages are counted." }
            }
        }
    }
}

/// The consumer's failures stream.
fn failures_stream(line: &ConsumerStatus) -> Option<String> {
    ConsumerName::new(&line.category, line.identifier.as_deref())
        .and_then(|name| name.stream(FAILURES))
        .ok()
}
