//! Every page renders on real data, under its own path and nested under a
//! prefix; unknown things and malformed input get error pages; every
//! response carries the security headers.

mod common;

use axum::Router;
use axum::http::{StatusCode, header};
use common::{Dashboard, data, follow, get, options, write};

/// A store with an account stream (two messages, the second caused by
/// the first and correlated to `transfer-9`) and a consumer of `account`
/// that has recorded a position behind the head.
async fn seeded() -> (
    Dashboard,
    ebb_message_store::Message,
    ebb_message_store::Message,
) {
    let dashboard = Dashboard::new(options()).await;
    let store = &dashboard.store;
    let metadata = ebb_message_store::Metadata {
        correlation_stream_name: Some("transfer-9".into()),
        ..ebb_message_store::Metadata::default()
    };
    let opened = write(
        store,
        "account-1",
        data("Opened", serde_json::json!({ "owner": "Ada Lovelace" })).with_metadata(metadata),
    )
    .await;
    let deposited = follow(store, "account-1", "Deposited", &opened).await;
    write(
        store,
        "account-2",
        data("Opened", serde_json::json!({ "owner": "Grace" })),
    )
    .await;
    write(
        store,
        "account:position-w1",
        data(
            ebb_consumer::POSITION_TYPE,
            serde_json::json!({ "position": opened.global_position }),
        ),
    )
    .await;
    (dashboard, opened, deposited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_what_is_in_the_store() {
    let (dashboard, opened, deposited) = seeded().await;
    let router = &dashboard.router;

    let overview = get(router, "/").await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.body);
    for expected in [
        "Categories",
        ">account<",
        "Consumers",
        "account · w1",
        "/live/overview",
    ] {
        assert!(
            overview.body.contains(expected),
            "overview lacks {expected}: {}",
            overview.body
        );
    }

    let consumers = get(router, "/consumers").await;
    assert_eq!(consumers.status, StatusCode::OK);
    assert!(
        consumers.body.contains("account:position-w1"),
        "{}",
        consumers.body
    );
    // Two messages after its position: the deposit and account-2's.
    assert!(
        consumers.body.contains("<td class=\"num\">2</td>"),
        "{}",
        consumers.body
    );

    let search = get(router, "/streams?q=account-*").await;
    assert_eq!(search.status, StatusCode::OK);
    assert!(
        search.body.contains("/streams/account-1\""),
        "{}",
        search.body
    );
    assert!(
        search.body.contains("/streams/account-2\""),
        "{}",
        search.body
    );
    let narrow = get(router, "/streams?q=*-2").await;
    assert!(
        narrow.body.contains("/streams/account-2\"")
            && !narrow.body.contains("/streams/account-1\"")
    );

    let stream = get(router, "/streams/account-1").await;
    assert_eq!(stream.status, StatusCode::OK);
    assert!(
        stream.body.contains("Ada Lovelace"),
        "the data as JSON: {}",
        stream.body
    );
    assert!(
        stream
            .body
            .contains("&quot;causationMessageGlobalPosition&quot;")
            || stream.body.contains("causationMessageGlobalPosition")
    );
    assert!(
        stream.body.contains(&format!("/trace/{}", opened.id)),
        "a link to the trace"
    );
    assert!(
        stream.body.contains("/streams/transfer-9"),
        "a link along the correlation"
    );
    assert!(
        stream.body.contains("/live/streams/account-1"),
        "newest first is live"
    );
    // Newest first: the deposit before the opening.
    assert!(stream.body.find("Deposited").unwrap() < stream.body.find("Opened").unwrap());
    let from = get(router, "/streams/account-1?from=1").await;
    assert!(
        from.body.contains("Deposited") && !from.body.contains(">Opened<"),
        "{}",
        from.body
    );
    let older = get(router, "/streams/account-1?before=1").await;
    assert!(older.body.contains(">Opened<") && !older.body.contains(">Deposited<"));
    let category = get(router, "/streams/account").await;
    assert_eq!(category.status, StatusCode::OK);
    assert!(category.body.contains("Grace") && category.body.contains("Ada Lovelace"));

    let trace = get(router, &format!("/trace/{}", opened.id)).await;
    assert_eq!(trace.status, StatusCode::OK, "{}", trace.body);
    assert!(
        trace.body.contains(&format!("/trace/{}", deposited.id)),
        "the follower: {}",
        trace.body
    );
    let correlated = get(router, "/trace/transfer-9").await;
    assert_eq!(correlated.status, StatusCode::OK);
    assert!(correlated.body.contains(">Opened<"), "{}", correlated.body);

    let parked = get(router, "/parked").await;
    assert_eq!(parked.status, StatusCode::OK);
    assert!(
        parked.body.contains("No message is parked"),
        "{}",
        parked.body
    );

    for asset in asset_urls(&overview.body) {
        let served = get(router, &asset).await;
        assert_eq!(served.status, StatusCode::OK, "{asset}");
        assert!(
            served.header(header::CACHE_CONTROL).contains("immutable"),
            "{asset}"
        );
        assert!(
            served.header(header::CONTENT_TYPE).starts_with("text/"),
            "{asset}"
        );
    }
}

/// The asset URLs a page links to.
fn asset_urls(body: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for marker in ["href=\"", "src=\""] {
        for (at, _) in body.match_indices(marker) {
            let rest = &body[at + marker.len()..];
            let url = &rest[..rest.find('"').unwrap()];
            if url.contains("/assets/") {
                urls.push(url.to_owned());
            }
        }
    }
    assert_eq!(urls.len(), 4, "a stylesheet and three scripts: {urls:?}");
    urls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_things_are_404_pages_and_malformed_input_400_pages() {
    let (dashboard, _, _) = seeded().await;
    let router = &dashboard.router;
    for (uri, status, says) in [
        (
            "/streams/account-404",
            StatusCode::NOT_FOUND,
            "No such stream",
        ),
        (
            "/streams/nothing",
            StatusCode::NOT_FOUND,
            "No such category",
        ),
        (
            "/trace/0b8c2a5e-7f3d-4c1a-9e2b-5d6f7a8b9c0d",
            StatusCode::NOT_FOUND,
            "no message has the id",
        ),
        ("/no/such/page", StatusCode::NOT_FOUND, "No such page"),
        (
            "/assets/htmx-0.0.0.js",
            StatusCode::NOT_FOUND,
            "no such asset",
        ),
        (
            "/streams/account-",
            StatusCode::BAD_REQUEST,
            "Not a stream name",
        ),
        (
            "/streams/account-1?from=x",
            StatusCode::BAD_REQUEST,
            "is not a position",
        ),
        (
            "/streams/account-1?from=1&before=2",
            StatusCode::BAD_REQUEST,
            "not both",
        ),
        (
            "/trace/0b8c2a5e-7f3d-4c1a-9e2b-5d6f7a8b9c0",
            StatusCode::BAD_REQUEST,
            "is not a message id",
        ),
        (
            "/parked?category=account-1",
            StatusCode::BAD_REQUEST,
            "Not a consumer",
        ),
    ] {
        let page = get(router, uri).await;
        assert_eq!(page.status, status, "{uri}: {}", page.body);
        assert!(
            page.body.contains(says),
            "{uri} says {says:?}: {}",
            page.body
        );
        if !uri.starts_with("/assets/") {
            assert!(page.body.starts_with("<!DOCTYPE html>"), "{uri} is a page");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let (dashboard, opened, _) = seeded().await;
    let read_only = dashboard.with(ebb_dashboard::Options {
        read_only: true,
        ..options()
    });
    let with_token = dashboard.with(ebb_dashboard::Options {
        token: Some("sesame".into()),
        ..options()
    });
    let trace = format!("/trace/{}", opened.id);
    let mut checked = 0;
    for (router, uri) in [
        (&dashboard.router, "/"),
        (&dashboard.router, "/consumers"),
        (&dashboard.router, "/streams?q=a"),
        (&dashboard.router, "/streams/account-1"),
        (&dashboard.router, "/streams/account-404"),
        (&dashboard.router, "/streams/account-"),
        (&dashboard.router, trace.as_str()),
        (&dashboard.router, "/parked"),
        (&dashboard.router, "/no/such/page"),
        (&dashboard.router, "/assets/nothing"),
        (&with_token, "/"),
        (&with_token, "/?token=sesame"),
    ] {
        let page = get(router, uri).await;
        check_headers(&page, uri);
        checked += 1;
    }
    let refused = common::post(&read_only, "/parked/replay", &[("csrf", "x")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    check_headers(&refused, "a refused action");
    assert_eq!(checked, 12);
}

fn check_headers(page: &common::Page, uri: &str) {
    let csp = page.header(header::CONTENT_SECURITY_POLICY);
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{uri}: {csp:?}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("http"),
        "{uri}: {csp}"
    );
    assert_eq!(
        page.header(header::X_CONTENT_TYPE_OPTIONS),
        "nosniff",
        "{uri}"
    );
    assert_eq!(page.header(header::REFERRER_POLICY), "same-origin", "{uri}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_under_a_prefix_every_link_keeps_it() {
    let (dashboard, _, _) = seeded().await;
    let app = Router::new().nest("/ops/dashboard", dashboard.router.clone());
    for uri in [
        "/ops/dashboard",
        "/ops/dashboard/streams/account-1",
        "/ops/dashboard/parked",
    ] {
        let page = get(&app, uri).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}: {}", page.body);
        let mut links = 0;
        for marker in ["href=\"", "src=\"", "action=\"", "sse-connect=\""] {
            for (at, _) in page.body.match_indices(marker) {
                let rest = &page.body[at + marker.len()..];
                let url = &rest[..rest.find('"').unwrap()];
                assert!(
                    url.starts_with("/ops/dashboard/") || url == "/ops/dashboard",
                    "{uri}: {marker}{url}"
                );
                links += 1;
            }
        }
        assert!(links > 10, "{uri}: {links} links");
    }
    let asset = get(&app, "/ops/dashboard").await;
    let css = asset
        .body
        .split('"')
        .find(|part| part.ends_with(".css"))
        .unwrap()
        .to_owned();
    assert_eq!(get(&app, &css).await.status, StatusCode::OK);
    // A proxy that strips its prefix says so in the options.
    let proxied = dashboard.with(ebb_dashboard::Options {
        base_path: Some("/behind/proxy/".into()),
        ..options()
    });
    let page = get(&proxied, "/consumers").await;
    assert!(
        page.body.contains("href=\"/behind/proxy/streams\""),
        "{}",
        page.body
    );
}
