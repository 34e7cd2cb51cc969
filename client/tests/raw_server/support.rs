//! A hand-written WebSocket JSON-RPC server on loopback, scripted per test,
//! for what a well-behaved server never does.
//!
//! Each test gives a handler that runs once per accepted connection with a
//! [`Conn`]: it reads the client's frames and writes whatever it likes.
//! [`RawServer::kill`] drops every socket without a close frame (a crash);
//! [`RawServer::start_on`] binds the same address again (a restart).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

/// Hang guard: far longer than anything here should take, even on a busy machine.
pub(crate) const GUARD: Duration = Duration::from_secs(30);

/// Awaits `future`, failing the test (instead of hanging it) past [`GUARD`].
pub(crate) async fn within<F: IntoFuture>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(GUARD, future.into_future()).await {
        Ok(out) => out,
        Err(_) => panic!("hung for {GUARD:?}: {what}"),
    }
}

/// One accepted connection, from the server's side.
pub(crate) struct Conn {
    ws: WebSocketStream<TcpStream>,
    /// The upgrade request's headers.
    pub(crate) headers: http::HeaderMap,
}

impl Conn {
    /// The next text frame as JSON; `None` once the client closed or the socket ended.
    pub(crate) async fn recv(&mut self) -> Option<Value> {
        Some(serde_json::from_str(&self.recv_text().await?).expect("the client sends JSON"))
    }

    /// The next text frame as it came; `None` once the socket ended.
    pub(crate) async fn recv_text(&mut self) -> Option<String> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(text)) => return Some(text.to_string()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// The next frame, which must be a single request (or notification).
    pub(crate) async fn request(&mut self) -> Value {
        let frame = self.recv().await.expect("a request, not the end of the socket");
        assert!(frame.get("method").is_some(), "expected a request, got {frame}");
        frame
    }

    /// The close frame's code, once the client closes.
    pub(crate) async fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    pub(crate) async fn send_text(&mut self, text: impl Into<String>) {
        let text: String = text.into();
        self.ws.send(Message::text(text)).await.expect("the client is connected");
    }

    pub(crate) async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    /// Answers `request` with `result`.
    pub(crate) async fn reply(&mut self, request: &Value, result: Value) {
        self.send(json!({"jsonrpc": "2.0", "result": result, "id": request["id"]})).await;
    }

    /// Answers every request with `answer(request)` (a result, or `Err` for
    /// an error object), single or batched, until the socket ends.
    /// Notifications are passed to `answer` too; what it returns for them is ignored.
    pub(crate) async fn serve(mut self, mut answer: impl FnMut(&Value) -> Result<Value, Value>) {
        while let Some(frame) = self.recv().await {
            let mut respond = |req: &Value| {
                let outcome = answer(req);
                req.get("id").map(|id| match outcome {
                    Ok(result) => json!({"jsonrpc": "2.0", "result": result, "id": id}),
                    Err(error) => json!({"jsonrpc": "2.0", "error": error, "id": id}),
                })
            };
            let out = match &frame {
                Value::Array(entries) => {
                    let answers: Vec<Value> = entries.iter().filter_map(&mut respond).collect();
                    (!answers.is_empty()).then_some(Value::Array(answers))
                }
                single => respond(single),
            };
            if let Some(out) = out
                && self.ws.send(Message::text(out.to_string())).await.is_err()
            {
                return;
            }
        }
    }
}

/// A loopback server running a handler per connection.
pub(crate) struct RawServer {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    conns: Arc<Mutex<JoinSet<()>>>,
}

impl RawServer {
    /// Listens on 127.0.0.1 on a free port.
    pub(crate) async fn start<F, Fut>(handler: F) -> RawServer
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::start_on("127.0.0.1:0".parse().unwrap(), handler).await
    }

    /// Listens on `addr` (the address of a server that was killed: a restart).
    pub(crate) async fn start_on<F, Fut>(addr: SocketAddr, handler: F) -> RawServer
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::listen(addr, None, handler).await
    }

    /// Refuses every upgrade with HTTP `status`.
    pub(crate) async fn refusing(status: u16) -> RawServer {
        Self::listen("127.0.0.1:0".parse().unwrap(), Some(status), |_conn| async {}).await
    }

    async fn listen<F, Fut>(addr: SocketAddr, refuse: Option<u16>, handler: F) -> RawServer
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(addr).unwrap_or_else(|e| panic!("cannot bind {addr}: {e}"));
        let listener: TcpListener = socket.listen(64).unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(Mutex::new(JoinSet::new()));
        let handler = Arc::new(handler);
        let accept = {
            let conns = Arc::clone(&conns);
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let handler = Arc::clone(&handler);
                    conns.lock().spawn(async move {
                        let mut headers = http::HeaderMap::new();
                        // The handshake's callback signature is tungstenite's, large error and all.
                        #[allow(clippy::result_large_err)]
                        let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                            headers = req.headers().clone();
                            match refuse {
                                None => Ok(resp),
                                Some(status) => {
                                    let mut refusal = ErrorResponse::new(Some("refused".into()));
                                    *refusal.status_mut() = http::StatusCode::from_u16(status).unwrap();
                                    Err(refusal)
                                }
                            }
                        };
                        let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else { return };
                        handler(Conn { ws, headers }).await;
                    });
                }
            })
        };
        RawServer { addr, accept, conns }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL a client connects to.
    pub(crate) fn url(&self) -> String {
        format!("ws://{}/rpc", self.addr)
    }

    /// Crashes the server: stops listening and drops every socket without a
    /// close frame. Returns once the port is free again.
    pub(crate) async fn kill(self) {
        self.accept.abort();
        let _ = self.accept.await;
        let mut conns = std::mem::take(&mut *self.conns.lock());
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

/// A port on 127.0.0.1 where nothing listens (until a test starts a server there).
pub(crate) async fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}
