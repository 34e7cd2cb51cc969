//! The Rust client's frame handling: arbitrary bytes sent by the server as
//! one frame (text when UTF-8, else binary) to a connected client that has a
//! topic subscription, a notification stream and a call pending, through
//! the client's whole receive path (decode, replies, calls to the client,
//! notifications, subscriptions, stray messages).
//!
//! No input may panic or cut the connection: after each, a sentinel
//! notification still arrives on the same, first connection.
#![no_main]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use switchboard_client::{Client, Notifications, Subscription};
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::Message;

struct World {
    runtime: tokio::runtime::Runtime,
    client: Client,
    /// Frames for the server side of the client's connection.
    to_client: mpsc::UnboundedSender<Message>,
    sentinels: Mutex<Notifications>,
    _topic: Subscription,
    next: AtomicU64,
}

/// The server side of one connection: answers `rpc.subscribe`, never
/// answers anything else (so the client's calls stay pending), and writes
/// what the harness sends.
async fn serve(ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, mut outbound: mpsc::UnboundedReceiver<Message>) {
    let (mut sink, mut stream) = ws.split();
    let (answers_tx, mut answers) = mpsc::unbounded_channel::<Message>();
    tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let Message::Text(text) = message else { continue };
            let Ok(value) = serde_json::from_str::<Value>(&text) else { continue };
            if value["method"] == "rpc.subscribe" {
                let answer = json!({"jsonrpc": "2.0", "result": true, "id": value["id"]});
                let _ = answers_tx.send(Message::text(answer.to_string()));
            }
        }
    });
    loop {
        let message = tokio::select! {
            Some(m) = outbound.recv() => m,
            Some(m) = answers.recv() => m,
            else => return,
        };
        if sink.send(message).await.is_err() {
            return;
        }
    }
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (to_client, outbound) = mpsc::unbounded_channel();
        let (client, sentinels, topic) = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                // One connection is all the harness expects.
                let (tcp, _) = listener.accept().await.unwrap();
                let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                serve(ws, outbound).await;
            });
            let client = Client::builder().endpoint(format!("ws://{addr}/")).connect().await.unwrap();
            let sentinels = client.notifications("sentinel");
            let topic = client.subscribe("news").await.unwrap();
            // A call the server never answers: replies in the input may match it.
            let pending = client.clone();
            tokio::spawn(async move {
                loop {
                    let _ = pending.call::<Value>("pending", ()).timeout(Duration::from_secs(3600)).await;
                }
            });
            (client, sentinels, topic)
        });
        World { runtime, client, to_client, sentinels: Mutex::new(sentinels), _topic: topic, next: AtomicU64::new(0) }
    })
}

fuzz_target!(|data: &[u8]| {
    let world = world();
    let n = world.next.fetch_add(1, Ordering::Relaxed);
    let frame = match std::str::from_utf8(data) {
        Ok(text) => Message::text(text),
        Err(_) => Message::binary(data.to_vec()),
    };
    world.to_client.send(frame).unwrap();
    let sentinel = json!({"jsonrpc": "2.0", "method": "sentinel", "params": [n]}).to_string();
    world.to_client.send(Message::text(sentinel)).unwrap();
    world.runtime.block_on(async {
        let mut sentinels = world.sentinels.lock().await;
        let wanted = json!([n]);
        loop {
            let note = tokio::time::timeout(Duration::from_secs(10), sentinels.next())
                .await
                .expect("the sentinel arrives: the connection still works")
                .expect("the client is open");
            let params: Value = note.raw_params().map_or(Value::Null, |p| serde_json::from_str(p.get()).unwrap());
            if params == wanted {
                break;
            }
        }
    });
    assert_eq!(world.client.endpoints()[0].connections, 1, "a frame cut the connection");
});
