//! The benchmark contract (`shared/CONTRACT.md`) as `bench_server` serves it
//! (`switchboard::demo::ContractHub`, the typed `Contract` API): every method's
//! answer on the wire, read by a raw WebSocket client as the load generator
//! reads it, byte for byte where the contract fixes the bytes.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::demo::{Contract, ContractHub};
use switchboard::server::{Builtins, Server, ServerHandle};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Hang guard: far longer than anything here should take on a busy machine.
const GUARD: Duration = Duration::from_secs(60);

async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(GUARD, future).await.unwrap_or_else(|_| panic!("hung for {GUARD:?}: {what}"))
}

/// `bench_server`'s server: the contract and the topic built-ins.
async fn bench_server() -> (ServerHandle, Ws) {
    let server = Server::builder()
        .builtins(Builtins::Topics)
        .build(ContractHub.into_methods())
        .listen("127.0.0.1:0")
        .await
        .expect("listen on loopback");
    let url = format!("ws://{}/", server.local_addr().expect("bound"));
    let (ws, _) = within("connect", tokio_tungstenite::connect_async(&url)).await.expect("connect");
    (server, ws)
}

async fn send(ws: &mut Ws, frame: &str) {
    within("send", ws.send(Message::text(frame.to_owned()))).await.expect("send");
}

async fn recv_text(ws: &mut Ws) -> String {
    loop {
        match within("a frame", ws.next()).await.expect("open").expect("a frame") {
            Message::Text(text) => return text.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Sends `{"jsonrpc":"2.0","method":..,"params":..,"id":..}` (params left
/// out when `None`) and returns the reply's text.
async fn call_text(ws: &mut Ws, id: u64, method: &str, params: Option<&str>) -> String {
    let params = params.map(|p| format!(r#","params":{p}"#)).unwrap_or_default();
    send(ws, &format!(r#"{{"jsonrpc":"2.0","method":"{method}"{params},"id":{id}}}"#)).await;
    recv_text(ws).await
}

async fn call(ws: &mut Ws, id: u64, method: &str, params: Value) -> Value {
    let reply: Value = serde_json::from_str(&call_text(ws, id, method, Some(&params.to_string())).await).unwrap();
    assert_eq!(reply["id"], id, "{reply}");
    reply
}

#[tokio::test]
async fn every_contract_method_answers_as_the_contract_says() {
    let (_server, mut ws) = bench_server().await;

    // echo: the params unchanged, byte for byte; absent params: null.
    let params = r#"{"a":[1,2.5,"x",null,{"b":true}],"c":"é"}"#;
    assert_eq!(
        call_text(&mut ws, 1, "echo", Some(params)).await,
        format!(r#"{{"jsonrpc":"2.0","result":{params},"id":1}}"#)
    );
    assert_eq!(call_text(&mut ws, 2, "echo", Some("[1,2]")).await, r#"{"jsonrpc":"2.0","result":[1,2],"id":2}"#);
    assert_eq!(call_text(&mut ws, 3, "echo", None).await, r#"{"jsonrpc":"2.0","result":null,"id":3}"#);

    // add [a, b]: exact while integers fit, else as floats.
    assert_eq!(call(&mut ws, 4, "add", json!([2, 3])).await["result"], json!(5));
    assert_eq!(call(&mut ws, 5, "add", json!([2.5, 1])).await["result"], json!(3.5));
    assert_eq!(call(&mut ws, 6, "add", json!([i64::MAX, 1])).await["result"], json!(9.223372036854776e18));
    assert_eq!(call(&mut ws, 7, "add", json!(["two", 3])).await["error"]["code"], -32602);

    // subtract: positional or named.
    assert_eq!(call(&mut ws, 8, "subtract", json!([42, 23])).await["result"], json!(19));
    assert_eq!(call(&mut ws, 9, "subtract", json!({"minuend": 42, "subtrahend": 23})).await["result"], json!(19));
    assert_eq!(call(&mut ws, 10, "subtract", json!({"subtrahend": 0.5, "minuend": 1})).await["result"], json!(0.5));

    // sum [n1, n2, ...]: any count.
    assert_eq!(call(&mut ws, 11, "sum", json!([1, 2, 3, 4])).await["result"], json!(10));
    assert_eq!(call(&mut ws, 12, "sum", json!([])).await["result"], json!(0));
    assert_eq!(call(&mut ws, 13, "sum", json!([1.5, 2])).await["result"], json!(3.5));

    // get_data: ["hello", 5].
    assert_eq!(call_text(&mut ws, 14, "get_data", None).await, r#"{"jsonrpc":"2.0","result":["hello",5],"id":14}"#);

    // update, notify_hello, notify_sum: anything; null when called; nothing when notified.
    for (id, method) in [(15, "update"), (16, "notify_hello"), (17, "notify_sum")] {
        send(&mut ws, &format!(r#"{{"jsonrpc":"2.0","method":"{method}","params":[1,{{"x":2}}]}}"#)).await;
        let reply = call_text(&mut ws, id, method, Some(r#"{"any":"thing"}"#)).await;
        // The reply to the call comes first: the notification got none.
        assert_eq!(reply, format!(r#"{{"jsonrpc":"2.0","result":null,"id":{id}}}"#));
    }

    // sleep [ms]: ms, after that long.
    let started = std::time::Instant::now();
    assert_eq!(call(&mut ws, 18, "sleep", json!([20])).await["result"], json!(20));
    assert!(started.elapsed() >= Duration::from_millis(20));

    // Anything else: -32601.
    let unknown = call(&mut ws, 19, "no_such_method", json!([])).await;
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
}

#[tokio::test]
async fn flood_sends_n_ticks_to_the_caller_then_returns_n() {
    let (_server, mut ws) = bench_server().await;
    send(&mut ws, r#"{"jsonrpc":"2.0","method":"flood","params":[3,4],"id":1}"#).await;
    for seq in 0..3 {
        let tick: Value = serde_json::from_str(&recv_text(&mut ws).await).unwrap();
        assert_eq!(tick, json!({"jsonrpc": "2.0", "method": "tick", "params": {"seq": seq, "pad": "xxxx"}}));
    }
    let done: Value = serde_json::from_str(&recv_text(&mut ws).await).unwrap();
    assert_eq!(done, json!({"jsonrpc": "2.0", "result": 3, "id": 1}));
}

#[tokio::test]
async fn callback_calls_the_caller_and_returns_its_answer_or_its_error() {
    let (_server, mut ws) = bench_server().await;
    for (id, answer, expected) in [
        (1, json!({"result": {"x": [1]}}), json!({"jsonrpc": "2.0", "result": {"x": [1]}, "id": 1})),
        (
            2,
            json!({"error": {"code": -32042, "message": "no"}}),
            json!({"jsonrpc": "2.0", "error": {"code": -32042, "message": "no"}, "id": 2}),
        ),
    ] {
        send(&mut ws, &format!(r#"{{"jsonrpc":"2.0","method":"callback","params":["client.hi",[{id}]],"id":{id}}}"#))
            .await;
        // The server's call to the caller, on the caller's connection.
        let request: Value = serde_json::from_str(&recv_text(&mut ws).await).unwrap();
        assert_eq!((&request["method"], &request["params"]), (&json!("client.hi"), &json!([id])));
        let mut reply = answer;
        reply["jsonrpc"] = json!("2.0");
        reply["id"] = request["id"].clone();
        send(&mut ws, &reply.to_string()).await;
        let outcome: Value = serde_json::from_str(&recv_text(&mut ws).await).unwrap();
        assert_eq!(outcome, expected);
    }
}

#[tokio::test]
async fn publish_returns_the_epoch_and_the_offset() {
    let (_server, mut ws) = bench_server().await;
    let first = call(&mut ws, 1, "publish", json!(["news", "headline", {"text": "a"}])).await;
    let epoch = first["result"]["epoch"].as_str().expect("an epoch").to_owned();
    assert_eq!(first["result"], json!({"epoch": epoch, "offset": 1}));
    let second = call(&mut ws, 2, "publish", json!(["news", "headline", ["b"]])).await;
    assert_eq!(second["result"], json!({"epoch": epoch, "offset": 2}));
    let empty = call(&mut ws, 3, "publish", json!(["", "headline", {}])).await;
    assert_eq!(empty["error"]["code"], -32602, "{empty}");
}
