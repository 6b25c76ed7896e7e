//! The browser harness against a tiny page of its own: a button whose
//! script asks `confirm()` and then adds an element, as the dashboard's
//! actions will. Fails, not skips, without Chromium: CI installs it.

use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use ebb_tests::browser::Browser;

const PAGE: &str = r#"<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>browser harness</title>
<script src="/app.js" defer></script>
</head>
<body style="font-family: sans-serif; margin: 2em">
<h1>Browser harness</h1>
<p>The button asks first, then adds a row.</p>
<button id="add">Add a row</button>
<ul id="rows"></ul>
</body>
</html>
"#;

const SCRIPT: &str = r#"
document.getElementById("add").addEventListener("click", () => {
  if (!confirm("Add a row?")) return;
  const row = document.createElement("li");
  row.className = "row";
  row.textContent = "Row added after confirmation";
  document.getElementById("rows").appendChild(row);
});
"#;

/// Serves the page on a free loopback port; returns its address.
async fn serve_page() -> String {
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/app.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], SCRIPT).into_response() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("the listener's address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_confirmed_in_a_dialog_adds_a_row_the_harness_sees() {
    let url = serve_page().await;
    let mut browser = match Browser::start().await {
        Ok(browser) => browser,
        Err(err) => panic!("{}", error_chain(&err)),
    };

    browser.goto(&url).await.expect("the page opens");
    browser.click("#add").await.expect("the button clicks");
    let asked = browser.accept_dialog().await.expect("a dialog");
    assert_eq!(asked, "Add a row?");
    let row = browser
        .wait_for_text("#rows .row", "added after confirmation")
        .await
        .expect("the row appears");
    assert_eq!(
        row.text().await.expect("the row's text"),
        "Row added after confirmation"
    );
    assert_eq!(
        browser.text("h1").await.expect("the heading"),
        "Browser harness"
    );

    let path = browser
        .screenshot("browser_harness")
        .await
        .expect("a screenshot");
    let png = std::fs::read(&path).expect("the screenshot file");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );

    // A wait that cannot succeed ends in time and says what it waited for
    // and what the page showed.
    browser.set_wait(Duration::from_millis(300));
    let err = browser
        .wait_for("#never")
        .await
        .expect_err("no such element");
    assert!(err.is_timeout(), "{err}");
    let message = err.to_string();
    assert!(message.contains("`#never`"), "{message}");
    assert!(
        message.contains("Row added after confirmation"),
        "{message}"
    );

    browser.close().await.expect("the browser closes");
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
