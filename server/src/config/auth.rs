//! Authentication at the upgrade: the [`Authenticator`] sees the HTTP upgrade
//! request and accepts it with auth data for the handlers' context, or
//! rejects it with 401 / 403 before any WebSocket frame is exchanged.

use std::borrow::Cow;
use std::net::SocketAddr;

use http::{HeaderMap, StatusCode, header};
use serde_json::Value;

/// The HTTP upgrade request of a connecting client, as the authenticator and
/// the origin check see it.
#[derive(Debug, Clone, Copy)]
pub struct UpgradeRequest<'a> {
    request: &'a http::Request<()>,
    remote: Option<SocketAddr>,
}

impl<'a> UpgradeRequest<'a> {
    /// Wraps a request (an HTTP integration that upgrades by itself can reuse
    /// an authenticator this way).
    pub fn new(request: &'a http::Request<()>, remote: Option<SocketAddr>) -> Self {
        UpgradeRequest { request, remote }
    }

    /// The request path, e.g. `/rpc`.
    pub fn path(&self) -> &'a str {
        self.request.uri().path()
    }

    /// The raw query string without `?`, if any.
    pub fn query(&self) -> Option<&'a str> {
        self.request.uri().query()
    }

    /// The first value of query parameter `name`, percent-decoded
    /// (`?token=abc` gives `query_param("token") == Some("abc")`).
    pub fn query_param(&self, name: &str) -> Option<Cow<'a, str>> {
        let query = self.query()?;
        url::form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == name).map(|(_, value)| value)
    }

    /// All request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.request.headers()
    }

    /// One header as text (`None` when absent or not visible ASCII).
    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&'a str> {
        self.request.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer_token(&self) -> Option<&'a str> {
        let value = self.header(header::AUTHORIZATION)?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
    }

    /// The `Origin` header, sent by browsers.
    pub fn origin(&self) -> Option<&'a str> {
        self.header(header::ORIGIN)
    }

    /// The client's address, when known.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// The whole request.
    pub fn request(&self) -> &'a http::Request<()> {
        self.request
    }
}

/// Why an authenticator refuses a connection. The client receives the HTTP
/// status and the reason as the response body; no upgrade happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// HTTP 401 with `WWW-Authenticate: Bearer`: no or invalid credentials.
    Unauthorized(String),
    /// HTTP 403: valid credentials that do not grant access.
    Forbidden(String),
}

impl Rejection {
    /// The HTTP status the client receives.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Rejection::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }

    /// The reason sent as the response body.
    pub fn reason(&self) -> &str {
        match self {
            Rejection::Unauthorized(reason) | Rejection::Forbidden(reason) => reason,
        }
    }
}

/// Decides whether an upgrade request may connect.
///
/// It runs on the connection's task during the handshake, after the origin
/// check and the connection limit, and must not block: check a signature or
/// look a token up in memory. `Ok(data)` accepts the connection; handlers see
/// `data` as `Context::auth()`. Any `Fn(&UpgradeRequest) -> Result<Value,
/// Rejection>` closure is an authenticator.
pub trait Authenticator: Send + Sync + 'static {
    /// Accepts with auth data, or rejects with 401 / 403.
    fn authenticate(&self, request: &UpgradeRequest<'_>) -> Result<Value, Rejection>;
}

impl<F> Authenticator for F
where
    F: Fn(&UpgradeRequest<'_>) -> Result<Value, Rejection> + Send + Sync + 'static,
{
    fn authenticate(&self, request: &UpgradeRequest<'_>) -> Result<Value, Rejection> {
        self(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, auth: Option<&str>) -> http::Request<()> {
        let mut builder = http::Request::builder().uri(uri);
        if let Some(auth) = auth {
            builder = builder.header(header::AUTHORIZATION, auth);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn query_params_are_percent_decoded() {
        let req = request("/rpc?a=1&token=x%20y", None);
        let up = UpgradeRequest::new(&req, None);
        assert_eq!(up.path(), "/rpc");
        assert_eq!(up.query_param("token").as_deref(), Some("x y"));
        assert_eq!(up.query_param("missing"), None);
    }

    #[test]
    fn bearer_token_ignores_scheme_case_and_other_schemes() {
        let req = request("/", Some("bearer abc"));
        assert_eq!(UpgradeRequest::new(&req, None).bearer_token(), Some("abc"));
        let req = request("/", Some("Basic abc"));
        assert_eq!(UpgradeRequest::new(&req, None).bearer_token(), None);
    }
}
