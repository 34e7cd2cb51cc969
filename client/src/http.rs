//! [`HttpClient`] (cargo feature `http`): one-off JSON-RPC calls over
//! `http://` and `https://` POST, without a socket kept open: for scripts,
//! health checks and services that only reach the hub through an HTTP load
//! balancer.
//!
//! Each call is one POST with `Content-Type: application/json`; a batch is
//! one POST of an array. hyper's pooled client keeps the TCP (and TLS)
//! connection alive between calls, so a loop of calls pays the handshake
//! once. HTTPS verifies the server against the webpki roots, plus any
//! [`root_certificate`](HttpClientBuilder::root_certificate) given.
//!
//! Over HTTP the server cannot call back or push: there are no
//! subscriptions, and a method that needs a persistent connection answers
//! -32004 ([`code::PERSISTENT_CONNECTION_REQUIRED`](switchboard_shared::code::PERSISTENT_CONNECTION_REQUIRED)).
//!
//! ```no_run
//! use switchboard_client::HttpClient;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = HttpClient::new("http://127.0.0.1:9000/")?;
//! let sum: i64 = hub.call("add", [2, 3]).await?;
//! let answers = hub.batch().call("add", [1, 2]).notify("log", ["hi"]).call("echo", ["x"]).send().await?;
//! println!("{sum} {:?}", answers.len());
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use switchboard_shared::codec::{Frame, Message, decode_frame, encode};
use switchboard_shared::{ErrorObject, Id};

use crate::builder::ConnectError;

/// Why an HTTP call did not produce a result. Each says what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The server answered with a JSON-RPC error object.
    #[error("the server answered with an error: {0}")]
    Rpc(ErrorObject),
    /// The server refused the request with an HTTP status: 401 / 403 (check
    /// the token and the origin), 413 (the body is over the server's
    /// message size), 415, 503 (shutting down, or at its limit: retry), or
    /// 404 / 405 (not the hub's path).
    #[error("HTTP {status}{}", .reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Refused {
        /// The HTTP status it answered with.
        status: StatusCode,
        /// The response body as one line of text, when it sent one.
        reason: Option<String>,
    },
    /// The TLS handshake failed: the server's certificate is not trusted
    /// (add its CA with [`HttpClientBuilder::root_certificate`]), names
    /// another host, or has expired.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The connection failed (refused, unreachable, a name that does not
    /// resolve) or broke before the answer was complete.
    #[error("{0}")]
    Transport(String),
    /// No answer within the timeout ([`HttpClientBuilder::timeout`]).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The answer broke JSON-RPC (not JSON, the wrong id, no answer to a call).
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The result did not fit the type the caller asked for.
    #[error("the result did not decode into the requested type: {0}")]
    Decode(String),
    /// The params could not be encoded.
    #[error("the params could not be encoded: {0}")]
    Encode(String),
}

impl HttpError {
    /// The server's error object, when the error is `Rpc`.
    pub fn rpc(&self) -> Option<&ErrorObject> {
        match self {
            HttpError::Rpc(e) => Some(e),
            _ => None,
        }
    }
}

/// Configures an [`HttpClient`]; start from [`HttpClient::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct HttpClientBuilder {
    url: String,
    headers: Vec<(String, String)>,
    timeout: Option<Duration>,
    tls: Option<Arc<rustls::ClientConfig>>,
    roots: Vec<Vec<u8>>,
}

impl HttpClientBuilder {
    /// Sends `Authorization: Bearer TOKEN` with every request.
    pub fn token(self, token: impl AsRef<str>) -> Self {
        self.header("authorization", format!("Bearer {}", token.as_ref()))
    }

    /// Sends this header with every request. An invalid name or value makes
    /// [`build`](Self::build) fail with [`ConnectError::InvalidHeader`].
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets how long a call (connect, send, answer) may take.
    ///
    /// Default: 10 s. When it passes the call fails with [`HttpError::Timeout`]
    /// (the server may still run it). `None` waits as long as it takes.
    pub fn timeout(mut self, limit: Option<Duration>) -> Self {
        self.timeout = limit;
        self
    }

    /// Also trusts the CA certificate(s) in `pem` for `https://` (a private
    /// CA, a self-signed server certificate), besides the webpki roots.
    /// Repeatable. A PEM without a certificate makes [`build`](Self::build)
    /// fail with [`ConnectError::InvalidCertificate`].
    pub fn root_certificate(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.roots.push(pem.as_ref().to_vec());
        self
    }

    /// The rustls configuration for `https://` (client certificates, other
    /// roots); default: rustls with the ring provider and the webpki roots.
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Builds the client. Fails on a URL that is not `http://` or
    /// `https://`, an invalid header, or an unusable root certificate.
    /// Opens no connection (the first call does); needs no runtime until then.
    pub fn build(self) -> Result<HttpClient, ConnectError> {
        let invalid = |reason: &str| ConnectError::InvalidUrl { url: self.url.clone(), reason: reason.to_owned() };
        let uri: Uri = self.url.parse().map_err(|_| invalid("not a URL"))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err(invalid("an HTTP endpoint starts with http:// or https://")),
        }
        if uri.host().is_none() {
            return Err(invalid("no host"));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let bad = |reason: String| ConnectError::InvalidHeader { name: name.clone(), reason };
            let name_ = HeaderName::try_from(name.as_str()).map_err(|e| bad(e.to_string()))?;
            let value = HeaderValue::try_from(value.as_str()).map_err(|e| bad(e.to_string()))?;
            headers.append(name_, value);
        }
        let tls = match self.tls {
            Some(config) => config,
            None => crate::tls::with_roots(&self.roots)
                .map_err(|reason| ConnectError::InvalidCertificate { reason })?
                .unwrap_or_else(crate::tls::default_config),
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .build();
        let pool = Pool::builder(TokioExecutor::new()).build(connector);
        Ok(HttpClient {
            inner: Arc::new(Inner { uri, headers, timeout: self.timeout, pool, next_id: AtomicI64::new(1) }),
        })
    }
}

/// A JSON-RPC client over HTTP POST; see the [module docs](self). Cheap to
/// clone (one reference count); clones share the connection pool.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    uri: Uri,
    headers: HeaderMap,
    timeout: Option<Duration>,
    pool: Pool<HttpsConnector<HttpConnector>, Full<Bytes>>,
    next_id: AtomicI64,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").field("url", &self.inner.uri).field("timeout", &self.inner.timeout).finish()
    }
}

/// What a POST brought back.
enum Answer {
    /// 200 with a body.
    Json(Bytes),
    /// 204: nothing to answer (notifications only).
    Nothing,
}

impl HttpClient {
    /// A client for the hub at `url` (`http://HOST:PORT/PATH` or `https://...`)
    /// with every default.
    pub fn new(url: impl Into<String>) -> Result<Self, ConnectError> {
        Self::builder(url).build()
    }

    /// Starts configuring a client for `url`.
    pub fn builder(url: impl Into<String>) -> HttpClientBuilder {
        HttpClientBuilder {
            url: url.into(),
            headers: Vec::new(),
            timeout: Some(Duration::from_secs(10)),
            tls: None,
            roots: Vec::new(),
        }
    }

    /// Calls `method` and decodes its result into `R`.
    pub async fn call<R: DeserializeOwned>(&self, method: &str, params: impl Serialize) -> Result<R, HttpError> {
        let raw = self.call_raw(method, params).await?;
        serde_json::from_str(raw.get()).map_err(|e| HttpError::Decode(e.to_string()))
    }

    /// Calls `method` and returns its result as raw JSON.
    pub async fn call_raw(&self, method: &str, params: impl Serialize) -> Result<Box<RawValue>, HttpError> {
        let id = self.next_id();
        let body = encode::request(&id, method, &params).map_err(|e| HttpError::Encode(e.to_string()))?;
        match self.post(body).await? {
            Answer::Nothing => Err(HttpError::InvalidResponse("204 No Content answered a call".into())),
            Answer::Json(bytes) => {
                let mut answers = responses(&bytes)?;
                match answers.iter().position(|(answer_id, _)| *answer_id == id) {
                    Some(at) => answers.swap_remove(at).1,
                    None => match answers.pop() {
                        // A whole-message error (a parse error, say) has id null.
                        Some((Id::Null, Err(HttpError::Rpc(error)))) => Err(HttpError::Rpc(error)),
                        _ => Err(HttpError::InvalidResponse(format!("no answer with id {id}"))),
                    },
                }
            }
        }
    }

    /// Sends a notification (no result; the server answers 204).
    pub async fn notify(&self, method: &str, params: impl Serialize) -> Result<(), HttpError> {
        let body = encode::notification(method, &params).map_err(|e| HttpError::Encode(e.to_string()))?;
        match self.post(body).await? {
            Answer::Nothing => Ok(()),
            // An error about the notification itself (a parse error) comes back as an answer.
            Answer::Json(bytes) => match responses(&bytes)?.pop() {
                Some((_, Err(error))) => Err(error),
                _ => Err(HttpError::InvalidResponse("a notification was answered".into())),
            },
        }
    }

    /// Starts a batch: calls and notifications sent as one POST.
    pub fn batch(&self) -> HttpBatch<'_> {
        HttpBatch { client: self, frames: Vec::new(), ids: Vec::new(), error: None }
    }

    /// POSTs `body` as it is (one JSON-RPC message or a batch) and returns
    /// the answer body as it came (`None` for 204 No Content): for tools that
    /// must show every answer as the server sent it.
    pub async fn post_raw(&self, body: impl Into<String>) -> Result<Option<String>, HttpError> {
        match self.post(body.into()).await? {
            Answer::Nothing => Ok(None),
            Answer::Json(bytes) => String::from_utf8(bytes.to_vec())
                .map(Some)
                .map_err(|_| HttpError::InvalidResponse("the answer is not UTF-8".into())),
        }
    }

    fn next_id(&self) -> Id {
        Id::Num(self.inner.next_id.fetch_add(1, Ordering::Relaxed))
    }

    async fn post(&self, body: String) -> Result<Answer, HttpError> {
        let inner = &*self.inner;
        let mut request = Request::post(inner.uri.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        request.headers_mut().extend(inner.headers.clone());
        let exchange = async {
            let response = inner.pool.request(request).await.map_err(request_failure)?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| HttpError::Transport(chain(&e)))?.to_bytes();
            match status {
                StatusCode::OK => Ok(Answer::Json(body)),
                StatusCode::NO_CONTENT => Ok(Answer::Nothing),
                status => Err(HttpError::Refused { status, reason: one_line(&body) }),
            }
        };
        match inner.timeout {
            Some(limit) => tokio::time::timeout(limit, exchange).await.unwrap_or(Err(HttpError::Timeout(limit))),
            None => exchange.await,
        }
    }
}

/// A batch being built; [`send`](Self::send) POSTs it.
#[derive(Debug)]
#[must_use = "a batch is sent only by `send`"]
pub struct HttpBatch<'a> {
    client: &'a HttpClient,
    frames: Vec<String>,
    /// One per call, in order.
    ids: Vec<Id>,
    error: Option<HttpError>,
}

impl HttpBatch<'_> {
    /// Adds a call; its result comes back at this position among the calls.
    pub fn call(mut self, method: &str, params: impl Serialize) -> Self {
        let id = self.client.next_id();
        match encode::request(&id, method, &params) {
            Ok(frame) => {
                self.frames.push(frame);
                self.ids.push(id);
            }
            Err(e) => self.error = self.error.or(Some(HttpError::Encode(e.to_string()))),
        }
        self
    }

    /// Adds a notification (no result).
    pub fn notify(mut self, method: &str, params: impl Serialize) -> Self {
        match encode::notification(method, &params) {
            Ok(frame) => self.frames.push(frame),
            Err(e) => self.error = self.error.or(Some(HttpError::Encode(e.to_string()))),
        }
        self
    }

    /// Sends the batch; one result per call, in the order added. `Err` when
    /// the POST itself failed (or the server answered the whole batch with
    /// one error, such as a batch over its length limit).
    pub async fn send(self) -> Result<Vec<Result<Box<RawValue>, HttpError>>, HttpError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.frames.is_empty() {
            return Ok(Vec::new());
        }
        let answers = match self.client.post(encode::batch(&self.frames)).await? {
            Answer::Nothing => Vec::new(),
            Answer::Json(bytes) => responses(&bytes)?,
        };
        if let [(Id::Null, Err(HttpError::Rpc(error)))] = answers.as_slice()
            && !self.ids.is_empty()
        {
            return Err(HttpError::Rpc(error.clone()));
        }
        let mut answers: std::collections::HashMap<Id, Outcome> = answers.into_iter().collect();
        Ok(self
            .ids
            .iter()
            .map(|id| {
                answers
                    .remove(id)
                    .unwrap_or_else(|| Err(HttpError::InvalidResponse(format!("no answer to the call with id {id}"))))
            })
            .collect())
    }
}

/// One call's outcome: its result, or why there is none.
type Outcome = Result<Box<RawValue>, HttpError>;

/// The responses in an answer body (one, or a batch's), by id.
fn responses(body: &[u8]) -> Result<Vec<(Id, Outcome)>, HttpError> {
    let text = std::str::from_utf8(body).map_err(|_| HttpError::InvalidResponse("the answer is not UTF-8".into()))?;
    let frame =
        decode_frame(text).map_err(|e| HttpError::InvalidResponse(format!("the answer is not JSON-RPC: {e}")))?;
    let entries = match frame {
        Frame::Single(entry) => vec![entry],
        Frame::Batch(entries) => entries,
    };
    entries
        .into_iter()
        .map(|entry| match entry {
            Ok(Message::Response(response)) => {
                Ok((response.id, response.outcome.map(ToOwned::to_owned).map_err(HttpError::Rpc)))
            }
            Ok(_) => Err(HttpError::InvalidResponse("the answer holds a request, not a response".into())),
            Err(invalid) => Err(HttpError::InvalidResponse(invalid.error.to_string())),
        })
        .collect()
}

/// A failed request: TLS failures said as such, anything else with its causes.
fn request_failure(error: hyper_util::client::legacy::Error) -> HttpError {
    match crate::tls::rustls_error(&error) {
        Some(tls) => HttpError::Tls(tls.to_string()),
        None => HttpError::Transport(chain(&error)),
    }
}

/// An error and its causes, as one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A text body as one line (`None` when empty or not text).
fn one_line(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty() && !text.starts_with('<')).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_are_accepted() {
        assert!(HttpClient::new("http://127.0.0.1:9000/").is_ok());
        assert!(HttpClient::new("https://hub.example/rpc").is_ok());
        let ws = HttpClient::new("ws://127.0.0.1:9000/").unwrap_err();
        assert!(ws.to_string().contains("http://"), "{ws}");
        let header = HttpClient::builder("http://h/").header("bad header", "x").build().unwrap_err();
        assert!(matches!(header, ConnectError::InvalidHeader { .. }), "{header}");
    }

    #[test]
    fn answers_are_read_by_id_with_errors_as_rpc() {
        let body = br#"[{"jsonrpc":"2.0","result":5,"id":2},{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":1}]"#;
        let answers = responses(body).unwrap();
        assert_eq!(answers[0].0, Id::Num(2));
        assert_eq!(answers[0].1.as_ref().unwrap().get(), "5");
        assert_eq!(answers[1].1.as_ref().unwrap_err().rpc().unwrap().code, -32601);
        assert!(matches!(responses(b"nope"), Err(HttpError::InvalidResponse(_))));
    }
}
