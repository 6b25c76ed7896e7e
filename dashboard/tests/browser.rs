//! The dashboard as a person uses it: served on a loopback port over a
//! test database with data, driven in headless Chromium
//! ([`ebb_tests::browser::Browser`]), checked by what the page shows. Each
//! test saves a screenshot named after it under
//! `target/dashboard-screenshots/`.
//!
//! Fails, not skips, without Chromium and chromedriver: CI installs them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Dashboard, data, options, parked_notes, write};
use ebb_consumer::{Consumer, ConsumerConfig, Control};
use ebb_handler::{BoxError, Dispatcher, Received, message};
use ebb_message_store::{Message, Metadata, PgStore};
use ebb_tests::browser::{Browser, fantoccini};
use tokio::sync::mpsc;

/// How long a test may wait for the store (a consumer's parking, say),
/// as against the browser's waits, which the harness bounds. Generous: a
/// bound on a stall, not a measure of speed, on a loaded 2-core machine.
const STORE_WAIT: Duration = Duration::from_secs(60);

/// Held by each test while it runs: one Chromium, one dashboard and one
/// consumer at a time, since six of each at once on a 2-core machine
/// starve one another past any wait.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A dashboard served on a free loopback port, and its address.
struct Served {
    dashboard: Dashboard,
    /// `http://127.0.0.1:PORT`, without a trailing `/`.
    url: String,
}

impl Served {
    async fn start(options: ebb_dashboard::Options) -> Self {
        let dashboard = Dashboard::new(options).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("the listener's address");
        // Ends with the test's runtime; a live page's event stream would
        // keep a graceful shutdown waiting.
        tokio::spawn(axum::serve(listener, dashboard.router.clone()).into_future());
        Self {
            dashboard,
            url: format!("http://{address}"),
        }
    }

    fn store(&self) -> &PgStore {
        &self.dashboard.store
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

async fn browser() -> Browser {
    match Browser::start().await {
        Ok(browser) => browser,
        Err(err) => panic!("{}", error_chain(&err)),
    }
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

/// Unwraps a browser step, quoting the error's whole chain (a timeout's
/// says what the page showed).
trait Step<T> {
    fn step(self, what: &str) -> T;
}

impl<T> Step<T> for Result<T, ebb_tests::browser::Error> {
    fn step(self, what: &str) -> T {
        self.unwrap_or_else(|err| panic!("{what}: {}", error_chain(&err)))
    }
}

/// The visible text of each cell of the first row matching `rows` (a CSS
/// selector) whose first cell reads `first`, once there is one.
async fn row(browser: &Browser, rows: &str, first: &str) -> Vec<String> {
    row_by(browser, rows, 0, first).await
}

/// The visible text of each cell of the first row matching `rows` whose
/// cell `column` reads `text`, once there is one. Read in one script so
/// that a live update cannot replace the row between two reads.
async fn row_by(browser: &Browser, rows: &str, column: usize, text: &str) -> Vec<String> {
    const SCRIPT: &str = r"
        const [rows, column, text] = arguments;
        for (const row of document.querySelectorAll(rows)) {
            const cells = Array.from(row.cells, (cell) => cell.innerText.trim());
            if (cells[column] === text) return cells;
        }
        return null;
    ";
    let found = tokio::time::timeout(ebb_tests::browser::DEFAULT_WAIT, async {
        loop {
            let args = vec![rows.into(), column.into(), text.into()];
            let cells = browser
                .client()
                .execute(SCRIPT, args)
                .await
                .expect("the script runs");
            if let Ok(cells) = serde_json::from_value::<Vec<String>>(cells) {
                return cells;
            }
            // The harness's own pace between two looks at the DOM.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    match found {
        Ok(cells) => cells,
        Err(_) => {
            let page = browser.text("main").await.unwrap_or_default();
            panic!("no row `{rows}` with {text:?} in column {column}; the page shows:\n{page}")
        }
    }
}

async fn screenshot(browser: &Browser, name: &str) {
    browser.screenshot(name).await.step("a screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_lists_the_categories_and_a_consumers_lag() {
    let _one = ONE_AT_A_TIME.lock().await;
    let served = Served::start(options()).await;
    let store = served.store();
    for n in 1..=3 {
        write(
            store,
            &format!("account-{n}"),
            data("Opened", serde_json::json!({ "n": n })),
        )
        .await;
    }
    let mut orders = Vec::new();
    for n in 1..=5 {
        orders.push(
            write(
                store,
                &format!("order-{n}"),
                data("Placed", serde_json::json!({ "n": n })),
            )
            .await,
        );
    }
    let shipped = write(store, "shipment-1", data("Shipped", serde_json::json!({}))).await;
    // A consumer of `order` that recorded the second order as handled:
    // the three orders after it are its lag.
    let recorded = &orders[1];
    write(
        store,
        "order:position-fulfilment",
        data(
            ebb_consumer::POSITION_TYPE,
            serde_json::json!({ "position": recorded.global_position }),
        ),
    )
    .await;
    // One that is caught up.
    write(
        store,
        "shipment:position-notify",
        data(
            ebb_consumer::POSITION_TYPE,
            serde_json::json!({ "position": shipped.global_position }),
        ),
    )
    .await;

    let browser = browser().await;
    browser
        .goto(&served.at("/"))
        .await
        .step("the overview opens");
    assert_eq!(browser.text("h1").await.step("the heading"), "Overview");

    let categories = "section.panel:first-child table.data tbody tr";
    let account = row(&browser, categories, "account").await;
    assert_eq!(account[1], "3", "account's messages: {account:?}");
    let order = row(&browser, categories, "order").await;
    assert_eq!(order[1], "5", "order's messages: {order:?}");
    row(&browser, categories, "shipment").await;

    let consumers = "section.panel:nth-child(2) table.data tbody tr";
    let fulfilment = row(&browser, consumers, "order · fulfilment").await;
    assert_eq!(fulfilment[1], "3", "the lag: {fulfilment:?}");
    assert_ne!(fulfilment[2], "caught up", "{fulfilment:?}");
    let notify = row(&browser, consumers, "shipment · notify").await;
    assert_eq!(notify[1], "0", "no lag: {notify:?}");
    assert_eq!(notify[2], "caught up", "{notify:?}");

    // A person follows the consumer to its own page.
    browser
        .click("a[href='/consumers']")
        .await
        .step("the consumers link");
    let line = row(&browser, "table.data tbody tr", "order").await;
    assert_eq!(line[1], "fulfilment", "{line:?}");
    assert_eq!(line[4], "3", "the lag on the consumers page: {line:?}");

    browser
        .goto(&served.at("/"))
        .await
        .step("back to the overview");
    row(&browser, consumers, "order · fulfilment").await;
    screenshot(
        &browser,
        "the_overview_lists_the_categories_and_a_consumers_lag",
    )
    .await;
    browser.close().await.step("the browser closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_finds_a_stream_and_opens_it() {
    let _one = ONE_AT_A_TIME.lock().await;
    let served = Served::start(options()).await;
    let store = served.store();
    for stream in ["account-1", "account-2", "account-42", "order-42"] {
        write(store, stream, data("Opened", serde_json::json!({}))).await;
    }
    write(
        store,
        "account-42",
        data("Deposited", serde_json::json!({ "amount": 4200 })),
    )
    .await;

    let browser = browser().await;
    browser
        .goto(&served.at("/"))
        .await
        .step("the overview opens");
    let search = ".bar form.search input[name='q']";
    browser
        .fill(search, "account-4")
        .await
        .step("typing into the search field");
    browser
        .wait_for(search)
        .await
        .step("the search field")
        .send_keys(&fantoccini::key::Key::Enter.to_string())
        .await
        .expect("Enter submits the search");

    browser
        .wait_for_text("table.data tbody tr", "account-42")
        .await
        .step("the stream found");
    let results = browser.text("main").await.step("the results");
    assert!(
        !results.contains("account-1") && !results.contains("order-42"),
        "only names beginning with account-4: {results}"
    );
    let url = browser.client().current_url().await.expect("the address");
    assert_eq!(url.path(), "/streams");
    assert_eq!(url.query(), Some("q=account-4"));
    assert_eq!(
        browser
            .wait_for("main input[name='q']")
            .await
            .step("the page's own field")
            .prop("value")
            .await
            .expect("its value")
            .as_deref(),
        Some("account-4"),
        "the page says what it searched for"
    );
    let found_row = row(&browser, "table.data tbody tr", "account-42").await;
    assert_eq!(found_row[1], "2", "its messages: {found_row:?}");
    screenshot(&browser, "a_search_finds_a_stream_and_opens_it").await;

    browser
        .click("table.data a[href='/streams/account-42']")
        .await
        .step("the stream's link");
    browser
        .wait_for_text("h1", "account-42")
        .await
        .step("the stream's page");
    browser
        .wait_for_text("article.message .type", "Deposited")
        .await
        .step("its newest message");
    browser.close().await.step("the browser closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_messages_data_and_metadata_show_as_formatted_json() {
    let _one = ONE_AT_A_TIME.lock().await;
    let served = Served::start(options()).await;
    let store = served.store();
    let metadata = Metadata {
        correlation_stream_name: Some("transfer-9".into()),
        ..Metadata::default()
    };
    let opened = write(
        store,
        "account-1",
        data(
            "Opened",
            serde_json::json!({ "owner": { "name": "Ada Lovelace", "city": "London" } }),
        )
        .with_metadata(metadata),
    )
    .await;
    let deposit = serde_json::json!({
        "amount": 4200,
        "currency": "GBP",
        "tags": ["salary", "monthly"],
        "memo": "a memo long enough to need wrapping in its column, as a person's note on a transfer often is",
    });
    let mut metadata = Metadata::default();
    metadata.follow(&opened);
    let deposited = write(
        store,
        "account-1",
        data("Deposited", deposit.clone()).with_metadata(metadata),
    )
    .await;

    let browser = browser().await;
    browser
        .goto(&served.at("/streams/account-1"))
        .await
        .step("the stream's page");
    let article = format!("article#m{}", deposited.global_position);
    let shown_data = browser
        .text(&format!(
            "{article} .message-body > div:first-child pre.json"
        ))
        .await
        .step("the data");
    assert_eq!(
        shown_data,
        serde_json::to_string_pretty(&deposit).unwrap(),
        "the data, pretty-printed"
    );
    let shown_metadata = browser
        .text(&format!(
            "{article} .message-body > div:nth-child(2) pre.json"
        ))
        .await
        .step("the metadata");
    let parsed: serde_json::Value =
        serde_json::from_str(&shown_metadata).expect("the metadata shows as JSON");
    assert_eq!(parsed["correlationStreamName"], "transfer-9");
    assert_eq!(parsed["causationMessageStreamName"], "account-1");
    assert_eq!(
        shown_metadata,
        serde_json::to_string_pretty(&parsed).unwrap(),
        "the metadata, pretty-printed"
    );
    // The link along causation names the message it follows.
    browser
        .wait_for_text(
            &format!("{article} .message-links"),
            "caused by account-1#0",
        )
        .await
        .step("the causation link");
    screenshot(
        &browser,
        "a_messages_data_and_metadata_show_as_formatted_json",
    )
    .await;
    browser.close().await.step("the browser closes");
}

#[message]
struct Noted {
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_message_replayed_from_the_page_is_handled_and_leaves_the_list() {
    let _one = ONE_AT_A_TIME.lock().await;
    let served = Served::start(options()).await;
    let store = served.store();
    for n in 1..=3 {
        write(
            store,
            &format!("note-{n}"),
            data("Noted", serde_json::json!({ "n": n })),
        )
        .await;
    }
    // The consumer runs throughout; its handler fails on note 2 until
    // `fixed`, and says which notes it handled.
    let fixed = Arc::new(AtomicBool::new(false));
    let (handled, mut handled_rx) = mpsc::unbounded_channel::<i64>();
    let dispatcher = Dispatcher::new().on({
        let fixed = Arc::clone(&fixed);
        move |noted: Received<Noted>| {
            let (fixed, handled) = (Arc::clone(&fixed), handled.clone());
            async move {
                if noted.n == 2 && !fixed.load(Ordering::SeqCst) {
                    return Err(BoxError::from("note 2 cannot be handled yet"));
                }
                let _ = handled.send(noted.n);
                Ok(())
            }
        }
    });
    let config = ConsumerConfig {
        identifier: Some("w1".into()),
        poll_interval: Duration::from_millis(100),
        position_update_interval: 1,
        park_after_retries: true,
        handler_retry_ms: Vec::new(),
        ..ConsumerConfig::new("note")
    };
    let consumer = Consumer::new(config, ebb_tests::store_for(&served.dashboard.db, 4))
        .unwrap()
        .handler(dispatcher);
    let control = Control::new();
    let run = tokio::spawn({
        let control = control.clone();
        async move { consumer.run(&control).await }
    });
    let mut first = Vec::new();
    while first.len() < 2 {
        let n = tokio::time::timeout(STORE_WAIT, handled_rx.recv())
            .await
            .expect("notes 1 and 3 handled")
            .expect("the handler lives");
        first.push(n);
    }
    first.sort_unstable();
    assert_eq!(first, [1, 3]);
    let parked = wait_for_parked(store, 1).await;
    let item = format!("{}-w1-note", parked[0]);

    let browser = browser().await;
    browser
        .goto(&served.at("/parked"))
        .await
        .step("the parked page");
    let line = row_by(&browser, "table.parked tbody tr", 1, &parked[0].to_string()).await;
    assert_eq!(line[2], "note-2#0", "{line:?}");
    assert!(line[6].contains("note 2 cannot be handled yet"), "{line:?}");

    fixed.store(true, Ordering::SeqCst);
    browser
        .click(&format!(
            "table.parked button[name='one'][value='{item}'][formaction$='/parked/replay']"
        ))
        .await
        .step("the row's Replay button");
    browser
        .wait_for_text("h1", "Confirm: replay 1 parked message")
        .await
        .step("the confirmation");
    let asked = browser.text("main").await.step("the confirmation's text");
    assert!(asked.contains("note-2#0"), "{asked}");
    assert!(
        handled_rx.try_recv().is_err(),
        "nothing is replayed before the confirmation"
    );
    screenshot(
        &browser,
        "a_parked_message_replayed_from_the_page_is_handled_and_leaves_the_list_confirm",
    )
    .await;
    browser
        .click("button.primary")
        .await
        .step("the confirming button");
    browser
        .wait_for_text("h1", "1 replay request written")
        .await
        .step("the request written");

    let n = tokio::time::timeout(STORE_WAIT, handled_rx.recv())
        .await
        .expect("the running consumer replays note 2")
        .expect("the handler lives");
    assert_eq!(n, 2);
    // The handler returned; the consumer records the outcome next.
    wait_for_parked(store, 0).await;

    browser
        .click("a[href='/parked']")
        .await
        .step("back to the parked messages");
    browser
        .wait_for_text("main p.empty", "No message is parked.")
        .await
        .step("the empty list");
    browser
        .wait_for_absent("table.parked")
        .await
        .step("no parked row");
    screenshot(
        &browser,
        "a_parked_message_replayed_from_the_page_is_handled_and_leaves_the_list",
    )
    .await;
    browser.close().await.step("the browser closes");

    control.stop();
    tokio::time::timeout(STORE_WAIT, run)
        .await
        .expect("the consumer stops")
        .unwrap()
        .unwrap();
}

/// The global positions of the messages `note · w1` has parked and not
/// had replayed or discarded, once there are `count`.
async fn wait_for_parked(store: &PgStore, count: usize) -> Vec<i64> {
    tokio::time::timeout(STORE_WAIT, async {
        loop {
            let parked = ebb_admin::parked(store, "note", Some("w1")).await.unwrap();
            if parked.len() == count {
                return parked
                    .iter()
                    .map(|(_, message)| message.parked.global_position)
                    .collect();
            }
            // The consumer writes to the parked stream on its own pace.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{count} parked within {STORE_WAIT:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_written_while_the_page_is_open_appears_without_a_reload() {
    let _one = ONE_AT_A_TIME.lock().await;
    let served = Served::start(options()).await;
    let store = served.store();
    write(
        store,
        "account-7",
        data("Opened", serde_json::json!({ "owner": "Grace" })),
    )
    .await;

    let browser = browser().await;
    browser
        .goto(&served.at("/streams/account-7"))
        .await
        .step("the stream's page");
    browser
        .wait_for(".live.connected")
        .await
        .step("the page's live connection");
    // A reload would lose it.
    browser
        .client()
        .execute("window.ebbNotReloaded = true;", Vec::new())
        .await
        .expect("the marker is set");

    let deposited: Message = write(
        store,
        "account-7",
        data("Deposited", serde_json::json!({ "amount": 777 })),
    )
    .await;
    browser
        .wait_for_text(
            &format!("article#m{} pre.json", deposited.global_position),
            "777",
        )
        .await
        .step("the new message, without a reload");
    let kept = browser
        .client()
        .execute("return window.ebbNotReloaded === true;", Vec::new())
        .await
        .expect("the marker is read");
    assert_eq!(kept, serde_json::json!(true), "the page was not reloaded");
    let types = browser.text(".live").await.step("the messages");
    assert!(
        types.find("Deposited") < types.find("Opened"),
        "newest first: {types}"
    );
    screenshot(
        &browser,
        "a_message_written_while_the_page_is_open_appears_without_a_reload",
    )
    .await;

    // The overview too: a category written for the first time.
    browser.goto(&served.at("/")).await.step("the overview");
    browser
        .wait_for(".live.connected")
        .await
        .step("the overview's live connection");
    browser
        .client()
        .execute("window.ebbNotReloaded = true;", Vec::new())
        .await
        .expect("the marker is set");
    write(store, "audit-1", data("Noted", serde_json::json!({}))).await;
    row(
        &browser,
        "section.panel:first-child table.data tbody tr",
        "audit",
    )
    .await;
    let kept = browser
        .client()
        .execute("return window.ebbNotReloaded === true;", Vec::new())
        .await
        .expect("the marker is read");
    assert_eq!(
        kept,
        serde_json::json!(true),
        "the overview was not reloaded"
    );
    browser.close().await.step("the browser closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_mode_shows_no_action() {
    let _one = ONE_AT_A_TIME.lock().await;
    let served = Served::start(ebb_dashboard::Options {
        read_only: true,
        ..options()
    })
    .await;
    parked_notes(served.store(), &served.dashboard.db).await;

    let browser = browser().await;
    browser
        .goto(&served.at("/parked"))
        .await
        .step("the parked page");
    browser
        .wait_for_text("table.parked", "note 3 cannot be handled")
        .await
        .step("the parked messages");
    browser
        .wait_for_text(".bar .badge", "read-only")
        .await
        .step("the read-only badge");
    let buttons = browser
        .client()
        .find_all(fantoccini::Locator::Css("main button"))
        .await
        .expect("the buttons");
    let mut labels = Vec::new();
    for button in buttons {
        labels.push(button.text().await.expect("a button's label"));
    }
    assert_eq!(labels, ["Filter"], "only the filter's button");
    for selector in [
        "form[method='post']",
        "input[type='checkbox']",
        "[formaction]",
    ] {
        browser
            .wait_for_absent(selector)
            .await
            .step("no action on a read-only dashboard");
    }
    screenshot(&browser, "read_only_mode_shows_no_action").await;
    browser.close().await.step("the browser closes");
}

#[message]
struct PaymentRequested {
    order_id: i64,
    amount: i64,
}

/// The README's picture: a store as an operator meets it, with a few
/// categories written to, consumers behind by various lags and a payment
/// consumer that parked what its gateway refused. Run it, then compress
/// the overview into the repository:
///
/// ```text
/// cargo test -p ebb-dashboard --test browser -- --ignored readme
/// pngquant --force --quality 70-95 --output docs/dashboard.png target/dashboard-screenshots/readme_overview.png
/// optipng -o3 docs/dashboard.png
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "makes the README's screenshot"]
async fn readme_screenshots() {
    let _one = ONE_AT_A_TIME.lock().await;
    let served = Served::start(options()).await;
    let store = served.store();
    let mut last = std::collections::HashMap::new();
    for n in 0..120_i64 {
        let account = 1040 + n % 24;
        let (command, event) = if n % 5 == 4 {
            ("Withdraw", "Withdrawn")
        } else {
            ("Deposit", "Deposited")
        };
        let body = serde_json::json!({ "accountId": account, "amount": 500 + n * 35 % 4000 });
        write(
            store,
            &format!("account:command-{account}"),
            data(command, body.clone()),
        )
        .await;
        let written = write(store, &format!("account-{account}"), data(event, body)).await;
        last.insert("account", written);
    }
    for n in 0..60_i64 {
        let order = 88_100 + n % 20;
        let kind = ["Placed", "Paid", "Shipped"][usize::try_from(n / 20).unwrap()];
        let written = write(
            store,
            &format!("order-{order}"),
            data(kind, serde_json::json!({ "orderId": order })),
        )
        .await;
        last.insert("order", written);
        if n < 20 {
            last.insert(
                "invoice",
                write(
                    store,
                    &format!("invoice-{order}"),
                    data("Issued", serde_json::json!({ "orderId": order })),
                )
                .await,
            );
        }
    }
    for n in 0..18_i64 {
        write(
            store,
            &format!("payment-{}", 88_100 + n),
            data(
                "PaymentRequested",
                serde_json::json!({ "orderId": 88_100 + n, "amount": 1_250 + n * 310 }),
            ),
        )
        .await;
    }
    // A payment gateway consumer that parks what the gateway refuses.
    let dispatcher = Dispatcher::new().on(|payment: Received<PaymentRequested>| async move {
        if payment.order_id % 6 == 1 {
            return Err(BoxError::from(format!(
                "card processor timed out after 30 s (upstream 504) for order {}",
                payment.order_id
            )));
        }
        Ok(())
    });
    let config = ConsumerConfig {
        identifier: Some("gateway".into()),
        poll_interval: Duration::from_millis(100),
        position_update_interval: 1,
        park_after_retries: true,
        handler_retry_ms: vec![10, 10],
        ..ConsumerConfig::new("payment")
    };
    let consumer = Consumer::new(config, ebb_tests::store_for(&served.dashboard.db, 4))
        .unwrap()
        .handler(dispatcher);
    let control = Control::new();
    let run = tokio::spawn({
        let control = control.clone();
        async move { consumer.run(&control).await }
    });
    tokio::time::timeout(STORE_WAIT, async {
        while ebb_admin::parked(store, "payment", Some("gateway"))
            .await
            .unwrap()
            .len()
            < 3
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("three payments parked");
    control.stop();
    run.await.unwrap().unwrap();
    // Requests that arrived once the gateway consumer had stopped: its lag.
    for n in 18..23_i64 {
        write(
            store,
            &format!("payment-{}", 88_100 + n),
            data(
                "PaymentRequested",
                serde_json::json!({ "orderId": 88_100 + n, "amount": 990 + n * 10 }),
            ),
        )
        .await;
    }
    // Consumers that recorded where they are: caught up, a little behind,
    // further behind.
    let recorded = |category: &str, behind: i64| {
        let head = last[category].global_position;
        (category.to_owned(), head - behind)
    };
    for ((category, position), identifier) in [
        (recorded("account", 0), "projection"),
        (recorded("order", 30), "fulfilment"),
        (recorded("invoice", 0), "mailer"),
    ] {
        write(
            store,
            &format!("{category}:position-{identifier}"),
            data(
                ebb_consumer::POSITION_TYPE,
                serde_json::json!({ "position": position }),
            ),
        )
        .await;
    }

    let browser = browser().await;
    browser.goto(&served.at("/")).await.step("the overview");
    row(
        &browser,
        "section.panel:nth-child(2) table.data tbody tr",
        "payment · gateway",
    )
    .await;
    // The page, not the window: no empty band below the tables.
    let png = browser
        .wait_for("body")
        .await
        .step("the page")
        .screenshot()
        .await
        .expect("a screenshot of the page");
    let dir = ebb_tests::browser::screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("readme_overview.png"), png).unwrap();
    for page in ["consumers", "parked"] {
        browser
            .goto(&served.at(&format!("/{page}")))
            .await
            .step("a page");
        browser.wait_for("table.data").await.step("its table");
        screenshot(&browser, &format!("readme_{page}")).await;
    }
    browser.close().await.step("the browser closes");
}
