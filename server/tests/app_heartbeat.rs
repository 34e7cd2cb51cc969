//! The application-level heartbeat (`ServerBuilder::app_heartbeat`): the
//! server sends `rpc.heartbeat`, the client answers `rpc.heartbeat_ack`, the
//! server measures the round trip. Off by default.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_server::{Server, ServerContext};
use switchboard_shared::{Context, ErrorObject, Methods};

use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

mod support;

use support::{Ws, guard};

async fn recv(ws: &mut Ws) -> Value {
    loop {
        match guard("a frame", ws.next()).await {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("the connection ended: {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string())).await.unwrap();
}

fn methods() -> Methods {
    let mut methods = Methods::new();
    methods.register_sync("rtt", |(): (), cx: Context| {
        Ok::<_, ErrorObject>(cx.server()?.heartbeat_rtt(cx.connection_id()).map(|d| d.as_micros() as u64))
    });
    methods
}

#[tokio::test]
async fn heartbeats_are_answered_and_measured() {
    let server = Server::builder()
        .app_heartbeat(Some(Duration::from_millis(50)))
        .build(methods())
        .listen("127.0.0.1:0")
        .await
        .unwrap();
    let url = format!("ws://{}/", server.local_addr().unwrap());
    let (mut ws, _) = guard("connect", connect_async(url)).await.unwrap();

    let beat = recv(&mut ws).await;
    assert_eq!(beat["method"], "rpc.heartbeat", "{beat}");
    assert!(beat.get("id").is_none(), "a notification: {beat}");
    assert_eq!(beat["params"]["interval"], 50);
    assert_eq!(beat["params"]["rtt"], Value::Null);
    let t = beat["params"]["t"].as_u64().expect("t is the server's clock in ms");

    send(&mut ws, json!({"jsonrpc": "2.0", "method": "rpc.heartbeat_ack", "params": {"t": t}})).await;
    // The ack is handled before the call behind it on the same socket.
    send(&mut ws, json!({"jsonrpc": "2.0", "method": "rtt", "id": 1})).await;
    loop {
        let frame = recv(&mut ws).await;
        if frame["id"] == 1 {
            assert!(frame["result"].is_u64(), "the round trip is known: {frame}");
            break;
        }
    }
    // Later beats carry it.
    loop {
        let beat = recv(&mut ws).await;
        if beat["method"] == "rpc.heartbeat" && beat["params"]["rtt"].is_u64() {
            break;
        }
    }
}

#[tokio::test]
async fn it_is_off_by_default() {
    let server = Server::builder().build(methods()).listen("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", server.local_addr().unwrap());
    let (mut ws, _) = guard("connect", connect_async(url)).await.unwrap();
    send(&mut ws, json!({"jsonrpc": "2.0", "method": "rpc.heartbeat_ack", "params": {"t": 1}, "id": 1})).await;
    let reply = recv(&mut ws).await;
    assert_eq!(reply["error"]["code"], -32601, "no rpc.heartbeat_ack without the setting: {reply}");
    send(&mut ws, json!({"jsonrpc": "2.0", "method": "rtt", "id": 2})).await;
    assert_eq!(recv(&mut ws).await["result"], Value::Null);
}
