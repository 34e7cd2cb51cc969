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
//!
//! Credentials may **expire**: an identity made with
//! [`Identity::expires_in`] or [`Identity::expires_at`] holds the
//! connection only until then. At expiry the server calls `rpc.refresh` on
//! the client; its answer, a fresh credential, goes to the same
//! authenticator as an `Authorization: Bearer` header on a copy of the
//! connection's upgrade request ([`UpgradeRequest::refreshing`] tells the
//! two apart). Accepted, the connection lives on until the new identity's
//! expiry (if any); otherwise it is closed with 4401 "credentials expired"
//! at the end of the builder's `refresh_grace` (default 10 s).
//!
//! Secrets stay out of text: `Authorization`, `Proxy-Authorization` and
//! `Cookie` headers are marked sensitive (their `Debug` is `Sensitive`),
//! and the `Debug` of an [`UpgradeRequest`] shows the `token` query
//! parameter redacted.

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode, header};
use serde_json::Value;
use switchboard_shared::ConnectionInfo;
use switchboard_shared::credentials::{SECRET_QUERY_PARAMS, redact_query};

/// The HTTP upgrade request of a connecting client, as the authenticator and
/// the origin check see it. Cheap to clone (the request is shared).
#[derive(Clone)]
pub struct UpgradeRequest {
    request: Arc<http::Request<()>>,
    remote: Option<SocketAddr>,
    refreshing: Option<uuid::Uuid>,
}

impl std::fmt::Debug for UpgradeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeRequest")
            .field("method", self.request.method())
            .field("path", &self.path())
            .field("query", &self.query().map(redact_query))
            .field("headers", self.request.headers())
            .field("remote", &self.remote)
            .field("refreshing", &self.refreshing)
            .finish()
    }
}

impl UpgradeRequest {
    /// Wraps a request (an HTTP integration that upgrades by itself can reuse
    /// an authenticator this way). Its secret headers are marked sensitive.
    pub fn new(mut request: http::Request<()>, remote: Option<SocketAddr>) -> Self {
        mark_secrets(request.headers_mut());
        UpgradeRequest { request: Arc::new(request), remote, refreshing: None }
    }

    /// The check of a fresh credential that connection `connection` sent
    /// in answer to `rpc.refresh`: its upgrade request (`info`), without a
    /// `token` query parameter, with `Authorization: Bearer <credential>`.
    pub(crate) fn refresh(info: &ConnectionInfo, connection: uuid::Uuid, credential: &str) -> Option<Self> {
        let query = info.query.as_deref().map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(key, _)| !SECRET_QUERY_PARAMS.iter().any(|secret| key.eq_ignore_ascii_case(secret)))
                .fold(url::form_urlencoded::Serializer::new(String::new()), |mut out, (key, value)| {
                    out.append_pair(&key, &value);
                    out
                })
                .finish()
        });
        let target = match query.as_deref() {
            Some(query) if !query.is_empty() => format!("{}?{query}", info.path),
            _ => info.path.clone(),
        };
        let mut request = http::Request::new(());
        *request.uri_mut() = target.parse().ok()?;
        *request.headers_mut() = info.headers.clone();
        let mut bearer = http::HeaderValue::from_str(&format!("Bearer {credential}")).ok()?;
        bearer.set_sensitive(true);
        request.headers_mut().insert(header::AUTHORIZATION, bearer);
        let mut upgrade = UpgradeRequest::new(request, info.remote);
        upgrade.refreshing = Some(connection);
        Some(upgrade)
    }

    /// `Some(connection id)` when this is not an upgrade but the check of a
    /// fresh credential that connection sent in answer to `rpc.refresh`
    /// (in the `Authorization: Bearer` header; the rest is the connection's
    /// upgrade request without its `token` query parameter).
    pub fn refreshing(&self) -> Option<uuid::Uuid> {
        self.refreshing
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
    pub(crate) expires: Option<Expiry>,
}

/// When an identity's credentials stop being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    After(Duration),
    At(SystemTime),
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

    /// The credentials are valid for `ttl` from now: then the server asks
    /// the client for a fresh one (`rpc.refresh`), and closes the connection
    /// with 4401 "credentials expired" if none is accepted within the
    /// builder's `refresh_grace`. Default: they never expire.
    ///
    /// Of the identity a fresh credential is accepted with, only the expiry
    /// counts: the connection keeps the data it was admitted with (an
    /// authenticator that must not accept another user's token on refresh
    /// compares, knowing the connection from [`UpgradeRequest::refreshing`]).
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        self.expires = Some(Expiry::After(ttl));
        self
    }

    /// The credentials are valid until `at` (a token's `exp` claim, say);
    /// see [`expires_in`](Self::expires_in). A time already past asks for a
    /// fresh credential at once.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires = Some(Expiry::At(at));
        self
    }

    /// When the credentials expire, on the runtime's clock; `None`: never.
    pub(crate) fn deadline(&self) -> Option<tokio::time::Instant> {
        let now = tokio::time::Instant::now();
        let left = match self.expires? {
            Expiry::After(ttl) => ttl,
            Expiry::At(at) => at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO),
        };
        // Far futures (years) are clamped rather than overflowing the clock.
        Some(now.checked_add(left).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400)))
    }
}

/// Marks the headers that carry credentials sensitive, so that their
/// values never show in `Debug` output (`http` prints `Sensitive`).
pub(crate) fn mark_secrets(headers: &mut HeaderMap) {
    for (name, value) in headers.iter_mut() {
        if name == header::AUTHORIZATION || name == header::PROXY_AUTHORIZATION || name == header::COOKIE {
            value.set_sensitive(true);
        }
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
