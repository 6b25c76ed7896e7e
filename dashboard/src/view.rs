//! The pages' shared parts: the HTML shell with the navigation bar, the
//! error page, and how numbers, times and JSON are shown.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::assets::ASSETS;
use crate::paths::Base;

/// htmx's settings, read from the page: no inline styles (the CSP allows
/// none), no `eval`, no scripts from swapped content.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0,"selfRequestsOnly":true}"#;

/// The pages of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Streams,
    Consumers,
    Parked,
    /// A page not in the bar (a trace, an error).
    None,
}

/// A whole page: `title`, the navigation bar with `active` marked, and
/// `body`.
pub(crate) fn page(base: &Base, read_only: bool, title: &str, active: Nav, body: Markup) -> Markup {
    let assets = &*ASSETS;
    let asset = |name: &str| base.url(&format!("/assets/{name}"));
    let link = |nav: Nav, path: &str, label: &str| {
        html! {
            a href=(base.url(path)) aria-current=[(nav == active).then_some("page")] { (label) }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (title) " · ebb" }
                link rel="stylesheet" href=(asset(&assets.css.name));
                script src=(asset(&assets.htmx.name)) defer {}
                script src=(asset(&assets.sse.name)) defer {}
                script src=(asset(&assets.script.name)) defer {}
            }
            body {
                header.bar {
                    a.brand href=(base.url("/")) { "ebb" }
                    nav {
                        (link(Nav::Overview, "/", "Overview"))
                        (link(Nav::Streams, "/streams", "Streams"))
                        (link(Nav::Consumers, "/consumers", "Consumers"))
                        (link(Nav::Parked, "/parked", "Parked"))
                    }
                    form.search method="get" action=(base.url("/streams")) role="search" {
                        input type="search" name="q" placeholder="Find streams: account-*" aria-label="Find streams";
                    }
                    @if read_only {
                        span.badge.muted title="Actions are hidden and refused" { "read-only" }
                    }
                }
                // Rendered once, into the page: the body is moved in.
                main { (PreEscaped(body.into_string())) }
            }
        }
    }
}

/// `markup` as an HTML response.
pub(crate) fn respond(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// A page saying what went wrong, with `status`.
pub(crate) fn error_page(base: &Base, status: StatusCode, title: &str, message: &str) -> Response {
    let body = html! {
        section.error-page {
            h1 { (status.as_u16()) " · " (title) }
            p { (message) }
            p { a href=(base.url("/")) { "Back to the overview" } }
        }
    };
    respond(status, page(base, false, title, Nav::None, body))
}

/// `n` with thousands separated: 1,234,567.
pub(crate) fn number(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if n < 0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

/// A count, marked `~` with a tooltip when it is an estimate.
pub(crate) fn count(n: i64, estimated: bool) -> Markup {
    html! {
        @if estimated {
            span.estimate title="estimated, not counted" { "~" (number(n)) }
        } @else {
            (number(n))
        }
    }
}

/// How long ago `time` was, from `now`: "4 s", "3 min", "2 h", "5 d".
pub(crate) fn span_between(time: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - time).num_seconds().max(0);
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3_600 => format!("{} min", seconds / 60),
        3_600..86_400 => format!("{} h {} min", seconds / 3_600, seconds % 3_600 / 60),
        _ => format!("{} d {} h", seconds / 86_400, seconds % 86_400 / 3_600),
    }
}

/// A time, UTC, to the second, with how long ago in its tooltip.
pub(crate) fn time(time: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(time.to_rfc3339()) title=(format!("{} ago", span_between(time, now))) {
            (time.format("%Y-%m-%d %H:%M:%S"))
        }
    }
}

/// A time as how long ago, with the time itself in its tooltip.
pub(crate) fn ago(time: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(time.to_rfc3339()) title=(time.format("%Y-%m-%d %H:%M:%S%.6f UTC").to_string()) {
            (span_between(time, now)) " ago"
        }
    }
}

/// How fresh a cached figure is: "updated 3 s ago".
pub(crate) fn freshness(taken_at: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        span.freshness title=(format!("read at {}", taken_at.format("%H:%M:%S UTC"))) {
            "updated " (span_between(taken_at, now)) " ago"
        }
    }
}

/// JSON text pretty-printed (as it is when it does not parse).
pub(crate) fn json(text: &str) -> Markup {
    let pretty = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| text.to_owned());
    html! { pre.json { code { (pretty) } } }
}

/// An empty-state line in a table's place.
pub(crate) fn empty(text: &str) -> Markup {
    html! { p.empty { (text) } }
}

/// A query's error, where its figures would be.
pub(crate) fn failed(error: &str) -> Markup {
    html! { p.alert { "Cannot read this: " (error) } }
}

/// Nothing read yet: the figures come live.
pub(crate) fn loading() -> Markup {
    html! { p.empty { "Reading the store… the figures appear here as soon as they are read." } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(number(0), "0");
        assert_eq!(number(999), "999");
        assert_eq!(number(1_000), "1,000");
        assert_eq!(number(-1_234_567), "-1,234,567");
    }

    #[test]
    fn spans_read_in_the_largest_unit() {
        let now: DateTime<Utc> = "2024-05-06T07:08:09Z".parse().unwrap();
        let at = |seconds: i64| now - chrono::Duration::seconds(seconds);
        assert_eq!(span_between(at(5), now), "5 s");
        assert_eq!(span_between(at(125), now), "2 min");
        assert_eq!(span_between(at(7_260), now), "2 h 1 min");
        assert_eq!(span_between(at(90_000), now), "1 d 1 h");
        assert_eq!(span_between(at(-5), now), "0 s");
    }
}
