//! What keeps the dashboard safe: the security headers on every
//! response, the token every request needs when one is set, and the
//! checks every action passes (read-only, same origin, CSRF token).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq as _;

use crate::app::App;
use crate::paths::{Base, decode, encode};
use crate::view;

/// The only sources a page may load from: the dashboard's own, no inline
/// script or style, no frame, no form to elsewhere.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The cookie that `?token=` sets.
const TOKEN_COOKIE: &str = "ebb_dashboard_token";

/// Adds the security headers to every response, errors and refusals
/// included.
pub(crate) async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// With a token set: lets a request through that carries it (bearer
/// header or cookie); turns `?token=TOKEN` into the cookie and a redirect
/// to the same URL without it; refuses anything else with 401.
pub(crate) async fn token(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let Some(expected) = app.options.active_token() else {
        return next.run(request).await;
    };
    let base = request
        .extensions()
        .get::<Base>()
        .cloned()
        .unwrap_or(Base(String::new()));
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if bearer.is_some_and(|given| same(given, expected))
        || cookie(headers, TOKEN_COOKIE).is_some_and(|given| same(&given, expected))
    {
        return next.run(request).await;
    }
    if let Some((given, rest)) = take_token(request.uri()) {
        if same(&given, expected) {
            let cookie = format!(
                "{TOKEN_COOKIE}={}; HttpOnly; SameSite=Strict; Path={}",
                encode(&given),
                base.cookie_path()
            );
            // `//host` would leave the dashboard: one slash is the same
            // path here.
            let rest = format!("/{}", rest.trim_start_matches('/'));
            let location = format!("{}{rest}", base.0);
            let mut response = Redirect::to(&location).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            return response;
        }
    }
    let mut response = view::error_page(
        &base,
        StatusCode::UNAUTHORIZED,
        "A token is needed",
        "This dashboard is protected by a token. Open it once with ?token=TOKEN \
         (the token in EBB_DASHBOARD_TOKEN where it was started), or send the header \
         Authorization: Bearer TOKEN.",
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Whether `given` is `expected`, in time that does not depend on where
/// they differ.
pub(crate) fn same(given: &str, expected: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// The value of the cookie `name`, decoded.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| decode(value))
}

/// The `token` query parameter, decoded, and the request's path and
/// query without it (as the router sees them).
fn take_token(uri: &Uri) -> Option<(String, String)> {
    let query = uri.query()?;
    let mut token = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix("token=") {
            Some(value) if token.is_none() => token = Some(decode(&value.replace('+', " "))),
            _ => kept.push(pair),
        }
    }
    let path = uri.path();
    let rest = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    Some((token?, rest))
}

/// Why an action request is refused before its form is read: the
/// dashboard is read-only, or the request comes from another site.
pub(crate) fn refuse_action(app: &App, headers: &HeaderMap) -> Option<&'static str> {
    if app.options.read_only {
        return Some("This dashboard is read-only: it takes no action.");
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        if site.as_bytes() != b"same-origin" {
            return Some("The request came from another site: refused.");
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).map(HeaderValue::as_bytes);
        let authority = origin
            .to_str()
            .ok()
            .and_then(|origin| origin.split_once("://"))
            .map(|(_, authority)| authority.as_bytes());
        if authority.is_none() || authority != host {
            return Some("The request came from another origin: refused.");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_taken_out_of_the_query() {
        let uri: Uri = "/streams?q=a*&token=s%20x&page=2".parse().unwrap();
        assert_eq!(
            take_token(&uri),
            Some(("s x".into(), "/streams?q=a*&page=2".into()))
        );
        let uri: Uri = "/?token=abc".parse().unwrap();
        assert_eq!(take_token(&uri), Some(("abc".into(), "/".into())));
        assert_eq!(take_token(&"/?q=1".parse().unwrap()), None);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("secret", "secret"));
        assert!(!same("secret", "secreT"));
        assert!(!same("secre", "secret"));
        assert!(!same("", "secret"));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ebb_dashboard_token=t%3Bx; b=2"),
        );
        assert_eq!(cookie(&headers, TOKEN_COOKIE).as_deref(), Some("t;x"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
