//! One endpoint's life: open the socket, run the peer engine on it, notice
//! when it ends, wait as the reconnect policy says, open it again.
//!
//! Each endpoint has one supervisor task ([`supervise`]). It owns the
//! endpoint's state on the [`Board`] and publishes the open connection's
//! [`PeerHandle`] in the [`Endpoint`] for the balancer to hand out. Calls
//! pending when a socket ends fail with `Disconnected` (the peer engine does
//! that); nothing is resent.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use serde::de::IgnoredAny;
use switchboard_shared::{ConnectionInfo, Error, Methods, PeerConfig, PeerHandle};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::Instrument;
use url::Url;

use crate::builder::AttemptError;
use crate::reconnect::{Reconnect, Schedule};
use crate::state::{Board, State};
use crate::subscription::{Routing, SubscriptionError};
use crate::tls;

/// How long a closing socket may take to finish its close handshake.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// One server the client keeps a connection to.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// Its position on the board and in the balancer.
    pub(crate) index: usize,
    pub(crate) url: Url,
    /// The open connection, if any.
    peer: RwLock<Option<PeerHandle>>,
    /// Calls and notifications the balancer sent through it.
    sent: AtomicU64,
    /// Sockets opened so far.
    connections: AtomicU64,
    /// Unknown replies counted by connections that have ended.
    retired_unknown: AtomicU64,
}

impl Endpoint {
    pub(crate) fn new(index: usize, url: Url) -> Self {
        Endpoint {
            index,
            url,
            peer: RwLock::new(None),
            sent: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            retired_unknown: AtomicU64::new(0),
        }
    }

    /// The open connection, unless it has ended.
    pub(crate) fn peer(&self) -> Option<PeerHandle> {
        self.peer.read().as_ref().filter(|p| !p.is_closing()).cloned()
    }

    /// Whether it has an open connection.
    pub(crate) fn is_up(&self) -> bool {
        self.peer.read().as_ref().is_some_and(|p| !p.is_closing())
    }

    pub(crate) fn count_sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub(crate) fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    pub(crate) fn unknown_replies(&self) -> u64 {
        let current = self.peer.read().as_ref().map_or(0, PeerHandle::unknown_replies);
        self.retired_unknown.load(Ordering::Relaxed) + current
    }

    pub(crate) fn pending_calls(&self) -> usize {
        self.peer.read().as_ref().map_or(0, PeerHandle::pending_calls)
    }

    fn publish(&self, peer: PeerHandle) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        *self.peer.write() = Some(peer);
    }

    fn retire(&self) {
        let mut slot = self.peer.write();
        if let Some(peer) = slot.take() {
            self.retired_unknown.fetch_add(peer.unknown_replies(), Ordering::Relaxed);
        }
    }
}

/// Everything needed to open (and reopen) a connection; shared by every
/// endpoint of one client.
pub(crate) struct Dialer {
    pub(crate) headers: http::HeaderMap,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) ws_config: WebSocketConfig,
    pub(crate) connect_timeout: Duration,
    pub(crate) peer_config: PeerConfig,
    pub(crate) methods: Arc<Methods>,
    pub(crate) reconnect: Reconnect,
    pub(crate) routing: Arc<Routing>,
    pub(crate) board: Arc<Board>,
}

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The URL of the endpoint a connection was opened to, in its
/// `ConnectionInfo` extensions.
#[derive(Debug, Clone)]
pub(crate) struct EndpointUrl(pub(crate) Arc<str>);

/// The URL of the endpoint `peer` is connected to.
pub(crate) fn endpoint_url(peer: &PeerHandle) -> String {
    peer.info().extensions.get::<EndpointUrl>().map_or_else(|| peer.info().path.clone(), |url| url.0.to_string())
}

impl Dialer {
    /// One attempt: TCP, TLS for `wss://`, then the WebSocket upgrade with our headers.
    async fn open(&self, url: &Url) -> Result<(Socket, ConnectionInfo), AttemptError> {
        let (ws, response) =
            open_socket(url, &self.headers, self.tls.as_ref(), self.ws_config, self.connect_timeout).await?;
        let mut info = ConnectionInfo::new();
        info.remote = match ws.get_ref() {
            MaybeTlsStream::Plain(tcp) => tcp.peer_addr().ok(),
            MaybeTlsStream::Rustls(tls) => tls.get_ref().0.peer_addr().ok(),
            _ => None,
        };
        info.path = url.path().to_owned();
        info.query = url.query().map(str::to_owned);
        info.headers = response.headers().clone();
        info.extensions.insert(EndpointUrl(Arc::from(url.as_str())));
        Ok((ws, info))
    }
}

/// Opens one WebSocket to `url`: TCP, TLS for `wss://`, then the upgrade
/// request with `headers`, all within `timeout`.
pub(crate) async fn open_socket(
    url: &Url,
    headers: &http::HeaderMap,
    tls: Option<&Arc<rustls::ClientConfig>>,
    ws_config: WebSocketConfig,
    timeout: Duration,
) -> Result<(Socket, http::Response<Option<Vec<u8>>>), AttemptError> {
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| AttemptError::Handshake(format!("cannot build the upgrade request: {e}")))?;
    request.headers_mut().extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    let connector = tls::connector(url.scheme() == "wss", tls);
    let attempt = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(ws_config),
        true, // no Nagle: calls are small and latency matters
        Some(connector),
    );
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(e)) => Err(describe(e)),
        Err(_) => Err(AttemptError::TimedOut(timeout)),
    }
}

/// Turns a handshake failure into an error that says what happened, once.
fn describe(e: WsError) -> AttemptError {
    match e {
        WsError::Http(response) => {
            let html = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/html"));
            let reason = if html { None } else { one_line(response.body().as_deref()) };
            AttemptError::Refused { status: response.status(), reason }
        }
        WsError::Io(io) => match tls::rustls_error(&io) {
            // A certificate the client does not trust, say: TLS is what failed.
            Some(tls) => AttemptError::Tls(tls.to_string()),
            None => AttemptError::Io(Arc::new(io)),
        },
        WsError::Tls(tls) => AttemptError::Tls(tls.to_string()),
        WsError::Url(bad) => AttemptError::Handshake(format!("unusable URL: {bad}")),
        other => AttemptError::Handshake(other.to_string()),
    }
}

/// The longest reason taken from a refusal's body.
const MAX_REASON_CHARS: usize = 200;

/// A response body as one line of text: whitespace runs become one space,
/// and a long body is cut (with `…`). `None` for an empty body.
fn one_line(body: Option<&[u8]>) -> Option<String> {
    let text = String::from_utf8_lossy(body?);
    let mut line = String::new();
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        line.push_str(word);
    }
    if line.is_empty() {
        return None;
    }
    if let Some((cut, _)) = line.char_indices().nth(MAX_REASON_CHARS) {
        line.truncate(cut);
        line.push('…');
    }
    Some(line)
}

/// Polls `future` once right here, so whatever it queues on a connection is
/// queued now, in program order, then lets it finish on its own task.
/// Without a Tokio runtime at hand it is dropped.
pub(crate) fn start_now<F>(future: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    let mut future = Box::pin(future);
    let mut cx = Context::from_waker(Waker::noop());
    if future.as_mut().poll(&mut cx).is_pending() {
        runtime.spawn(future);
    }
}

/// Subscribes a fresh connection to every topic the client holds.
fn resubscribe(peer: &PeerHandle, dialer: &Dialer, endpoint: &Endpoint, shutdown: &watch::Receiver<Phase>) {
    for topic in dialer.routing.topics() {
        let again = Resubscribe {
            peer: peer.clone(),
            routing: Arc::clone(&dialer.routing),
            policy: dialer.reconnect.clone(),
            endpoint: endpoint.url.to_string(),
            shutdown: shutdown.clone(),
        };
        // Queued now, in order with what follows on this connection.
        start_now(again.run(topic));
    }
}

/// Subscribing one topic again on a fresh connection, retried with the
/// reconnect policy's backoff; each failure goes to the topic's subscriptions.
struct Resubscribe {
    peer: PeerHandle,
    routing: Arc<Routing>,
    policy: Reconnect,
    endpoint: String,
    shutdown: watch::Receiver<Phase>,
}

impl Resubscribe {
    async fn run(mut self, topic: String) {
        let mut schedule = Schedule::new(self.policy.clone());
        loop {
            let cause = match self.peer.call::<IgnoredAny>("rpc.subscribe", [&topic]).await {
                Ok(_) => return,
                Err(e) => e,
            };
            // A connection that ended is the next connection's to subscribe;
            // a topic nobody wants any more, or a client closing, needs nothing.
            let over = *self.shutdown.borrow() == Phase::Stopped;
            if matches!(cause, Error::Disconnected) || self.peer.is_closing() || over || !self.routing.has_topic(&topic)
            {
                return;
            }
            let retry_in = schedule.next_delay();
            tracing::warn!(%topic, error = %cause, ?retry_in, "re-subscribing after a reconnect failed");
            self.routing.report(&SubscriptionError::new(&topic, &self.endpoint, cause, retry_in));
            let Some(delay) = retry_in else { return };
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = self.peer.closed() => return,
                () = stopping(&mut self.shutdown) => return,
            }
            if !self.routing.has_topic(&topic) {
                return;
            }
        }
    }
}

/// Where the client is in its life; supervisors stop at `Stopped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connecting, calling, reconnecting.
    Running,
    /// `close()` was called: no new calls; in-flight ones may finish.
    Draining,
    /// Close every socket and stop.
    Stopped,
}

/// Resolves when the client stops (or has been dropped).
async fn stopping(shutdown: &mut watch::Receiver<Phase>) {
    let _ = shutdown.wait_for(|phase| *phase == Phase::Stopped).await;
}

/// Keeps `endpoint` connected until shutdown or until the policy gives up.
pub(crate) async fn supervise(endpoint: Arc<Endpoint>, dialer: Arc<Dialer>, shutdown: watch::Receiver<Phase>) {
    let span = tracing::info_span!("endpoint", url = %endpoint.url);
    run(endpoint, dialer, shutdown).instrument(span).await;
}

async fn run(endpoint: Arc<Endpoint>, dialer: Arc<Dialer>, mut shutdown: watch::Receiver<Phase>) {
    let board = &dialer.board;
    let index = endpoint.index;
    let mut schedule = Schedule::new(dialer.reconnect.clone());
    'life: loop {
        board.set(index, State::Connecting);
        let attempt = tokio::select! {
            attempt = dialer.open(&endpoint.url) => attempt,
            () = stopping(&mut shutdown) => break 'life,
        };
        match attempt {
            Ok((ws, info)) => {
                let peer =
                    switchboard_shared::peer::spawn(ws, Arc::clone(&dialer.methods), info, dialer.peer_config.clone());
                let up_since = Instant::now();
                // Published before the topics are read: a subscribe racing with
                // this either finds its topic in the list or this peer among
                // the connections it subscribes on (or both).
                endpoint.publish(peer.clone());
                resubscribe(&peer, &dialer, &endpoint, &shutdown);
                board.ready(index);
                tracing::info!("connected");
                let ended = tokio::select! {
                    reason = peer.closed() => Some(reason),
                    () = stopping(&mut shutdown) => None,
                };
                match ended {
                    Some(reason) => {
                        endpoint.retire();
                        tracing::info!(%reason, "connection ended");
                        schedule.connection_ended(up_since.elapsed());
                    }
                    None => {
                        // Nobody gets this peer any more; close it after what is queued.
                        *endpoint.peer.write() = None;
                        peer.close(1000, "client closing");
                        let _ = tokio::time::timeout(CLOSE_WAIT, peer.closed()).await;
                        endpoint.retired_unknown.fetch_add(peer.unknown_replies(), Ordering::Relaxed);
                        break 'life;
                    }
                }
            }
            Err(error) => {
                tracing::debug!(%error, "connection attempt failed");
                board.failed(index, error);
            }
        }
        match schedule.next_delay() {
            None => {
                tracing::info!("reconnect policy gave up");
                break 'life;
            }
            Some(delay) if delay.is_zero() => {}
            Some(delay) => {
                board.set(index, State::Offline);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stopping(&mut shutdown) => break 'life,
                }
            }
        }
    }
    endpoint.retire();
    board.set(index, State::Closed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_body_becomes_one_short_line() {
        assert_eq!(one_line(Some(b"  unknown\r\n token \n")), Some("unknown token".to_owned()));
        assert_eq!(one_line(Some(b" \n ")), None);
        assert_eq!(one_line(None), None);
        let long = one_line(Some("é".repeat(500).as_bytes())).unwrap();
        assert_eq!(long.chars().count(), MAX_REASON_CHARS + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn a_refusal_names_the_status_and_the_reason() {
        let refused = |status: u16, body: &str, content_type: &str| {
            let mut response = http::Response::new(Some(body.as_bytes().to_vec()));
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
            if !content_type.is_empty() {
                response.headers_mut().insert(http::header::CONTENT_TYPE, content_type.parse().unwrap());
            }
            describe(WsError::Http(Box::new(response))).to_string()
        };
        assert_eq!(refused(403, "unknown token", ""), "HTTP 403 Forbidden: unknown token");
        assert_eq!(refused(401, "", ""), "HTTP 401 Unauthorized (check the token and headers)");
        assert_eq!(refused(404, "", "text/plain"), "HTTP 404 Not Found (check the path)");
        assert_eq!(refused(502, "<html><body>Bad</body></html>", "text/html; charset=utf-8"), "HTTP 502 Bad Gateway");
    }
}
