use ebb_message_store::PgStore;

/// The component's own HTTP server, with the dashboard under
/// /ops/dashboard (links and assets follow the prefix).
pub async fn serve(store: PgStore) -> std::io::Result<()> {
    let options = ebb_dashboard::Options {
        read_only: true,
        ..ebb_dashboard::Options::from_env()
    };
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .nest("/ops/dashboard", ebb_dashboard::router(store, options));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    axum::serve(listener, app).await
}
