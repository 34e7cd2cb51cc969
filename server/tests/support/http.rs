//! Plain HTTP/1.1 and WebSocket helpers for the tests of the HTTP
//! integrations (`web`, `axum`): one request per connection, an upgrade, a
//! call, and what a refused upgrade answered.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{Ws, guard};

/// One HTTP/1.1 request with `Connection: close`; the status line's code,
/// the head (lowercased), and the body.
pub(crate) async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let mut stream = guard("connect", TcpStream::connect(addr)).await.expect("connect");
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    guard("the response", stream.read_to_end(&mut response)).await.unwrap();
    let text = String::from_utf8(response).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// One JSON POST with `Connection: close`; the status code and the body.
pub(crate) async fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut stream = guard("connect", TcpStream::connect(addr)).await.expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    guard("the response", stream.read_to_end(&mut response)).await.unwrap();
    let text = String::from_utf8(response).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    (status, body.to_owned())
}

/// Opens a WebSocket with a request the caller built (URL, headers).
pub(crate) async fn connect(request: impl IntoClientRequest + Unpin) -> Result<Ws, WsError> {
    guard("connect", async { connect_async(request).await.map(|(ws, _)| ws) }).await
}

/// The HTTP status of a refused upgrade.
pub(crate) fn refused_status(result: Result<Ws, WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, the upgrade succeeded"),
    }
}

/// Sends a request and returns its reply (skipping other frames).
pub(crate) async fn call(ws: &mut Ws, id: i64, method: &str, params: Value) -> Value {
    let request = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
    ws.send(Message::text(request.to_string())).await.unwrap();
    loop {
        match guard("a reply", ws.next()).await {
            Some(Ok(Message::Text(text))) => {
                let reply: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(reply["id"], json!(id), "{reply}");
                return reply;
            }
            Some(Ok(_)) => continue,
            other => panic!("no reply: {other:?}"),
        }
    }
}
