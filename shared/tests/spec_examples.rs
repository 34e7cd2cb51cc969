//! Every example of the JSON-RPC 2.0 specification's "Examples" section, sent
//! over a real WebSocket to a peer engine serving the spec's methods, with the
//! exact response the specification gives.

mod common;

use common::{RawClient, raw_client};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_shared::{Context, ErrorObject, Methods, PeerConfig};

#[derive(Deserialize)]
struct Subtract {
    minuend: i64,
    subtrahend: i64,
}

fn spec_methods() -> Methods {
    let mut m = Methods::new();
    m.register_sync("subtract", |p: Subtract, _: Context| Ok::<_, ErrorObject>(p.minuend - p.subtrahend));
    m.register_sync("sum", |p: Vec<i64>, _: Context| Ok::<_, ErrorObject>(p.iter().sum::<i64>()));
    m.register_sync("update", |_: Value, _: Context| Ok::<_, ErrorObject>(()));
    m.register_sync("notify_hello", |_: Value, _: Context| Ok::<_, ErrorObject>(()));
    m.register_sync("notify_sum", |_: Value, _: Context| Ok::<_, ErrorObject>(()));
    m.register_sync("get_data", |(): (), _: Context| Ok::<_, ErrorObject>(json!(["hello", 5])));
    m
}

/// Error objects may carry an explanatory `data` member beyond the spec's
/// example; everything else must match exactly.
fn without_data(mut v: Value) -> Value {
    match &mut v {
        Value::Array(items) => items.iter_mut().for_each(|i| *i = without_data(i.take())),
        Value::Object(map) => {
            if let Some(Value::Object(err)) = map.get_mut("error")
                && let Some(data) = err.remove("data")
            {
                assert!(data.is_string(), "data explains the error in words: {data}");
            }
        }
        _ => {}
    }
    v
}

/// Sends a frame that must get no reply at all: a following call's reply must
/// be the very next frame.
async fn assert_no_reply(client: &mut RawClient, frame: &str) {
    client.send(frame).await;
    let next = client.exchange(r#"{"jsonrpc":"2.0","method":"sum","params":[40,2],"id":"sentinel"}"#).await;
    assert_eq!(next, json!({"jsonrpc":"2.0","result":42,"id":"sentinel"}), "after {frame}");
}

#[tokio::test]
async fn every_specification_example_gets_the_specified_answer() {
    let (_server, mut client) = raw_client(spec_methods(), PeerConfig::default()).await;
    let cases: &[(&str, &str)] = &[
        // rpc call with positional parameters
        (
            r#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#,
            r#"{"jsonrpc": "2.0", "result": 19, "id": 1}"#,
        ),
        (
            r#"{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}"#,
            r#"{"jsonrpc": "2.0", "result": -19, "id": 2}"#,
        ),
        // rpc call with named parameters
        (
            r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#,
            r#"{"jsonrpc": "2.0", "result": 19, "id": 3}"#,
        ),
        (
            r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#,
            r#"{"jsonrpc": "2.0", "result": 19, "id": 4}"#,
        ),
        // rpc call of non-existent method
        (
            r#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#,
            r#"{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}"#,
        ),
        // rpc call with invalid JSON
        (
            r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#,
            r#"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#,
        ),
        // rpc call with invalid Request object
        (
            r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#,
            r#"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#,
        ),
        // rpc call Batch, invalid JSON
        (
            r#"[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},{"jsonrpc": "2.0", "method"]"#,
            r#"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#,
        ),
        // rpc call with an empty Array
        ("[]", r#"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#),
        // rpc call with an invalid Batch (but not empty)
        ("[1]", r#"[{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}]"#),
        // rpc call with invalid Batch
        (
            "[1,2,3]",
            r#"[{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
                {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
                {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}]"#,
        ),
        // rpc call Batch
        (
            r#"[
                {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
                {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
                {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
                {"foo": "boo"},
                {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
                {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
            ]"#,
            r#"[
                {"jsonrpc": "2.0", "result": 7, "id": "1"},
                {"jsonrpc": "2.0", "result": 19, "id": "2"},
                {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
                {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
                {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
            ]"#,
        ),
    ];
    for (request, expected) in cases {
        let got = without_data(client.exchange(request).await);
        let expected: Value = serde_json::from_str(expected).unwrap();
        assert_eq!(got, expected, "request: {request}");
    }
}

#[tokio::test]
async fn notifications_get_no_reply() {
    let (_server, mut client) = raw_client(spec_methods(), PeerConfig::default()).await;
    assert_no_reply(&mut client, r#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#).await;
    assert_no_reply(&mut client, r#"{"jsonrpc": "2.0", "method": "foobar"}"#).await;
}

#[tokio::test]
async fn batch_of_notifications_gets_no_reply() {
    let (_server, mut client) = raw_client(spec_methods(), PeerConfig::default()).await;
    assert_no_reply(
        &mut client,
        r#"[
            {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
            {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
        ]"#,
    )
    .await;
}

#[tokio::test]
async fn ids_are_echoed_byte_exactly() {
    let (_server, mut client) = raw_client(spec_methods(), PeerConfig::default()).await;
    for id in ["9007199254740993", "-1", "1.5", r#""ü""#, "null", "1e2", "-0"] {
        client.send(&format!(r#"{{"jsonrpc":"2.0","method":"sum","params":[1],"id":{id}}}"#)).await;
        let reply = client.recv().await.unwrap();
        assert_eq!(reply, format!(r#"{{"jsonrpc":"2.0","result":1,"id":{id}}}"#));
    }
}

#[tokio::test]
async fn mismatched_params_get_invalid_params_saying_why() {
    let (_server, mut client) = raw_client(spec_methods(), PeerConfig::default()).await;
    let reply = client.exchange(r#"{"jsonrpc":"2.0","method":"subtract","params":["a",1],"id":1}"#).await;
    assert_eq!(reply["error"]["code"], -32602);
    assert!(reply["error"]["data"].as_str().unwrap().contains("invalid type"), "{reply}");
    let reply = client.exchange(r#"{"jsonrpc":"2.0","method":"subtract","params":{"minuend":1},"id":2}"#).await;
    assert_eq!(reply["error"]["code"], -32602);
    assert!(reply["error"]["data"].as_str().unwrap().contains("subtrahend"), "{reply}");
}

#[tokio::test]
async fn invalid_request_objects_get_invalid_request() {
    let (_server, mut client) = raw_client(spec_methods(), PeerConfig::default()).await;
    for bad in [
        r#"{"jsonrpc":"1.0","method":"sum","params":[1],"id":1}"#,
        r#"{"method":"sum","params":[1],"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"sum","params":5,"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"sum","params":[1],"id":{"a":1}}"#,
        r#"{"jsonrpc":"2.0","method":"sum","params":[1],"id":[1]}"#,
        r#"{"jsonrpc":2.0,"method":"sum","id":1}"#,
        r#""just a string""#,
    ] {
        let reply = client.exchange(bad).await;
        assert_eq!(reply["error"]["code"], -32600, "{bad} -> {reply}");
    }
}
