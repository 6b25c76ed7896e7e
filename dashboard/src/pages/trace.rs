//! `/trace/ID`: the causation tree of what followed a message (by its
//! id), or of the messages correlated to a stream (by its name).

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use ebb_admin::{Error, Origin};
use maud::html;

use crate::app::{App, one_line};
use crate::paths::Base;
use crate::view::{self, Nav};

/// The most messages a trace page shows.
const TRACE_LIMIT: u64 = 500;

/// The most messages a trace page searches where an exact trace would
/// scan the table (a store without the causation index): small enough
/// for the page to answer within 300 ms on the benchmark's store of
/// 5,000,000 messages (BENCHMARKS.md).
const TRACE_WINDOW: u64 = 50_000;

pub(crate) async fn page(
    State(app): State<Arc<App>>,
    Extension(base): Extension<Base>,
    Path(id): Path<String>,
) -> Response {
    let origin = match Origin::parse(&id) {
        Ok(origin) => origin,
        Err(err) => {
            return view::error_page(
                &base,
                StatusCode::BAD_REQUEST,
                "Not a message id or stream name",
                &one_line(&err),
            );
        }
    };
    let trace = match ebb_admin::trace_within(&app.store, &origin, Some(TRACE_LIMIT), TRACE_WINDOW)
        .await
    {
        Ok(trace) => trace,
        Err(Error::NotFound(message)) => {
            return view::error_page(&base, StatusCode::NOT_FOUND, "Nothing to trace", &message);
        }
        Err(err) => return super::streams::internal(&base, &err),
    };
    let now = Utc::now();
    let heading = match &origin {
        Origin::Message(id) => html! { "What followed message " span.mono { (id) } },
        Origin::Correlation(stream) => {
            html! { "Messages correlated to " a.mono href=(base.stream(stream)) { (stream) } }
        }
    };
    let body = html! {
        h1 { "Trace" }
        p.lead { (heading) }
        table.data.trace {
            thead { tr {
                th { "Message" }
                th { "Stream" }
                th.num { "Position" }
                th.num { "Global" }
                th { "Written" }
            } }
            tbody {
                @for line in &trace.lines {
                    tr {
                        td.mono.tree {
                            span.muted { (line.drawn) }
                            a href=(base.trace(&line.id)) title=(line.id) { (line.type_name) }
                        }
                        td.mono { a href=(base.stream(&line.stream_name)) { (line.stream_name) } }
                        td.num.mono { a href=(format!("{}?from={}#m{}", base.stream(&line.stream_name), line.position, line.global_position)) { (line.position) } }
                        td.num.mono { (line.global_position) }
                        td { (view::time(line.time, now)) }
                    }
                }
            }
        }
        @if trace.cut {
            p.note { "Only the first " (TRACE_LIMIT) " messages are shown." }
        }
        @if let Some((from, to)) = trace.searched {
            p.note { "Searched global positions " (view::number(from)) " to " (view::number(to)) " only: without the causation index (see ebb trace --help) a whole trace would scan the store. ebb trace shows it whole." }
        }
    };
    view::respond(
        StatusCode::OK,
        view::page(&base, app.options.read_only, "Trace", Nav::None, body),
    )
}
