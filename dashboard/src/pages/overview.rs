//! `/`: the store at a glance: its categories with their message counts
//! and write rates, and its consumers with their lag, parked messages and
//! failures; live.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use ebb_admin::{Activity, Stats};
use futures_util::stream;
use maud::{Markup, html};

use super::consumers::consumer_link;
use crate::app::{App, ConsumersView};
use crate::live::Latest;
use crate::paths::{Base, query};
use crate::view::{self, Nav};

pub(crate) async fn page(
    State(app): State<Arc<App>>,
    Extension(base): Extension<Base>,
) -> Response {
    let wait = app.options.first_render_wait;
    let (counts, activity, consumers) = tokio::join!(
        app.counts.current(wait),
        app.activity.current(wait),
        app.consumers.current(wait)
    );
    let body = html! {
        h1 { "Overview" }
        div.live hx-ext="sse" sse-connect=(base.url("/live/overview")) sse-swap="overview" {
            (fragment(&app, &base, &counts, &activity, &consumers))
        }
    };
    view::respond(
        StatusCode::OK,
        view::page(
            &base,
            app.options.read_only,
            "Overview",
            Nav::Overview,
            body,
        ),
    )
}

/// `/live/overview`: the overview's figures re-rendered each time one of
/// them is read again.
pub(crate) async fn live(
    State(app): State<Arc<App>>,
    Extension(base): Extension<Base>,
) -> impl IntoResponse {
    let receivers = (
        app.counts.subscribe(),
        app.activity.subscribe(),
        app.consumers.subscribe(),
    );
    let events = stream::unfold((app, base, receivers, true), |state| async move {
        let (app, base, (mut counts, mut activity, mut consumers), first) = state;
        if !first {
            tokio::select! {
                changed = counts.changed() => changed.ok()?,
                changed = activity.changed() => changed.ok()?,
                changed = consumers.changed() => changed.ok()?,
            }
        }
        let html = fragment(
            &app,
            &base,
            &counts.borrow_and_update().clone(),
            &activity.borrow_and_update().clone(),
            &consumers.borrow_and_update().clone(),
        );
        let event = Event::default().event("overview").data(html.into_string());
        Some((Ok(event), (app, base, (counts, activity, consumers), false)))
    });
    super::live(events)
}

/// One category's line: its messages and writes.
#[derive(Debug, Default)]
struct CategoryLine {
    messages: i64,
    estimated: bool,
    per_minute: f64,
    recent: i64,
    last_written: Option<chrono::DateTime<Utc>>,
}

fn fragment(
    app: &App,
    base: &Base,
    counts: &Latest<Stats>,
    activity: &Latest<Activity>,
    consumers: &Latest<ConsumersView>,
) -> Markup {
    let now = Utc::now();
    let mut lines: BTreeMap<String, CategoryLine> = BTreeMap::new();
    let counted = counts
        .as_ref()
        .and_then(|snapshot| snapshot.value.as_ref().ok());
    for line in counted
        .map(|stats| stats.lines.as_slice())
        .unwrap_or_default()
    {
        let Some(category) = &line.category else {
            continue;
        };
        let entry = lines.entry(category.clone()).or_default();
        entry.messages += line.message_count;
        entry.estimated |= line.estimated;
    }
    let rates = activity
        .as_ref()
        .and_then(|snapshot| snapshot.value.as_ref().ok());
    for line in rates
        .map(|activity| activity.categories.as_slice())
        .unwrap_or_default()
    {
        let entry = lines.entry(line.category.clone()).or_default();
        entry.per_minute = line.per_minute;
        entry.recent = line.messages;
        entry.last_written = Some(line.last_written);
    }
    let window = rates.map_or(app.options.activity_window, |activity| activity.covered);
    let window_text = view::span_between(
        now - chrono::Duration::from_std(window).unwrap_or_default(),
        now,
    );
    html! {
        div.columns {
            section.panel {
                header.panel-head {
                    h2 { "Categories" }
                    @if let Some(snapshot) = counts { (view::freshness(snapshot.taken_at, now)) }
                }
                @match (counts, counted) {
                    (None, _) => (view::loading()),
                    (Some(snapshot), None) => (view::failed(snapshot.value.as_ref().err().map_or("", String::as_str))),
                    (Some(_), Some(stats)) => {
                        @if let Some(sampled) = stats.sampled {
                            p.note {
                                "Counts marked ~ are estimated from a sample of "
                                (format!("{sampled:.2}")) "% of the table; small categories are counted. Total: "
                                (view::count(stats.total, true)) " messages."
                            }
                        }
                        @if lines.is_empty() {
                            (view::empty("The store has no messages yet."))
                        } @else {
                            table.data {
                                thead { tr {
                                    th { "Category" }
                                    th.num { "Messages" }
                                    th.num title=(format!("messages per minute over the last {window_text}")) { "Per minute" }
                                    th.num { "Last " (window_text) }
                                    th { "Last written" }
                                } }
                                tbody {
                                    @for (category, line) in &lines {
                                        tr {
                                            @if let Some(kind) = bookkeeping(category) {
                                                td.mono.bookkeeping title=(format!("consumers' {kind} streams")) { a href=(base.stream(category)) { (category) } }
                                            } @else {
                                                td.mono { a href=(base.stream(category)) { (category) } }
                                            }
                                            td.num { (view::count(line.messages, line.estimated)) }
                                            td.num { @if line.recent > 0 { (format!("{:.1}", line.per_minute)) } @else { span.muted { "0" } } }
                                            td.num { (view::number(line.recent)) }
                                            td { @if let Some(time) = line.last_written { (view::ago(time, now)) } @else { span.muted { "before the window" } } }
                                        }
                                    }
                                }
                            }
                        }
                        @if let Some(activity) = rates {
                            @if activity.cut {
                                p.note { "More than " (view::number(ebb_admin::ACTIVITY_ROWS)) " messages were written in the window: the rates are of the last " (window_text) "." }
                            }
                        } @else if let Some(Err(error)) = activity.as_ref().map(|snapshot| &snapshot.value) {
                            (view::failed(error))
                        }
                    }
                }
            }
            section.panel {
                header.panel-head {
                    h2 { a href=(base.url("/consumers")) { "Consumers" } }
                    @if let Some(snapshot) = consumers { (view::freshness(snapshot.taken_at, now)) }
                }
                @match consumers.as_ref().map(|snapshot| &snapshot.value) {
                    None => (view::loading()),
                    Some(Err(error)) => (view::failed(error)),
                    Some(Ok(view)) if view.lines.is_empty() => (view::empty("No consumer has recorded a position yet.")),
                    Some(Ok(consumers)) => {
                        table.data {
                            thead { tr {
                                th { "Consumer" }
                                th.num { "Lag" }
                                th { "Waiting" }
                                th.num { "Parked" }
                                th.num { "Failures" }
                            } }
                            tbody {
                                @for (line, waiting) in consumers.lines.iter().zip(&consumers.waiting) {
                                    tr.behind[line.lag > 0] {
                                        td.mono { (consumer_link(base, line)) }
                                        td.num { (view::count(line.lag, line.estimated)) }
                                        td { @if let Some(time) = waiting { (view::span_between(*time, now)) } @else { span.muted { "caught up" } } }
                                        td.num {
                                            @if line.parked > 0 {
                                                a.warn href=(base.url(&format!("/parked{}", query(&[("category", Some(line.category.clone())), ("consumer", line.identifier.clone())])))) { (line.parked) }
                                            } @else { span.muted { "0" } }
                                        }
                                        td.num { @if line.failures > 0 { span.warn { (line.failures) } } @else { span.muted { "0" } } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The kind of a consumers' own category (`account:position`,
/// `account:command+parked`), shown quieter than the categories a
/// component writes, as what it records is the consumers' bookkeeping.
fn bookkeeping(category: &str) -> Option<&'static str> {
    [ebb_admin::POSITION, ebb_admin::FAILURES, ebb_admin::PARKED]
        .into_iter()
        .find(|kind| {
            category
                .strip_suffix(kind)
                .is_some_and(|rest| rest.ends_with(':') || rest.ends_with('+'))
        })
}

#[cfg(test)]
mod tests {
    use super::bookkeeping;

    #[test]
    fn consumers_own_categories_are_told_apart() {
        assert_eq!(bookkeeping("account:position"), Some("position"));
        assert_eq!(bookkeeping("account:command+parked"), Some("parked"));
        assert_eq!(bookkeeping("account:failures"), Some("failures"));
        assert_eq!(bookkeeping("account"), None);
        assert_eq!(bookkeeping("account:command"), None);
        assert_eq!(bookkeeping("deposition"), None);
    }
}
