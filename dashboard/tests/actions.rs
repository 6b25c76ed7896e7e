//! Replaying and discarding parked messages through the dashboard, and
//! every refusal on the way: read-only, CSRF, another site.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{Dashboard, get, options, parked_notes, post, send};

fn item(global_position: i64) -> String {
    format!("{global_position}-w1-note")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_is_confirmed_then_written_as_the_cli_writes_it() {
    let dashboard = Dashboard::new(options()).await;
    let parked = parked_notes(&dashboard.store, &dashboard.db).await;
    let router = &dashboard.router;

    let page = get(router, "/parked").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("note 3 cannot be handled"),
        "{}",
        page.body
    );
    assert!(page.body.contains("note · w1"), "{}", page.body);
    let csrf = page.csrf();
    let filtered = get(router, "/parked?error=NOTE%204").await;
    assert!(filtered.body.contains("note 4 cannot") && !filtered.body.contains("note 3 cannot"));

    // The first post only asks.
    let one = item(parked[0]);
    let asked = post(router, "/parked/replay", &[("csrf", &csrf), ("one", &one)]).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(
        asked.body.contains("Confirm: replay 1 parked message"),
        "{}",
        asked.body
    );
    assert!(asked.body.contains("name=\"confirm\" value=\"yes\""));
    let still = ebb_admin::parked(&dashboard.store, "note", Some("w1"))
        .await
        .unwrap();
    assert!(
        still
            .iter()
            .all(|(_, message)| ebb_admin::requested(message.state).is_none()),
        "nothing written yet"
    );

    let done = post(
        router,
        "/parked/replay",
        &[("csrf", &csrf), ("confirm", "yes"), ("item", &one)],
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains("1 replay request written"),
        "{}",
        done.body
    );
    let now = ebb_admin::parked(&dashboard.store, "note", Some("w1"))
        .await
        .unwrap();
    let states: Vec<(i64, Option<&str>)> = now
        .iter()
        .map(|(_, message)| {
            (
                message.parked.global_position,
                ebb_admin::requested(message.state),
            )
        })
        .collect();
    assert_eq!(states, [(parked[0], Some("replay")), (parked[1], None)]);
    // The page shows it pending, with no button for it.
    let page = get(router, "/parked").await;
    assert!(page.body.contains("replay requested"), "{}", page.body);

    // Everything matching a filter, with a count and a limit.
    let asked = post(
        router,
        "/parked/discard",
        &[
            ("csrf", &csrf),
            ("all", "yes"),
            ("category", "note"),
            ("limit", "5"),
        ],
    )
    .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(
        asked.body.contains("Confirm: discard 1 parked message"),
        "{}",
        asked.body
    );
    assert!(
        asked.body.contains("1 selected are left out"),
        "{}",
        asked.body
    );
    let done = post(
        router,
        "/parked/discard",
        &[
            ("csrf", &csrf),
            ("confirm", "yes"),
            ("item", &item(parked[1])),
        ],
    )
    .await;
    assert!(
        done.body.contains("1 discard request written"),
        "{}",
        done.body
    );
    let now = ebb_admin::parked(&dashboard.store, "note", Some("w1"))
        .await
        .unwrap();
    assert_eq!(ebb_admin::requested(now[1].1.state), Some("discard"));

    // Nothing left to ask for.
    let again = post(
        router,
        "/parked/replay",
        &[("csrf", &csrf), ("item", &item(parked[0]))],
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_shows_no_action_and_refuses_every_one() {
    let dashboard = Dashboard::new(options()).await;
    let parked = parked_notes(&dashboard.store, &dashboard.db).await;
    let csrf = get(&dashboard.router, "/parked").await.csrf();
    let read_only = dashboard.with(ebb_dashboard::Options {
        read_only: true,
        ..options()
    });
    let page = get(&read_only, "/parked").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("note 3 cannot be handled"),
        "{}",
        page.body
    );
    for action in [
        "method=\"post\"",
        ">Replay",
        ">Discard",
        "/parked/replay",
        "/parked/discard",
        "name=\"csrf\"",
        "type=\"checkbox\"",
    ] {
        assert!(!page.body.contains(action), "read-only page has {action}");
    }
    assert!(page.body.contains("read-only"));
    let one = item(parked[0]);
    for uri in ["/parked/replay", "/parked/discard"] {
        for form in [
            vec![("csrf", csrf.as_str()), ("one", one.as_str())],
            vec![
                ("csrf", csrf.as_str()),
                ("confirm", "yes"),
                ("item", one.as_str()),
            ],
        ] {
            let refused = post(&read_only, uri, &form).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{uri}");
            assert!(refused.body.contains("read-only"), "{}", refused.body);
        }
    }
    let untouched = ebb_admin::parked(&dashboard.store, "note", Some("w1"))
        .await
        .unwrap();
    assert!(
        untouched
            .iter()
            .all(|(_, message)| ebb_admin::requested(message.state).is_none())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_the_csrf_token_or_from_another_site_is_refused() {
    let dashboard = Dashboard::new(options()).await;
    let parked = parked_notes(&dashboard.store, &dashboard.db).await;
    let router = &dashboard.router;
    let csrf = get(router, "/parked").await.csrf();
    let confirmed = item(parked[0]);
    let form = |token: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("csrf", token.to_owned()),
            ("confirm", "yes".into()),
            ("item", confirmed.clone()),
        ]
    };
    for token in ["", "0000", "not-the-token"] {
        let pairs = form(token);
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let refused = post(router, "/parked/replay", &pairs).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "token {token:?}");
        assert!(refused.body.contains("token"), "{}", refused.body);
    }
    let body = format!("csrf={csrf}&confirm=yes&item={confirmed}");
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "http://evil.example"),
        ("origin", "null"),
    ] {
        let request = Request::post("/parked/replay")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::HOST, "127.0.0.1:8460")
            .header(name, value)
            .body(Body::from(body.clone()))
            .unwrap();
        let refused = send(router, request).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{name}: {value}");
    }
    let untouched = ebb_admin::parked(&dashboard.store, "note", Some("w1"))
        .await
        .unwrap();
    assert!(
        untouched
            .iter()
            .all(|(_, message)| ebb_admin::requested(message.state).is_none())
    );
}
