//! The pages, one module each, and the live event streams of those that
//! refresh.

pub(crate) mod consumers;
pub(crate) mod overview;
pub(crate) mod parked;
pub(crate) mod streams;
pub(crate) mod trace;

use std::convert::Infallible;

use axum::Extension;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse as _, Response};
use futures_util::Stream;

use crate::paths::Base;
use crate::view;

/// The live events of a page: `stream`, with a comment every 15 s so that
/// proxies keep the connection open.
pub(crate) fn live<S>(stream: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Any path the dashboard does not have.
pub(crate) async fn not_found(Extension(base): Extension<Base>) -> Response {
    view::error_page(
        &base,
        StatusCode::NOT_FOUND,
        "No such page",
        "The dashboard has no page at this address.",
    )
}
