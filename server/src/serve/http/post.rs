//! JSON-RPC over HTTP POST: one request or a batch in the body, the answer
//! in the response.
//!
//! In this order:
//!
//! 1. `Content-Type` other than `application/json`: 415;
//! 2. admission, as for a WebSocket upgrade: a shutdown under way 503, the
//!    origin policy 403, the connection limit 503 (each request in progress
//!    holds one connection slot), the authenticator 401 / 403 (503 when an
//!    asynchronous one times out);
//! 3. a body over `max_message_size` (by `Content-Length`, or once read that
//!    far): 413;
//! 4. the body is answered like a WebSocket frame
//!    ([`switchboard_shared::oneshot`]): 200 with the JSON answer (errors
//!    included: a JSON-RPC error is an answer, not an HTTP failure), or 204
//!    No Content when it held only notifications.
//!
//! Handlers run with a [`PeerHandle::one_shot`]: calling the caller back,
//! notifying or pushing to it fails with `Error::OneShot` (answered -32004
//! "Persistent connection required" when passed on with `?`), and
//! `rpc.subscribe` / `rpc.unsubscribe` answer -32004; `rpc.discover`,
//! `rpc.history` and publishing work. `on_connect` / `on_disconnect` do not
//! run: a request is not a connection.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use switchboard_shared::{Context, ErrorObject, Id, PeerHandle, codec::encode, oneshot};

use crate::serve::admission;
use crate::serve::http::upgrade::head;
use crate::serve::http::{Body, full, text};
use crate::state::hub::Hub;

/// Answers one POST on the hub's path (see the module docs).
pub(crate) async fn answer<B>(hub: &Arc<Hub>, request: Request<B>, remote: Option<SocketAddr>) -> Response<Body>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    if !is_json(request.headers()) {
        return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, "JSON-RPC over HTTP needs Content-Type: application/json\n");
    }
    let admitted = match admission::admit(hub, head(&request), remote).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.response().map(full),
    };
    let max = hub.settings().max_message_size;
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return too_large(max, remote);
    }
    let body = match Limited::new(request.into_body(), max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => return too_large(max, remote),
        Err(error) => {
            tracing::debug!(target: "switchboard::server", ?remote, %error, "HTTP request body unreadable");
            return text(StatusCode::BAD_REQUEST, "the request body could not be read\n");
        }
    };
    let answer = match std::str::from_utf8(&body) {
        Ok(text) => {
            let peer = PeerHandle::one_shot(admitted.info, Arc::clone(hub.peer_config()), Arc::clone(hub.methods()));
            oneshot::answer(text, &Context::new(peer), hub.settings().max_batch_len).await
        }
        Err(error) => {
            Some(encode::error(&Id::Null, &ErrorObject::parse_error(format_args!("the body is not UTF-8: {error}"))))
        }
    };
    // The request's connection slot is given back here.
    drop(admitted.slot);
    match answer {
        Some(json) => {
            let mut response = Response::new(full(json));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        None => {
            let mut response = Response::new(full(""));
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
    }
}

/// `application/json`, with or without parameters (`; charset=utf-8`).
fn is_json(headers: &HeaderMap) -> bool {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    content_type.and_then(|t| t.split(';').next()).is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

fn too_large(max: usize, remote: Option<SocketAddr>) -> Response<Body> {
    tracing::warn!(target: "switchboard::server", ?remote, max_message_size = max, "HTTP request body over the size limit; answered 413");
    let mut response = Response::new(full(format!("the request body is over the limit of {max} bytes\n")));
    *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types_are_recognised_with_parameters() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            is_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(!with("text/plain"));
        assert!(!with("application/json-patch+json"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
