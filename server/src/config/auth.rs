//! Authentication at the upgrade: an authenticator sees the HTTP upgrade
//! request and accepts it with an [`Identity`] (JSON auth data for
//! `Context::auth()`, typed values for `ServerContext::identity`), or
//! rejects it with 401 / 403 before any WebSocket frame is exchanged.
//!
//! Two kinds, set on the builder:
//!
//! - [`Authenticator`] (`ServerBuilder::authenticate`): synchronous, for
//!   checks that need no I/O (a signature, a token in memory);
//! - [`AsyncAuthenticator`] (`ServerBuilder::authenticate_async`): may await
//!   (a database, an HTTP call) within the builder's `auth_timeout`
//!   (default 5 s); past it the client gets HTTP 503 with `Retry-After: 1`,
//!   since the fault is the server's, not the client's credentials.

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderMap, StatusCode, header};
use serde_json::Value;

/// The HTTP upgrade request of a connecting client, as the authenticator and
/// the origin check see it. Cheap to clone (the request is shared).
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    request: Arc<http::Request<()>>,
    remote: Option<SocketAddr>,
}

impl UpgradeRequest {
    /// Wraps a request (an HTTP integration that upgrades by itself can reuse
    /// an authenticator this way).
    pub fn new(request: http::Request<()>, remote: Option<SocketAddr>) -> Self {
        UpgradeRequest { request: Arc::new(request), remote }
    }

    /// The request path, e.g. `/rpc`.
    pub fn path(&self) -> &str {
        self.request.uri().path()
    }

    /// The raw query string without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.request.uri().query()
    }

    /// The first value of query parameter `name`, percent-decoded
    /// (`?token=abc` gives `query_param("token") == Some("abc")`).
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        let query = self.query()?;
        url::form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == name).map(|(_, value)| value)
    }

    /// All request headers.
    pub fn headers(&self) -> &HeaderMap {
        self.request.headers()
    }

    /// One header as text (`None` when absent or not visible ASCII).
    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.request.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self.header(header::AUTHORIZATION)?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
    }

    /// The `Origin` header, sent by browsers.
    pub fn origin(&self) -> Option<&str> {
        self.header(header::ORIGIN)
    }

    /// The client's address, when known.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// The whole request.
    pub fn request(&self) -> &http::Request<()> {
        &self.request
    }

    /// The request back, without a copy once no clone of it is left.
    pub(crate) fn into_request(self) -> http::Request<()> {
        Arc::try_unwrap(self.request).unwrap_or_else(|shared| {
            let mut copy = http::Request::new(());
            *copy.method_mut() = shared.method().clone();
            *copy.uri_mut() = shared.uri().clone();
            *copy.version_mut() = shared.version();
            *copy.headers_mut() = shared.headers().clone();
            copy
        })
    }
}

/// Why an authenticator refuses a connection. The client receives the HTTP
/// status and the reason as the response body; no upgrade happens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

/// What an authenticator accepted a connection with: JSON auth data that
/// handlers read with `Context::auth()` (and `ConnectionSummary::auth`
/// shows), and typed values they read with
/// [`ServerContext::identity`](crate::ServerContext::identity).
///
/// A `serde_json::Value` converts into an identity with that JSON, `()` into
/// an empty one.
///
/// ```
/// use switchboard_server::Identity;
///
/// #[derive(Clone)]
/// struct Claims { user: String, admin: bool }
///
/// let identity = Identity::typed(Claims { user: "ada".into(), admin: true })
///     .with_json(serde_json::json!({ "user": "ada" }));
/// # drop(identity);
/// ```
#[derive(Debug, Default)]
pub struct Identity {
    pub(crate) json: Option<Value>,
    pub(crate) extensions: http::Extensions,
}

impl Identity {
    /// No data: the connection is accepted, handlers see nothing.
    pub fn new() -> Self {
        Identity::default()
    }

    /// An identity holding one typed value (see [`with`](Self::with)).
    pub fn typed<T: Clone + Send + Sync + 'static>(value: T) -> Self {
        Identity::new().with(value)
    }

    /// Adds a typed value, read by handlers with
    /// [`ServerContext::identity::<T>()`](crate::ServerContext::identity); one per type.
    pub fn with<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(Authenticated(value));
        self
    }

    /// Sets the JSON auth data handlers read with `Context::auth()`.
    pub fn with_json(mut self, data: Value) -> Self {
        self.json = Some(data);
        self
    }
}

impl From<Value> for Identity {
    fn from(data: Value) -> Self {
        Identity::new().with_json(data)
    }
}

impl From<()> for Identity {
    fn from((): ()) -> Self {
        Identity::new()
    }
}

/// A typed value an authenticator set, as stored in the connection's
/// `ConnectionInfo::extensions` (wrapped, so only the authenticator's are read back).
#[derive(Debug, Clone)]
pub(crate) struct Authenticated<T>(pub(crate) T);

/// Decides at once whether an upgrade request may connect.
///
/// It runs on the connection's task during the handshake, after the origin
/// check and the connection limit, and must not block: check a signature or
/// look a token up in memory (for I/O, use an [`AsyncAuthenticator`]).
/// `Ok(identity)` accepts the connection. Any
/// `Fn(&UpgradeRequest) -> Result<I, Rejection>` closure is an authenticator,
/// where `I` is a `serde_json::Value` (seen as `Context::auth()`), an
/// [`Identity`] or `()`.
pub trait Authenticator: Send + Sync + 'static {
    /// Accepts with an identity, or rejects with 401 / 403.
    fn authenticate(&self, request: &UpgradeRequest) -> Result<Identity, Rejection>;
}

impl<F, I> Authenticator for F
where
    F: Fn(&UpgradeRequest) -> Result<I, Rejection> + Send + Sync + 'static,
    I: Into<Identity>,
{
    fn authenticate(&self, request: &UpgradeRequest) -> Result<Identity, Rejection> {
        self(request).map(Into::into)
    }
}

/// The future an [`AsyncAuthenticator`] returns.
pub type AuthFuture = Pin<Box<dyn Future<Output = Result<Identity, Rejection>> + Send + 'static>>;

/// Decides whether an upgrade request may connect, and may await to do so
/// (a database, an HTTP call to an identity provider).
///
/// It runs during the handshake, after the origin check and the connection
/// limit (so at most `max_connections` run at once), within the builder's
/// `auth_timeout` (default 5 s; past it the client gets HTTP 503). Any
/// `Fn(UpgradeRequest) -> impl Future<Output = Result<I, Rejection>>` closure
/// is one, with `I` as for [`Authenticator`].
pub trait AsyncAuthenticator: Send + Sync + 'static {
    /// Accepts with an identity, or rejects with 401 / 403.
    fn authenticate(&self, request: UpgradeRequest) -> AuthFuture;
}

impl<F, Fut, I> AsyncAuthenticator for F
where
    F: Fn(UpgradeRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<I, Rejection>> + Send + 'static,
    I: Into<Identity>,
{
    fn authenticate(&self, request: UpgradeRequest) -> AuthFuture {
        let decided = self(request);
        Box::pin(async move { decided.await.map(Into::into) })
    }
}

/// The authenticator a server was built with.
#[derive(Clone)]
pub(crate) enum Auth {
    Sync(Arc<dyn Authenticator>),
    Async(Arc<dyn AsyncAuthenticator>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Sync(_) => "Auth::Sync",
            Auth::Async(_) => "Auth::Async",
        })
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
        let up = UpgradeRequest::new(req, None);
        assert_eq!(up.path(), "/rpc");
        assert_eq!(up.query_param("token").as_deref(), Some("x y"));
        assert_eq!(up.query_param("missing"), None);
    }

    #[test]
    fn bearer_token_ignores_scheme_case_and_other_schemes() {
        let req = request("/", Some("bearer abc"));
        assert_eq!(UpgradeRequest::new(req, None).bearer_token(), Some("abc"));
        let req = request("/", Some("Basic abc"));
        assert_eq!(UpgradeRequest::new(req, None).bearer_token(), None);
    }
}
