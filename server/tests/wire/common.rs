//! Helpers shared by the wire tests: start a server on 127.0.0.1:0, connect
//! a plain client, send and read frames, and a set of test methods.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use switchboard_server::{ServerBuilder, ServerHandle};
use switchboard_shared::{CloseReason, Context, ErrorObject, Methods};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use uuid::Uuid;

pub(crate) use crate::support::{Ws, guard};

/// Starts a server with the test methods on 127.0.0.1:0.
pub(crate) async fn start(builder: ServerBuilder) -> ServerHandle {
    start_with(builder, methods()).await
}

/// Starts a server with `methods` on 127.0.0.1:0.
pub(crate) async fn start_with(builder: ServerBuilder, methods: Methods) -> ServerHandle {
    builder.build(methods).listen("127.0.0.1:0").await.expect("listen on port 0")
}

/// The server's URL with `path` (which may hold a query).
pub(crate) fn url(server: &ServerHandle, path: &str) -> String {
    format!("ws://{}{path}", server.local_addr().expect("the server listens"))
}

/// Connects to `/`.
pub(crate) async fn connect(server: &ServerHandle) -> Ws {
    try_connect(url(server, "/")).await.expect("connect")
}

/// Connects with a request the caller built (headers, path).
pub(crate) async fn try_connect(request: impl IntoClientRequest + Unpin) -> Result<Ws, WsError> {
    guard("connect", async { connect_async(request).await.map(|(ws, _response)| ws) }).await
}

/// The HTTP status of a refused upgrade.
pub(crate) fn refused_status(result: Result<Ws, WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, the upgrade succeeded"),
    }
}

/// Sends one text frame.
pub(crate) async fn send(ws: &mut Ws, text: impl Into<String>) {
    ws.send(Message::text(text.into())).await.expect("send a frame");
}

/// Sends a JSON value as a text frame.
pub(crate) async fn send_json(ws: &mut Ws, value: Value) {
    send(ws, value.to_string()).await;
}

/// The next frame that is not a ping or pong.
pub(crate) async fn next_message(ws: &mut Ws) -> Message {
    loop {
        match guard("a frame from the server", ws.next()).await {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(message)) => return message,
            Some(Err(e)) => panic!("the connection failed: {e}"),
            None => panic!("the connection ended"),
        }
    }
}

/// The next text frame, parsed.
pub(crate) async fn recv(ws: &mut Ws) -> Value {
    match next_message(ws).await {
        Message::Text(text) => serde_json::from_str(&text).expect("the server sends JSON"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Sends a request and returns the next frame, checking it answers `id`.
pub(crate) async fn call(ws: &mut Ws, id: i64, method: &str, params: Value) -> Value {
    send_json(ws, json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id})).await;
    let reply = recv(ws).await;
    assert_eq!(reply["id"], json!(id), "the next frame should answer call {id}: {reply}");
    assert_eq!(reply["jsonrpc"], "2.0", "{reply}");
    reply
}

/// Reads (and skips) frames until the close frame; returns its code and reason.
pub(crate) async fn expect_close(ws: &mut Ws) -> (u16, String) {
    loop {
        match guard("a close frame", ws.next()).await {
            Some(Ok(Message::Close(Some(frame)))) => return (frame.code.into(), frame.reason.to_string()),
            Some(Ok(Message::Close(None))) => panic!("a close frame without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("the connection ended without a close frame: {e}"),
            None => panic!("the connection ended without a close frame"),
        }
    }
}

/// The connection id the server gave this client (via `whoami`).
pub(crate) async fn connection_id(ws: &mut Ws) -> Uuid {
    let reply = call(ws, 9_999, "whoami", json!([])).await;
    reply["result"]["id"].as_str().expect("whoami answers an id").parse().expect("a uuid")
}

/// The test methods: `echo`, `add`, `fail`, `panic_sync`, `panic_async`, `whoami`.
pub(crate) fn methods() -> Methods {
    let mut methods = Methods::new();
    methods.register_sync("echo", |params: Box<RawValue>, _cx: Context| Ok::<_, ErrorObject>(params));
    methods.register_sync("add", |(a, b): (i64, i64), _cx: Context| Ok::<_, ErrorObject>(a + b));
    methods.register_sync("fail", |(): (), _cx: Context| {
        Err::<(), _>(ErrorObject::new(42, "out of stock").with_data(json!({"sku": 7})))
    });
    methods.register_sync("panic_sync", |(): (), _cx: Context| -> Result<(), ErrorObject> {
        panic!("boom (expected by the test)")
    });
    methods.register("panic_async", |(): (), _cx: Context| async move {
        tokio::task::yield_now().await;
        if true {
            panic!("boom (expected by the test)");
        }
        Ok::<(), ErrorObject>(())
    });
    methods.register_sync("whoami", |(): (), cx: Context| {
        let info = cx.info();
        Ok::<_, ErrorObject>(json!({
            "id": info.id.to_string(),
            "remote": info.remote.map(|r| r.to_string()),
            "path": info.path,
            "query": info.query,
            "x_test": info.headers.get("x-test").and_then(|v| v.to_str().ok()),
            "auth": info.auth,
        }))
    });
    methods
}

/// A method `block` that reports it started, then waits for a permit.
pub(crate) struct Gate {
    /// Receives the params of every `block` call as it starts.
    pub(crate) started: mpsc::UnboundedReceiver<Value>,
    /// One permit lets one `block` call finish.
    pub(crate) open: Arc<Semaphore>,
}

impl Gate {
    /// Registers `block [value]` (answers `value` once let through).
    pub(crate) fn install(methods: &mut Methods) -> Gate {
        let (tx, started) = mpsc::unbounded_channel();
        let open = Arc::new(Semaphore::new(0));
        let permits = Arc::clone(&open);
        methods.register("block", move |(value,): (Value,), _cx: Context| {
            let tx = tx.clone();
            let permits = Arc::clone(&permits);
            async move {
                let _ = tx.send(value.clone());
                permits.acquire().await.expect("the gate stays open").forget();
                Ok::<_, ErrorObject>(value)
            }
        });
        Gate { started, open }
    }

    /// Waits until a `block` call has started; returns its params.
    pub(crate) async fn wait_started(&mut self) -> Value {
        guard("a block call starting", self.started.recv()).await.expect("the server keeps the methods")
    }
}

/// Hooks that report every connect and disconnect on channels.
pub(crate) struct Events {
    /// Ids of connections as they are registered.
    pub(crate) connected: mpsc::UnboundedReceiver<Uuid>,
    /// Ids and reasons of connections as they end.
    pub(crate) disconnected: mpsc::UnboundedReceiver<(Uuid, CloseReason)>,
}

impl Events {
    /// Installs the hooks on `builder`.
    pub(crate) fn install(builder: ServerBuilder) -> (ServerBuilder, Events) {
        let (connect_tx, connected) = mpsc::unbounded_channel();
        let (disconnect_tx, disconnected) = mpsc::unbounded_channel();
        let builder = builder
            .on_connect(move |peer| {
                let _ = connect_tx.send(peer.id());
            })
            .on_disconnect(move |peer, reason| {
                let _ = disconnect_tx.send((peer.id(), reason.clone()));
            });
        (builder, Events { connected, disconnected })
    }

    /// The next registered connection.
    pub(crate) async fn next_connected(&mut self) -> Uuid {
        guard("on_connect", self.connected.recv()).await.expect("the hook lives")
    }

    /// The next ended connection and why.
    pub(crate) async fn next_disconnected(&mut self) -> (Uuid, CloseReason) {
        guard("on_disconnect", self.disconnected.recv()).await.expect("the hook lives")
    }
}

/// Upgrades a raw TCP connection by hand, for tests whose client must never
/// write (tungstenite answers pings on its own). Returns the socket and the
/// bytes read past the response.
pub(crate) async fn raw_upgrade(addr: std::net::SocketAddr) -> (TcpStream, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = guard("tcp connect", TcpStream::connect(addr)).await.expect("tcp connect");
    let request = "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    tcp.write_all(request.as_bytes()).await.expect("send the upgrade request");
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 1024];
        let n = guard("the upgrade response", tcp.read(&mut chunk)).await.expect("read the response");
        assert!(n > 0, "the server closed during the upgrade");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            assert!(buf.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&buf));
            return (tcp, buf.split_off(end + 4));
        }
    }
}

/// Reads the server's (unmasked) frames from a raw socket, never writing,
/// until a close frame; returns its code and reason.
pub(crate) async fn raw_expect_close(tcp: &mut TcpStream, mut buf: Vec<u8>) -> (u16, String) {
    use tokio::io::AsyncReadExt;
    loop {
        if buf.len() >= 2 {
            let opcode = buf[0] & 0x0f;
            let (header, len) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (4, u16::from_be_bytes([buf[2], buf[3]]) as usize),
                127 if buf.len() >= 10 => (10, u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize),
                126 | 127 => (usize::MAX, 0),
                short => (2, short as usize),
            };
            if header != usize::MAX && buf.len() >= header + len {
                let payload = buf[header..header + len].to_vec();
                buf.drain(..header + len);
                if opcode == 0x8 {
                    assert!(payload.len() >= 2, "a close frame without a code");
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    return (code, String::from_utf8_lossy(&payload[2..]).into_owned());
                }
                continue;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = guard("a close frame", tcp.read(&mut chunk)).await.expect("read a frame");
        assert!(n > 0, "the connection ended without a close frame");
        buf.extend_from_slice(&chunk[..n]);
    }
}
