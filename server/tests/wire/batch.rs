//! Batches: one answer per call, none for notifications, concurrency, limit.

use std::sync::Arc;

use serde_json::{Value, json};
use switchboard_server::Server;
use switchboard_shared::{Context, ErrorObject};
use tokio::sync::Barrier;

use crate::common::*;

fn by_id(replies: &Value) -> Vec<(String, Value)> {
    let mut entries: Vec<(String, Value)> = replies
        .as_array()
        .expect("a batch answer is an array")
        .iter()
        .map(|r| (r["id"].to_string(), r.clone()))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

#[tokio::test]
async fn batch_gets_one_answer_per_call_and_none_for_notifications() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    send(
        &mut ws,
        r#"[
            {"jsonrpc":"2.0","method":"add","params":[1,2],"id":"1"},
            {"jsonrpc":"2.0","method":"echo","params":[7]},
            {"jsonrpc":"2.0","method":"no_such_method","id":"2"},
            {"foo":"boo"},
            {"jsonrpc":"2.0","method":"fail","id":"3"}
        ]"#,
    )
    .await;
    let replies = recv(&mut ws).await;
    let entries = by_id(&replies);
    assert_eq!(entries.len(), 4, "3 calls and 1 invalid entry: {replies}");
    assert_eq!(entries[0].1, json!({"jsonrpc": "2.0", "result": 3, "id": "1"}));
    assert_eq!(entries[1].1["error"]["code"], -32601);
    assert_eq!(entries[2].1["error"]["code"], 42);
    assert_eq!(entries[3].0, "null");
    assert_eq!(entries[3].1["error"]["code"], -32600);
}

#[tokio::test]
async fn batch_of_notifications_gets_no_reply() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    send(
        &mut ws,
        r#"[{"jsonrpc":"2.0","method":"echo","params":[1,2,4]},{"jsonrpc":"2.0","method":"add","params":[7]}]"#,
    )
    .await;
    // The next frame answers the call sent after the batch.
    call(&mut ws, 5, "echo", json!(["after"])).await;
}

#[tokio::test]
async fn batch_longer_than_the_limit_answers_each_request_with_its_own_id() {
    let server = start(Server::builder().max_batch_len(3)).await;
    let mut ws = connect(&server).await;
    let batch: Vec<Value> =
        (0..4).map(|i| json!({"jsonrpc": "2.0", "method": "add", "params": [i, 1], "id": i})).collect();
    send_json(&mut ws, Value::Array(batch)).await;
    let reply = recv(&mut ws).await;
    let answers = reply.as_array().expect("an array: one error per request");
    let ids: Vec<Value> = answers.iter().map(|a| a["id"].clone()).collect();
    assert_eq!(ids, vec![json!(0), json!(1), json!(2), json!(3)], "{reply}");
    for answer in answers {
        assert_eq!(answer["error"]["code"], -32600, "{reply}");
        assert!(answer["error"]["data"].as_str().unwrap().contains("limit of 3"), "{reply}");
    }
    // A batch at the limit is answered.
    let batch: Vec<Value> =
        (0..3).map(|i| json!({"jsonrpc": "2.0", "method": "add", "params": [i, 1], "id": i})).collect();
    send_json(&mut ws, Value::Array(batch)).await;
    assert_eq!(recv(&mut ws).await.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn empty_batch_gets_one_invalid_request() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    send(&mut ws, "[]").await;
    let reply = recv(&mut ws).await;
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert_eq!(reply["id"], json!(null));
}

#[tokio::test]
async fn batch_calls_run_concurrently() {
    // Each call waits until both have started: run one after the other, they never finish.
    let mut methods = methods();
    let barrier = Arc::new(Barrier::new(2));
    methods.register("rendezvous", move |(n,): (i64,), _cx: Context| {
        let barrier = Arc::clone(&barrier);
        async move {
            barrier.wait().await;
            Ok::<_, ErrorObject>(n)
        }
    });
    let server = start_with(Server::builder(), methods).await;
    let mut ws = connect(&server).await;
    send(
        &mut ws,
        r#"[{"jsonrpc":"2.0","method":"rendezvous","params":[1],"id":1},
            {"jsonrpc":"2.0","method":"rendezvous","params":[2],"id":2}]"#,
    )
    .await;
    let replies = recv(&mut ws).await;
    let entries = by_id(&replies);
    assert_eq!(entries.len(), 2, "{replies}");
    assert_eq!(entries[0].1["result"], 1);
    assert_eq!(entries[1].1["result"], 2);
}
