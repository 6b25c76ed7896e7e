//! A web dashboard for an ebb message store (Message DB-compatible): what
//! an operator would rather look at than query.
//!
//! It shows, from the same queries as the `ebb` command line
//! ([`ebb_admin`]):
//!
//! | page | what it shows |
//! | --- | --- |
//! | `/` | the categories with their message counts and write rates over the last minutes, and the consumers with their lag, parked messages and failures; live |
//! | `/streams?q=account-*` | streams and categories found by name (`*` for any text), a page at a time |
//! | `/streams/NAME` | a stream's or a category's messages, newest first (live) or from a position, with their data and metadata, and links along causation and correlation |
//! | `/consumers` | every consumer: its position, its category's head, its lag in messages and in time, when it last recorded, its failures and parked messages; live |
//! | `/parked` | the parked messages by consumer with their error, filtered by consumer, type or error text; replay or discard one, a selection, or all that match, after a confirmation |
//! | `/trace/ID` | the causation tree of what followed a message, or of a correlation |
//!
//! The pages are rendered on the server; the only scripts are htmx and
//! its server-sent events extension (vendored, see `assets/VENDORED.md`)
//! and a few lines of the dashboard's own, all embedded in the binary: no
//! page loads anything from any other host.
//!
//! # Serving it
//!
//! [`router`] gives an `axum::Router` to mount anywhere, as a path of a
//! component's own server: every link and asset URL a page emits starts
//! with the prefix it was nested under. [`serve`] listens on an address
//! of its own, as `ebb dashboard` does.
//!
//! ```no_run
//! use ebb_message_store::PgStore;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgStore::from_env()?;
//! let options = ebb_dashboard::Options {
//!     read_only: true,
//!     ..ebb_dashboard::Options::from_env()
//! };
//! let app = axum::Router::new()
//!     .route("/health", axum::routing::get(|| async { "ok" }))
//!     .nest("/ops/dashboard", ebb_dashboard::router(store, options));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Live, and light on the database
//!
//! The overview, the consumers page and a stream's newest messages update
//! themselves through server-sent events, and stop while their browser
//! tab is hidden. Each figure is read by one shared refresher (module
//! `live`), at most once per [`Options::refresh`] (never more than once a
//! second), however many pages are open, and not at all when none is;
//! counts that would scan a large table are estimates, and say so.
//!
//! # Safe by default
//!
//! - [`serve`] refuses a non-loopback address unless a token is set
//!   ([`Options::token`], `EBB_DASHBOARD_TOKEN`); with a token, every
//!   request needs it (`Authorization: Bearer TOKEN`, or the cookie that
//!   opening a page once with `?token=TOKEN` sets), compared in constant
//!   time.
//! - [`Options::read_only`] hides every action and refuses every action
//!   request (403).
//! - Actions are `POST`s carrying a per-process CSRF token, refused from
//!   another site (`Origin`, `Sec-Fetch-Site`), confirmed on a page that
//!   shows what they touch, and logged with `tracing` (consumer, global
//!   positions, count).
//! - Every response carries a `Content-Security-Policy` that allows only
//!   the dashboard's own scripts and styles (no inline ones),
//!   `X-Content-Type-Options: nosniff` and `Referrer-Policy: same-origin`.
//!
//! # Modules
//!
//! The public API is [`router`], [`serve`], [`check_listen`], [`Options`]
//! and [`Error`]; behind them: `pages` (one module per page), `live` (the
//! shared refreshers), `guard` (headers, token, action checks), `paths`
//! (the base path and the URLs), `view` (the page shell and formatting)
//! and `assets` (the embedded files).

mod app;
mod assets;
mod error;
mod guard;
mod live;
mod options;
mod pages;
mod paths;
mod view;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use ebb_message_store::PgStore;

pub use error::Error;
pub use options::{DEFAULT_LISTEN, MIN_REFRESH, Options, TOKEN_VARIABLE};

/// How long requests in flight get to finish once [`serve`] is told to
/// stop: live pages' event streams never finish by themselves.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The dashboard as a router over `store`, to serve as it is or to nest
/// under a path prefix (`Router::nest("/ops", router(store, options))`).
///
/// The routes are those of the table in the crate's documentation, plus
/// `/live/...` (the pages' event streams), `POST /parked/replay` and
/// `POST /parked/discard` (the actions) and `/assets/...` (the embedded
/// files). Intervals in `options` below [`MIN_REFRESH`] are taken as
/// that. The router holds the store's pool; its refreshers run only
/// while a page watches them.
pub fn router(store: PgStore, options: Options) -> Router {
    let options = options.normalized();
    let configured_base = options.base_path.clone();
    let app = app::App::new(store, options);
    Router::new()
        .route("/", get(pages::overview::page))
        .route("/live/overview", get(pages::overview::live))
        .route("/streams", get(pages::streams::search))
        .route("/streams/{name}", get(pages::streams::stream))
        .route("/live/streams/{name}", get(pages::streams::live))
        .route("/consumers", get(pages::consumers::page))
        .route("/live/consumers", get(pages::consumers::live))
        .route("/parked", get(pages::parked::page))
        .route("/parked/replay", post(pages::parked::replay))
        .route("/parked/discard", post(pages::parked::discard))
        .route("/trace/{id}", get(pages::trace::page))
        .route("/assets/{name}", get(assets::serve))
        .fallback(pages::not_found)
        .layer(from_fn_with_state(Arc::clone(&app), guard::token))
        .layer(from_fn(move |request, next| {
            paths::find_base(configured_base.clone(), request, next)
        }))
        .layer(from_fn(guard::headers))
        .with_state(app)
}

/// Refuses `listen` when it is not a loopback address and `options` has
/// no token ([`Error::Unprotected`]): what [`serve`] checks first, for a
/// caller that wants the refusal before anything else (a command line's
/// usage error).
pub fn check_listen(listen: SocketAddr, options: &Options) -> Result<(), Error> {
    if listen.ip().is_loopback() || options.active_token().is_some() {
        Ok(())
    } else {
        Err(Error::Unprotected { listen })
    }
}

/// Serves the dashboard over `store` on `listen` until `shutdown`
/// completes; then requests in flight get a second to finish.
///
/// [`Error::Unprotected`] before anything is listened on when `listen`
/// is not a loopback address and `options` has no token
/// ([`check_listen`]); [`Error::Bind`] when the address cannot be
/// listened on.
pub async fn serve(
    store: PgStore,
    options: Options,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    check_listen(listen, &options)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| Error::Bind { listen, source })?;
    let local = listener.local_addr().unwrap_or(listen);
    tracing::info!(
        address = %local,
        read_only = options.read_only,
        token = options.active_token().is_some(),
        "dashboard: listening on http://{local}/"
    );
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router(store, options)).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopping.send(());
    });
    tokio::select! {
        served = server => served.map_err(Error::Serve),
        () = async {
            if stopped.await.is_ok() {
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => Ok(()),
    }
}
