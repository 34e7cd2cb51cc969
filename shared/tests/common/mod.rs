//! Loopback helpers shared by the core's integration tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use switchboard_shared::tokio_tungstenite::tungstenite::Message;
use switchboard_shared::tokio_tungstenite::{self, MaybeTlsStream, WebSocketStream};
use switchboard_shared::{ConnectionInfo, Methods, PeerConfig, PeerHandle, peer};
use tokio::net::{TcpListener, TcpStream};

/// A generous hang guard: tests wait on events, this only stops a hang.
pub const GUARD: Duration = Duration::from_secs(20);

pub async fn guard<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(GUARD, f).await.expect("hang guard expired")
}

/// Two peer engines joined by a real WebSocket on 127.0.0.1.
pub async fn peer_pair(a: Methods, a_config: PeerConfig, b: Methods, b_config: PeerConfig) -> (PeerHandle, PeerHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tokio_tungstenite::accept_async(tcp).await.unwrap()
    });
    let (client_ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await.unwrap();
    let server_ws = accept.await.unwrap();
    let a = peer::spawn(server_ws, Arc::new(a), ConnectionInfo::new(), a_config);
    let b = peer::spawn(client_ws, Arc::new(b), ConnectionInfo::new(), b_config);
    (a, b)
}

/// A peer engine serving `methods`, and a plain tungstenite client talking to it.
pub async fn raw_client(methods: Methods, config: PeerConfig) -> (PeerHandle, RawClient) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tokio_tungstenite::accept_async(tcp).await.unwrap()
    });
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await.unwrap();
    let server = peer::spawn(accept.await.unwrap(), Arc::new(methods), ConnectionInfo::new(), config);
    (server, RawClient { ws })
}

pub struct RawClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl RawClient {
    pub async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// The next text frame, skipping pings.
    pub async fn recv(&mut self) -> Option<String> {
        guard(async {
            loop {
                match self.ws.next().await? {
                    Ok(Message::Text(t)) => return Some(t.to_string()),
                    Ok(Message::Close(_)) | Err(_) => return None,
                    Ok(_) => continue,
                }
            }
        })
        .await
    }

    /// Sends `text` and returns the next frame as JSON.
    pub async fn exchange(&mut self, text: &str) -> serde_json::Value {
        self.send(text).await;
        serde_json::from_str(&self.recv().await.expect("a reply")).unwrap()
    }
}
