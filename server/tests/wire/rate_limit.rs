//! The per-connection rate limit: a token bucket over inbound calls, with
//! exact counts (a refill rate so slow that no token comes back during a
//! test, unless the test waits for one).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_server::{Server, ServerBuilder, ServerHandle};
use switchboard_shared::{CloseReason, Context, ErrorObject, Methods, PeerHandle, RateLimit};
use tokio::sync::mpsc;

use crate::common::*;

/// A limit whose bucket holds `burst` and effectively never refills.
fn no_refill(burst: u32) -> RateLimit {
    RateLimit::new(0.001, burst).close_after(None)
}

/// The test methods plus `tick`, a notification that counts itself.
fn counting_methods() -> (Methods, Arc<AtomicU64>) {
    let ticks = Arc::new(AtomicU64::new(0));
    let mut methods = methods();
    let counter = Arc::clone(&ticks);
    methods.register_sync("tick", move |(): (), _cx: Context| {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok::<_, ErrorObject>(())
    });
    (methods, ticks)
}

/// Starts a server whose connections are reported on the returned channel.
async fn start_watched(
    builder: ServerBuilder,
    methods: Methods,
) -> (ServerHandle, mpsc::UnboundedReceiver<PeerHandle>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let builder = builder.on_connect(move |peer| {
        let _ = tx.send(peer.clone());
    });
    (start_with(builder, methods).await, rx)
}

fn request(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "method": "add", "params": [id, 1], "id": id})
}

fn tick() -> Value {
    json!({"jsonrpc": "2.0", "method": "tick"})
}

/// Asserts `reply` is the rate-limit refusal of `id`; returns its `retry_after_ms`.
fn rate_limited(reply: &Value, id: i64) -> u64 {
    assert_eq!(reply["id"], json!(id), "{reply}");
    assert_eq!(reply["error"]["code"], -32005, "{reply}");
    assert_eq!(reply["error"]["message"], "Rate limited", "{reply}");
    reply["error"]["data"]["retry_after_ms"].as_u64().unwrap_or_else(|| panic!("no retry_after_ms: {reply}"))
}

#[tokio::test]
async fn calls_over_the_burst_are_refused_with_the_wait_and_notifications_dropped_and_counted() {
    let (methods, ticks) = counting_methods();
    let (server, mut peers) = start_watched(Server::builder().rate_limit(Some(no_refill(5))), methods).await;
    let mut ws = connect(&server).await;
    let peer = guard("on_connect", peers.recv()).await.unwrap();

    // Three notifications and two requests take the five tokens...
    for _ in 0..3 {
        send_json(&mut ws, tick()).await;
    }
    for id in 1..=5 {
        send_json(&mut ws, request(id)).await;
    }
    // ...two more notifications are dropped, and one more request refused.
    send_json(&mut ws, tick()).await;
    send_json(&mut ws, tick()).await;
    send_json(&mut ws, request(6)).await;

    for id in 1..=2 {
        let reply = recv(&mut ws).await;
        assert_eq!((reply["id"].clone(), reply["result"].clone()), (json!(id), json!(id + 1)), "{reply}");
    }
    for id in 3..=6 {
        let wait = rate_limited(&recv(&mut ws).await, id);
        // The next token is 1,000 s away (a rate of 0.001 a second).
        assert!((999_000..=1_000_000).contains(&wait), "retry_after_ms {wait}");
    }
    assert_eq!(ticks.load(Ordering::SeqCst), 3, "only the notifications within the burst ran");
    assert_eq!(peer.rate_limited(), 4 + 2, "four requests and two notifications refused");
    assert_eq!(peer.dropped_notifications(), 2);
    assert_eq!(peer.calls_answered(), 6);
}

#[tokio::test]
async fn a_batch_gets_one_answer_per_request_with_the_refused_ones_rate_limited() {
    let (methods, ticks) = counting_methods();
    let server = start_with(Server::builder().rate_limit(Some(no_refill(3))), methods).await;
    let mut ws = connect(&server).await;
    send_json(&mut ws, json!([request(1), tick(), request(2), request(3), tick(), request(4)])).await;
    let answers = recv(&mut ws).await;
    let answers = answers.as_array().expect("one array for the batch");
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert_eq!(answers[0], json!({"jsonrpc": "2.0", "result": 2, "id": 1}));
    assert_eq!(answers[1], json!({"jsonrpc": "2.0", "result": 3, "id": 2}));
    rate_limited(&answers[2], 3);
    rate_limited(&answers[3], 4);
    assert_eq!(ticks.load(Ordering::SeqCst), 1, "the second notification was over the limit");
}

#[tokio::test]
async fn a_client_that_waits_retry_after_ms_is_admitted_again() {
    let server = start(Server::builder().rate_limit(Some(RateLimit::new(20.0, 1).close_after(None)))).await;
    let mut ws = connect(&server).await;
    assert_eq!(call(&mut ws, 1, "add", json!([1, 1])).await["result"], 2);
    let wait = rate_limited(&call(&mut ws, 2, "add", json!([1, 1])).await, 2);
    assert!((1..=50).contains(&wait), "a token every 50 ms: {wait}");
    tokio::time::sleep(Duration::from_millis(wait)).await;
    assert_eq!(call(&mut ws, 3, "add", json!([2, 2])).await["result"], 4);
}

#[tokio::test]
async fn repeated_abuse_closes_with_1008_after_close_after_refusals() {
    let (builder, mut events) = Events::install(Server::builder().rate_limit(Some(no_refill(2).close_after(Some(3)))));
    let server = start(builder).await;
    let mut ws = connect(&server).await;
    let id = events.next_connected().await;
    for n in 1..=10 {
        send_json(&mut ws, request(n)).await;
    }
    // Two answered, three refused (the third refusal closes), nothing more.
    let mut answers = Vec::new();
    let (code, reason) = loop {
        match next_message(&mut ws).await {
            tokio_tungstenite::tungstenite::Message::Text(text) => {
                answers.push(serde_json::from_str::<Value>(&text).unwrap())
            }
            tokio_tungstenite::tungstenite::Message::Close(Some(frame)) => {
                break (u16::from(frame.code), frame.reason.to_string());
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!((code, reason.as_str()), (1008, "rate limit exceeded"));
    // Finish the close handshake: read until the server has gone.
    while guard("the end of the connection", futures_util::StreamExt::next(&mut ws)).await.is_some() {}
    assert_eq!(answers.len(), 5, "{answers:?}");
    assert_eq!(answers[0]["result"], 2);
    assert_eq!(answers[1]["result"], 3);
    for (answer, id) in answers[2..].iter().zip(3..) {
        rate_limited(answer, id);
    }
    let (ended, why) = events.next_disconnected().await;
    assert_eq!(ended, id);
    assert_eq!(why, CloseReason::Local { code: 1008, reason: "rate limit exceeded".into() });
}

#[tokio::test]
async fn without_a_rate_limit_nothing_is_refused() {
    let (methods, ticks) = counting_methods();
    let (server, mut peers) = start_watched(Server::builder(), methods).await;
    let mut ws = connect(&server).await;
    let peer = guard("on_connect", peers.recv()).await.unwrap();
    for _ in 0..500 {
        send_json(&mut ws, tick()).await;
    }
    assert_eq!(call(&mut ws, 1, "add", json!([1, 1])).await["result"], 2);
    assert_eq!(ticks.load(Ordering::SeqCst), 500);
    assert_eq!(peer.rate_limited(), 0);
}
