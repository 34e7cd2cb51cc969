//! [`ClientBuilder`]: every setting of a client, each with its default, and
//! the two ways to start one ([`ClientBuilder::build`] in the background,
//! [`ClientBuilder::connect`] waiting for the first connection).

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use switchboard_shared::{Heartbeat, Id, IdGenerator, MalformedFrames, Methods, Overflow, PeerConfig};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use url::Url;

use crate::balancer::Balancer;
use crate::call::WhenOffline;
use crate::connection::{Dialer, Endpoint, Phase, open_socket, supervise};
use crate::reconnect::Reconnect;
use crate::state::{Board, State};
use crate::subscription::{Routing, client_methods};
use crate::{Client, InFlight, Inner};

/// Why a client could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// An endpoint is not a usable WebSocket URL.
    #[error("invalid endpoint {url:?}: {reason} (expected ws://host:port/path or wss://host/path)")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The builder was given no endpoint.
    #[error("no endpoint to connect to: give one with endpoint(..) or endpoints(..)")]
    NoEndpoint,
    /// A header for the upgrade request is not valid HTTP.
    #[error("invalid header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name as given.
        name: String,
        /// What is wrong with the name or the value.
        reason: String,
    },
    /// A certificate given to [`ClientBuilder::root_certificate`] is not a
    /// PEM CA certificate.
    #[error("invalid root certificate: {reason}")]
    InvalidCertificate {
        /// What is wrong with it.
        reason: String,
    },
    /// The client was started outside a Tokio runtime.
    #[error("a client must be built inside a Tokio runtime (call it from async code run by Tokio)")]
    NoRuntime,
    /// [`ClientBuilder::connect`]: the first attempt failed on every endpoint.
    /// Check that the server runs and the URL, token and headers are right,
    /// or use [`ClientBuilder::build`] to keep retrying in the background.
    ///
    /// Its message names each endpoint once, with why it failed:
    /// `could not connect to ws://127.0.0.1:9000/: HTTP 403 Forbidden: unknown token`.
    #[error("{}", list_failures(.failures))]
    Unreachable {
        /// Each endpoint and why its first attempt failed.
        failures: Vec<(String, AttemptError)>,
    },
}

fn list_failures(failures: &[(String, AttemptError)]) -> String {
    match failures {
        [] => "could not connect".to_owned(),
        [(url, e)] => format!("could not connect to {url}: {e}"),
        many => {
            let all: Vec<String> = many.iter().map(|(url, e)| format!("{url}: {e}")).collect();
            format!("could not connect to any endpoint: {}", all.join("; "))
        }
    }
}

/// Why one attempt to open an endpoint's socket (TCP, TLS, then the
/// WebSocket upgrade) failed. Its message says only that: the endpoint's URL
/// is said once by whoever reports it ([`ConnectError::Unreachable`]).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AttemptError {
    /// The TCP connection failed (refused, unreachable, a name that does not
    /// resolve) or the socket failed during the handshake; the message is the
    /// operating system's.
    #[error("{0}")]
    Io(Arc<std::io::Error>),
    /// The TLS handshake with a `wss://` endpoint failed.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The server answered the upgrade request with an HTTP status other
    /// than 101, e.g. `HTTP 403 Forbidden: unknown token`.
    #[error("{}", refusal(*.status, .reason.as_deref()))]
    Refused {
        /// The HTTP status it answered with.
        status: http::StatusCode,
        /// The response body as one line of text (a Switchboard server sends
        /// its authenticator's reason there); `None` when it sent none, or an
        /// HTML page.
        reason: Option<String>,
    },
    /// The attempt took longer than the connect timeout
    /// ([`ClientBuilder::connect_timeout`]).
    #[error("timed out after {0:?} (the connect timeout)")]
    TimedOut(Duration),
    /// The WebSocket handshake failed otherwise (a malformed answer, a
    /// missing upgrade header...).
    #[error("WebSocket handshake failed: {0}")]
    Handshake(String),
}

impl AttemptError {
    /// The HTTP status of a refused upgrade.
    pub fn status(&self) -> Option<http::StatusCode> {
        match self {
            AttemptError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `HTTP 403 Forbidden: unknown token`; without a reason, a hint of what to check.
fn refusal(status: http::StatusCode, reason: Option<&str>) -> String {
    let hint = match (reason, status.as_u16()) {
        (Some(reason), _) => return format!("HTTP {status}: {reason}"),
        (None, 401 | 403) => " (check the token and headers)",
        (None, 404) => " (check the path)",
        (None, _) => "",
    };
    format!("HTTP {status}{hint}")
}

/// Builds a [`Client`]. Every setting has a default; only an endpoint is required.
///
/// ```no_run
/// use std::time::Duration;
/// use switchboard_client::{Backoff, Client, Reconnect, WhenOffline};
/// use switchboard_shared::{Context, ErrorObject, Methods};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let mut methods = Methods::new();
/// methods.register_sync("client.ping", |(): (), _cx: Context| Ok::<_, ErrorObject>("pong"));
///
/// let client = Client::builder()
///     .endpoints(["ws://10.0.0.1:9000/rpc", "ws://10.0.0.2:9000/rpc"])
///     .token("s3cret")
///     .header("x-tenant", "acme")
///     .timeout(Duration::from_secs(5))
///     .when_offline(WhenOffline::WaitReady)
///     .reconnect(Reconnect::Backoff(Backoff { max: Duration::from_secs(30), ..Backoff::default() }))
///     .methods(methods)
///     .connect()
///     .await?;
/// # let _ = client; Ok(()) }
/// ```
#[must_use = "a builder does nothing until build() or connect()"]
pub struct ClientBuilder {
    endpoints: Vec<String>,
    methods: Methods,
    timeout: Option<Duration>,
    when_offline: WhenOffline,
    reconnect: Reconnect,
    id_generator: Option<IdGenerator>,
    headers: Vec<(String, String)>,
    connect_timeout: Duration,
    close_grace: Duration,
    notification_buffer: usize,
    max_message_size: Option<usize>,
    max_in_flight: usize,
    max_queue_bytes: usize,
    heartbeat: Option<Heartbeat>,
    tls: Option<Arc<rustls::ClientConfig>>,
    roots: Vec<Vec<u8>>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        let peer = PeerConfig::default();
        ClientBuilder {
            endpoints: Vec::new(),
            methods: Methods::new(),
            timeout: Some(Duration::from_secs(10)),
            when_offline: WhenOffline::FailFast,
            reconnect: Reconnect::default(),
            id_generator: None,
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            close_grace: Duration::from_secs(5),
            notification_buffer: 1024,
            max_message_size: Some(64 << 20),
            max_in_flight: peer.max_in_flight,
            max_queue_bytes: peer.max_queue_bytes,
            heartbeat: None,
            tls: None,
            roots: Vec::new(),
        }
    }
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoints", &self.endpoints)
            .field("methods", &self.methods)
            .field("timeout", &self.timeout)
            .field("when_offline", &self.when_offline)
            .field("reconnect", &self.reconnect)
            .field("custom_ids", &self.id_generator.is_some())
            .field("headers", &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("connect_timeout", &self.connect_timeout)
            .field("close_grace", &self.close_grace)
            .field("notification_buffer", &self.notification_buffer)
            .field("max_message_size", &self.max_message_size)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("heartbeat", &self.heartbeat)
            .field("custom_tls", &self.tls.is_some())
            .field("root_certificates", &self.roots.len())
            .finish()
    }
}

impl ClientBuilder {
    /// A builder with every default and no endpoint.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an endpoint (`ws://host:port/path` or `wss://...`). With several,
    /// the client keeps a connection to each and spreads calls round-robin
    /// over those that are up. A bad URL fails `build`/`connect` with
    /// [`ConnectError::InvalidUrl`].
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoints.push(url.into());
        self
    }

    /// Adds several endpoints (see [`ClientBuilder::endpoint`]).
    pub fn endpoints<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.endpoints.extend(urls.into_iter().map(Into::into));
        self
    }

    /// Methods and notification handlers the server may call on this client
    /// (the same registry type a server uses). Default: none, so the server's
    /// calls get -32601 Method not found.
    pub fn methods(mut self, methods: Methods) -> Self {
        self.methods = methods;
        self
    }

    /// Default timeout of every call, batch and subscribe. Default 10 s. A
    /// call that gets no reply in time fails with [`Error::Timeout`](crate::Error::Timeout) and
    /// leaves the pending table; a late reply is counted and dropped.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// No default timeout: calls wait for their reply until the socket ends
    /// (each call can still set its own).
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// What calls do while no endpoint is connected. Default
    /// [`WhenOffline::FailFast`]: fail at once with [`Error::Offline`](crate::Error::Offline).
    pub fn when_offline(mut self, policy: WhenOffline) -> Self {
        self.when_offline = policy;
        self
    }

    /// What an endpoint does when its socket ends or an attempt fails.
    /// Default: [`Reconnect::default`] (at once, then from 100 ms growing
    /// 1.5x with jitter, capped at 10 s, forever).
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = policy;
        self
    }

    /// Makes the ids of our calls. Default: a counter from 1, per connection.
    /// The generator is shared by every connection and must not repeat an id
    /// still pending (a repeat fails that call with [`Error::Encode`](crate::Error::Encode)).
    ///
    /// ```
    /// use switchboard_client::Client;
    /// use switchboard_shared::Id;
    /// let builder = Client::builder().id_generator(|| Id::from(uuid::Uuid::new_v4().to_string()));
    /// # let _ = builder;
    /// ```
    pub fn id_generator(mut self, generate: impl Fn() -> Id + Send + Sync + 'static) -> Self {
        self.id_generator = Some(Arc::new(generate));
        self
    }

    /// Sends `Authorization: Bearer <token>` with every upgrade request.
    /// Default: no token. A server that refuses it makes the attempt fail
    /// with [`AttemptError::Refused`]: the HTTP status and the server's reason.
    pub fn token(self, token: impl AsRef<str>) -> Self {
        let value = format!("Bearer {}", token.as_ref());
        self.header("authorization", value)
    }

    /// Adds a header to every upgrade request. Default: none. An invalid
    /// name or value fails `build`/`connect` with [`ConnectError::InvalidHeader`].
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// How long one attempt to open a socket (TCP, TLS, upgrade) may take.
    /// Default 10 s; a slower attempt counts as failed.
    pub fn connect_timeout(mut self, limit: Duration) -> Self {
        self.connect_timeout = limit;
        self
    }

    /// How long [`Client::close`] lets calls in flight finish before it
    /// closes the sockets (they then fail with [`Error::Disconnected`](crate::Error::Disconnected)). Default 5 s.
    pub fn close_grace(mut self, limit: Duration) -> Self {
        self.close_grace = limit;
        self
    }

    /// How many notifications each stream or subscription buffers before new
    /// ones are dropped (and counted). Default 1,024. A positioned
    /// subscription loses nothing to it: it reads what was dropped from the
    /// server's history (see [`positioned`](crate::positioned)).
    pub fn notification_buffer(mut self, entries: usize) -> Self {
        self.notification_buffer = entries.max(1);
        self
    }

    /// Largest message accepted from the server; a larger one closes the
    /// connection (which then reconnects). Default 64 MiB; `None` for no limit.
    pub fn max_message_size(mut self, bytes: Option<usize>) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// How many of the server's calls to this client may be handled at once
    /// before the socket stops being read. Default 256.
    pub fn max_in_flight(mut self, calls: usize) -> Self {
        self.max_in_flight = calls.max(1);
        self
    }

    /// Bytes of outgoing frames that may wait to be written; past it, callers
    /// wait for room (the client never drops or disconnects for it).
    /// Default 4 MiB.
    pub fn max_queue_bytes(mut self, bytes: usize) -> Self {
        self.max_queue_bytes = bytes.max(1);
        self
    }

    /// Pings the server every `interval`; a connection silent for `timeout`
    /// is closed (and reconnected). Default: off (the OS notices dead
    /// sockets only when writing).
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.heartbeat = Some(Heartbeat { interval, timeout });
        self
    }

    /// The TLS configuration for `wss://` endpoints (private roots, client
    /// certificates). Default: rustls with the ring provider and the
    /// webpki (Mozilla) roots.
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Also trusts the CA certificate(s) in `pem` for `wss://` endpoints
    /// (a private CA, or a self-signed server certificate), besides the
    /// webpki roots. Repeatable.
    ///
    /// Default: only the webpki (Mozilla) roots. A PEM that holds no
    /// certificate makes [`build`](Self::build) and [`connect`](Self::connect)
    /// fail with [`ConnectError::InvalidCertificate`]. Unused when
    /// [`tls_config`](Self::tls_config) is set (that config's roots apply).
    pub fn root_certificate(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.roots.push(pem.as_ref().to_vec());
        self
    }

    /// The TLS config to use: the one given, else the roots given, else `None` (the default).
    fn resolved_tls(&self) -> Result<Option<Arc<rustls::ClientConfig>>, ConnectError> {
        if self.tls.is_some() {
            return Ok(self.tls.clone());
        }
        crate::tls::with_roots(&self.roots).map_err(|reason| ConnectError::InvalidCertificate { reason })
    }

    /// Opens one WebSocket the way the client opens its own (this builder's
    /// headers and token, TLS configuration, connect timeout and message size
    /// limit; the endpoints tried in order until one answers) and hands it
    /// over raw: no JSON-RPC engine, no reconnect, no timeouts after the
    /// handshake. For tools that must see every frame as the server sent it:
    /// `switchboard batch` prints the server's answer to a batch as it came,
    /// even a single `"id": null` error for the whole batch.
    ///
    /// Fails like [`ClientBuilder::connect`]: a bad setting, or
    /// [`ConnectError::Unreachable`] with each endpoint's reason.
    ///
    /// ```no_run
    /// use futures_util::{SinkExt, StreamExt};
    /// use switchboard_shared::tokio_tungstenite::tungstenite::Message;
    ///
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut ws = switchboard_client::Client::builder().endpoint("ws://127.0.0.1:9000/").open_socket().await?;
    /// ws.send(Message::text(r#"[{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}]"#)).await?;
    /// if let Some(Ok(Message::Text(answer))) = ws.next().await {
    ///     println!("{answer}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn open_socket(self) -> Result<RawSocket, ConnectError> {
        if self.endpoints.is_empty() {
            return Err(ConnectError::NoEndpoint);
        }
        let urls = self.endpoints.iter().map(|u| parse_url(u)).collect::<Result<Vec<Url>, _>>()?;
        let headers = header_map(&self.headers)?;
        let tls = self.resolved_tls()?;
        let ws_config = ws_config(self.max_message_size);
        let mut failures = Vec::new();
        for url in urls {
            match open_socket(&url, &headers, tls.as_ref(), ws_config, self.connect_timeout).await {
                Ok((ws, _response)) => return Ok(ws),
                Err(e) => failures.push((url.to_string(), e)),
            }
        }
        Err(ConnectError::Unreachable { failures })
    }

    /// Starts the client without waiting: it connects (and reconnects) in
    /// the background, starting in [`State::Connecting`]. Await
    /// [`Client::ready`] or watch [`Client::watch_state`] to know when calls
    /// can go out.
    ///
    /// Fails only on a bad setting, or outside a Tokio runtime.
    pub fn build(self) -> Result<Client, ConnectError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConnectError::NoRuntime)?;
        if self.endpoints.is_empty() {
            return Err(ConnectError::NoEndpoint);
        }
        let urls = self.endpoints.iter().map(|u| parse_url(u)).collect::<Result<Vec<Url>, _>>()?;
        let headers = header_map(&self.headers)?;
        let tls = self.resolved_tls()?;

        let routing = Arc::new(Routing::new(self.notification_buffer));
        let board = Arc::new(Board::new(urls.len()));
        let endpoints: Vec<Arc<Endpoint>> =
            urls.into_iter().enumerate().map(|(i, url)| Arc::new(Endpoint::new(i, url))).collect();
        let strays = crate::stray::Strays::new();
        let peer_config = PeerConfig {
            max_in_flight: self.max_in_flight,
            max_queue_bytes: self.max_queue_bytes,
            overflow: Overflow::Wait,
            call_timeout: self.timeout,
            heartbeat: self.heartbeat,
            id_generator: self.id_generator,
            // A server's frames are answers and calls: never answer garbage with an error.
            malformed_frames: MalformedFrames::Report,
            on_stray: Some(strays.hook()),
            ..PeerConfig::default()
        };
        let ws_config = ws_config(self.max_message_size);
        let dialer = Arc::new(Dialer {
            headers,
            tls,
            ws_config,
            connect_timeout: self.connect_timeout,
            peer_config,
            methods: Arc::new(client_methods(self.methods, Arc::clone(&routing))),
            reconnect: self.reconnect.clone(),
            routing: Arc::clone(&routing),
            board: Arc::clone(&board),
        });
        let (phase, _) = watch::channel(Phase::Running);
        for endpoint in &endpoints {
            runtime.spawn(supervise(Arc::clone(endpoint), Arc::clone(&dialer), phase.subscribe()));
        }
        let inner = Inner {
            balancer: Balancer::new(endpoints),
            board,
            routing,
            reconnect: self.reconnect,
            default_timeout: self.timeout,
            when_offline: self.when_offline,
            close_grace: self.close_grace,
            phase,
            in_flight: InFlight::default(),
            strays,
        };
        Ok(Client { inner: Arc::new(inner) })
    }

    /// Starts the client and waits until an endpoint is ready, or until the
    /// first attempt failed on every endpoint
    /// ([`ConnectError::Unreachable`], and the client is dropped).
    pub async fn connect(self) -> Result<Client, ConnectError> {
        let client = self.build()?;
        let mut slots = client.inner.board.watch_slots();
        let outcome = slots
            .wait_for(|slots| {
                slots.iter().any(|s| s.ever_ready) || slots.iter().all(|s| s.failures > 0 || s.state == State::Closed)
            })
            .await
            .map(|slots| slots.clone());
        match outcome {
            Ok(slots) if slots.iter().any(|s| s.ever_ready) => Ok(client),
            Ok(slots) => {
                let urls = client.inner.balancer.endpoints().iter().map(|e| e.url.to_string());
                let failures = urls.zip(slots).filter_map(|(url, slot)| Some((url, slot.last_error?))).collect();
                Err(ConnectError::Unreachable { failures })
            }
            // The board lives as long as the client we hold.
            Err(_) => Err(ConnectError::Unreachable { failures: Vec::new() }),
        }
    }
}

/// A WebSocket opened by [`ClientBuilder::open_socket`]: tokio-tungstenite's
/// stream (the version re-exported as `switchboard_shared::tokio_tungstenite`)
/// over TCP, or TLS for `wss://`.
pub type RawSocket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_config(max_message_size: Option<usize>) -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(max_message_size).max_frame_size(max_message_size)
}

fn parse_url(text: &str) -> Result<Url, ConnectError> {
    let invalid = |reason: String| ConnectError::InvalidUrl { url: text.to_owned(), reason };
    let url = Url::parse(text).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "ws" | "wss") {
        return Err(invalid(format!("the scheme must be ws or wss, not {:?}", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it names no host".into()));
    }
    Ok(url)
}

fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, ConnectError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let invalid = |reason: String| ConnectError::InvalidHeader { name: name.clone(), reason };
        let key = HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid(format!("bad name: {e}")))?;
        let mut value = HeaderValue::from_str(value).map_err(|e| invalid(format!("bad value: {e}")))?;
        if key == http::header::AUTHORIZATION {
            value.set_sensitive(true);
        }
        map.append(key, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_websocket_urls_with_a_host_are_accepted() {
        assert!(parse_url("ws://127.0.0.1:9000/rpc").is_ok());
        assert!(parse_url("wss://example.com/").is_ok());
        for bad in ["http://example.com/", "example.com:80", "ws://", "not a url"] {
            let err = parse_url(bad).unwrap_err();
            assert!(matches!(err, ConnectError::InvalidUrl { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn the_token_becomes_a_bearer_authorization_header() {
        let b = ClientBuilder::new().token("abc").header("x-tenant", "acme");
        let map = header_map(&b.headers).unwrap();
        assert_eq!(map["authorization"], "Bearer abc");
        assert!(map["authorization"].is_sensitive());
        assert_eq!(map["x-tenant"], "acme");
    }

    #[test]
    fn a_bad_header_is_refused_with_its_name() {
        let err = header_map(&[("bad name".into(), "v".into())]).unwrap_err();
        assert!(matches!(err, ConnectError::InvalidHeader { ref name, .. } if name == "bad name"), "{err}");
        let err = header_map(&[("x-ok".into(), "line\nbreak".into())]).unwrap_err();
        assert!(err.to_string().contains("bad value"), "{err}");
    }

    #[test]
    fn building_outside_a_runtime_says_so() {
        let err = ClientBuilder::new().endpoint("ws://127.0.0.1:1/").build().unwrap_err();
        assert!(matches!(err, ConnectError::NoRuntime));
    }

    #[tokio::test]
    async fn building_without_an_endpoint_says_so() {
        assert!(matches!(ClientBuilder::new().build().unwrap_err(), ConnectError::NoEndpoint));
    }
}
