//! The contract's `publish [topic, method, params]` and the topic built-ins
//! as `bench_server` serves them (`Builtins::Topics`): a raw WebSocket
//! client subscribes positioned, publishes through the contract, resumes,
//! and reads the history.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::demo::contract_methods;
use switchboard::server::{Builtins, Server};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Hang guard: far longer than anything here should take on a busy machine.
const GUARD: Duration = Duration::from_secs(60);

async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(GUARD, future).await.unwrap_or_else(|_| panic!("hung for {GUARD:?}: {what}"))
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        match within("a frame", ws.next()).await.expect("open").expect("a frame") {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn call(ws: &mut Ws, id: u64, method: &str, params: Value) -> Value {
    let request = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
    ws.send(Message::text(request.to_string())).await.expect("send");
    let reply = recv(ws).await;
    assert_eq!(reply["id"], id, "{reply}");
    reply
}

#[tokio::test]
async fn publish_returns_the_position_and_positioned_subscribers_resume_from_it() {
    let server = Server::builder()
        .builtins(Builtins::Topics)
        .history_entries(100)
        .build(contract_methods())
        .listen("127.0.0.1:0")
        .await
        .unwrap();
    let url = format!("ws://{}/", server.local_addr().unwrap());
    let (mut publisher, _) = within("connect", tokio_tungstenite::connect_async(&url)).await.unwrap();
    let (mut subscriber, _) = within("connect", tokio_tungstenite::connect_async(&url)).await.unwrap();

    let subscribed = call(&mut subscriber, 1, "rpc.subscribe", json!({"topic": "prices", "positioned": true})).await;
    let epoch = subscribed["result"]["epoch"].as_str().expect("an epoch").to_owned();
    for n in 1..=3 {
        let reply = call(&mut publisher, n, "publish", json!(["prices", "tick", {"n": n}])).await;
        assert_eq!(reply["result"], json!({"epoch": epoch, "offset": n}));
    }
    for n in 1..=3 {
        let publication = recv(&mut subscriber).await;
        assert_eq!(publication["method"], "rpc.publication");
        assert_eq!(
            publication["params"],
            json!({"topic": "prices", "epoch": epoch, "offset": n, "method": "tick", "params": {"n": n}})
        );
    }
    let (mut resumed, _) = within("connect", tokio_tungstenite::connect_async(&url)).await.unwrap();
    let since = json!({"topic": "prices", "since": {"epoch": epoch, "offset": 1}});
    let reply = call(&mut resumed, 1, "rpc.subscribe", since).await;
    assert_eq!(reply["result"], json!({"topic": "prices", "epoch": epoch, "offset": 3, "recovered": true}));
    assert_eq!(recv(&mut resumed).await["params"]["offset"], 2);
    assert_eq!(recv(&mut resumed).await["params"]["offset"], 3);

    let history = call(&mut publisher, 10, "rpc.history", json!({"topic": "prices", "limit": 2})).await;
    let offsets: Vec<_> =
        history["result"]["publications"].as_array().unwrap().iter().map(|p| p["offset"].clone()).collect();
    assert_eq!(offsets, [json!(1), json!(2)]);
    assert_eq!(call(&mut publisher, 11, "publish", json!(["prices", "tick", 5])).await["error"]["code"], -32602);
    assert_eq!(call(&mut publisher, 12, "rpc.discover", json!([])).await["error"]["code"], -32601);
    drop((publisher, subscriber, resumed));
    within("shutdown", server.shutdown(Duration::from_secs(5))).await;
}
