//! The token: refused without it, accepted as a bearer header or as the
//! cookie `?token=` sets; and no start on a non-loopback address without
//! one.

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{Dashboard, get, options, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_request_needs_it() {
    let dashboard = Dashboard::new(options()).await;
    let router = dashboard.with(ebb_dashboard::Options {
        token: Some("open sesame".into()),
        ..options()
    });
    for uri in [
        "/",
        "/consumers",
        "/streams?q=a",
        "/parked",
        "/live/overview",
        "/assets/x",
    ] {
        let refused = get(&router, uri).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(refused.body.contains("token"), "{uri}: {}", refused.body);
    }
    for wrong in ["open", "open sesame!", "OPEN SESAME"] {
        let request = Request::get("/")
            .header(header::AUTHORIZATION, format!("Bearer {wrong}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            send(&router, request).await.status,
            StatusCode::UNAUTHORIZED,
            "{wrong}"
        );
        let query = format!("/?token={}", wrong.replace(' ', "%20"));
        assert_eq!(
            get(&router, &query).await.status,
            StatusCode::UNAUTHORIZED,
            "{wrong}"
        );
    }

    let request = Request::get("/consumers")
        .header(header::AUTHORIZATION, "Bearer open sesame")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&router, request).await.status, StatusCode::OK);

    // Once in the query: a cookie, and the same page without the token.
    let redirected = get(&router, "/streams?q=account&token=open%20sesame").await;
    assert_eq!(redirected.status, StatusCode::SEE_OTHER);
    assert_eq!(redirected.header(header::LOCATION), "/streams?q=account");
    let cookie = redirected.header(header::SET_COOKIE).to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let pair = cookie.split(';').next().unwrap().to_owned();
    let request = Request::get("/streams?q=account")
        .header(header::COOKIE, pair)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&router, request).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_address_without_a_token_refuses_to_start() {
    let dashboard = Dashboard::new(options()).await;
    let everywhere: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let err = ebb_dashboard::serve(
        dashboard.store.clone(),
        ebb_dashboard::Options::default(),
        everywhere,
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(err.is_usage(), "{err}");
    assert!(err.to_string().contains("EBB_DASHBOARD_TOKEN"), "{err}");
    let empty = ebb_dashboard::Options {
        token: Some(String::new()),
        ..ebb_dashboard::Options::default()
    };
    assert!(
        ebb_dashboard::check_listen(everywhere, &empty).is_err(),
        "an empty token is none"
    );
    let with_token = ebb_dashboard::Options {
        token: Some("t".into()),
        ..ebb_dashboard::Options::default()
    };
    assert!(ebb_dashboard::check_listen(everywhere, &with_token).is_ok());
    for loopback in ["127.0.0.1:8460", "[::1]:8460"] {
        let listen: SocketAddr = loopback.parse().unwrap();
        assert!(ebb_dashboard::check_listen(listen, &ebb_dashboard::Options::default()).is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_on_loopback_it_answers_and_stops_when_told() {
    let dashboard = Dashboard::new(options()).await;
    // A free port, found by binding it and letting it go.
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(ebb_dashboard::serve(
        dashboard.store.clone(),
        options(),
        listen,
        async move {
            let _ = stopped.await;
        },
    ));
    // Connects until the server accepts (it binds as the task starts).
    let started = std::time::Instant::now();
    let mut stream = loop {
        match tokio::net::TcpStream::connect(listen).await {
            Ok(stream) => break stream,
            Err(err) => {
                assert!(
                    started.elapsed().as_secs() < 20,
                    "listening within 20 s: {err}"
                );
                tokio::task::yield_now().await;
            }
        }
    };
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream
        .write_all(b"GET /streams?q=x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("content-security-policy"), "{response}");
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), served)
        .await
        .expect("stops within 10 s")
        .unwrap()
        .unwrap();
}
