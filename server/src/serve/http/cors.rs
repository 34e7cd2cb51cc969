//! The CORS headers of the hub's HTTP answers: preflights answered from the
//! [`CorsPolicy`], and `Access-Control-Allow-Origin` on the answers to
//! allowed origins' calls.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};

use crate::config::cors::CorsPolicy;
use crate::serve::http::{ALLOW, Body, full, text};

/// The request headers an allowed page may send with its calls.
const ALLOWED_HEADERS: &str = "content-type, authorization";

/// Answers an `OPTIONS` request: a CORS preflight (one with `Origin` and
/// `Access-Control-Request-Method`) gets 204 with the CORS headers when its
/// origin is allowed and it asks for `POST`, else 403; a plain `OPTIONS`
/// gets 204 with `Allow`.
pub(crate) fn preflight(policy: &CorsPolicy, headers: &HeaderMap, remote: Option<SocketAddr>) -> Response<Body> {
    let origin = headers.get(header::ORIGIN);
    let method = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD);
    let (Some(origin), Some(method)) = (origin, method) else {
        let mut response = Response::new(full(""));
        *response.status_mut() = StatusCode::NO_CONTENT;
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(ALLOW));
        return response;
    };
    let shown = origin.to_str().unwrap_or("(not text)");
    let allowed = origin.to_str().is_ok_and(|o| policy.allows(o));
    if !allowed || method.as_bytes() != Method::POST.as_str().as_bytes() {
        tracing::info!(target: "switchboard::server", ?remote, origin = shown, method = ?method, "CORS preflight refused");
        let mut response = match policy {
            CorsPolicy::Off => {
                text(StatusCode::FORBIDDEN, "CORS is off: pages of other origins may not call this hub\n")
            }
            _ if !allowed => text(StatusCode::FORBIDDEN, "this origin may not call this hub from a browser (CORS)\n"),
            _ => text(StatusCode::FORBIDDEN, "only POST is allowed across origins\n"),
        };
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("origin"));
        return response;
    }
    let mut response = Response::new(full(""));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let out = response.headers_mut();
    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
    out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOWED_HEADERS));
    let max_age = policy.max_age().unwrap_or_default().as_secs();
    out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(max_age));
    out.insert(header::VARY, HeaderValue::from_static("origin"));
    response
}

/// Lets the page of an allowed `origin` read `response` (whatever its
/// status: a refusal too). Others get no CORS header.
pub(crate) fn expose(policy: &CorsPolicy, origin: Option<&HeaderValue>, response: &mut Response<Body>) {
    if matches!(policy, CorsPolicy::Off) {
        return;
    }
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("origin"));
    if let Some(origin) = origin.filter(|o| o.to_str().is_ok_and(|o| policy.allows(o))) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
}
