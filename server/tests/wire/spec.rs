//! Every inbound frame gets the JSON-RPC 2.0 spec's answer.

use futures_util::SinkExt;
use serde_json::json;
use switchboard_server::Server;
use switchboard_shared::{Context, ErrorObject, Method};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::*;

#[tokio::test]
async fn call_is_answered_with_its_result_and_the_same_id() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    send(&mut ws, r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":7}"#).await;
    assert_eq!(recv(&mut ws).await, json!({"jsonrpc": "2.0", "result": 5, "id": 7}));
    send(&mut ws, r#"{"jsonrpc":"2.0","method":"echo","params":{"a":[1,"x"]},"id":"abc"}"#).await;
    assert_eq!(recv(&mut ws).await, json!({"jsonrpc": "2.0", "result": {"a": [1, "x"]}, "id": "abc"}));
}

#[tokio::test]
async fn unknown_method_gets_method_not_found() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    let reply = call(&mut ws, 1, "no_such_method", json!([])).await;
    assert_eq!(reply["error"]["code"], -32601, "{reply}");
    assert_eq!(reply["error"]["message"], "Method not found");
}

#[tokio::test]
async fn invalid_json_gets_parse_error_with_null_id() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    send(&mut ws, r#"{"jsonrpc":"2.0","method":"foobar,"params":"bar","baz]"#).await;
    let reply = recv(&mut ws).await;
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    assert_eq!(reply["id"], json!(null));
    assert_eq!(reply["jsonrpc"], "2.0");
}

#[tokio::test]
async fn malformed_request_gets_invalid_request() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    send(&mut ws, r#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#).await;
    let reply = recv(&mut ws).await;
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert_eq!(reply["id"], json!(null));
}

#[tokio::test]
async fn notification_gets_no_reply() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    send(&mut ws, r#"{"jsonrpc":"2.0","method":"echo","params":[1]}"#).await;
    send(&mut ws, r#"{"jsonrpc":"2.0","method":"no_such_method"}"#).await;
    // The next frame answers the call sent after the notifications.
    call(&mut ws, 2, "echo", json!([2])).await;
}

#[tokio::test]
async fn binary_frame_of_json_is_answered_like_text() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    let frame = br#"{"jsonrpc":"2.0","method":"add","params":[1,1],"id":3}"#.to_vec();
    ws.send(Message::binary(frame)).await.unwrap();
    assert_eq!(recv(&mut ws).await, json!({"jsonrpc": "2.0", "result": 2, "id": 3}));
}

#[tokio::test]
async fn binary_frame_that_is_not_utf8_gets_parse_error() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    ws.send(Message::binary(vec![0xff, 0xfe, 0x00])).await.unwrap();
    let reply = recv(&mut ws).await;
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    assert_eq!(reply["id"], json!(null));
}

#[tokio::test]
async fn params_that_do_not_fit_get_invalid_params() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    let reply = call(&mut ws, 1, "add", json!(["one", 2])).await;
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    assert!(reply["error"]["data"].is_string(), "the data says what did not fit: {reply}");
}

#[tokio::test]
async fn handler_error_carries_code_message_and_data() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    let reply = call(&mut ws, 1, "fail", json!([])).await;
    assert_eq!(reply["error"], json!({"code": 42, "message": "out of stock", "data": {"sku": 7}}));
    assert!(reply.get("result").is_none());
}

#[tokio::test]
async fn handler_panic_answers_internal_error_and_the_connection_lives_on() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    let reply = call(&mut ws, 1, "panic_sync", json!([])).await;
    assert_eq!(reply["error"]["code"], -32603, "{reply}");
    let reply = call(&mut ws, 2, "panic_async", json!([])).await;
    assert_eq!(reply["error"]["code"], -32603, "{reply}");
    let reply = call(&mut ws, 3, "add", json!([20, 22])).await;
    assert_eq!(reply["result"], 42);
}

#[tokio::test]
async fn router_resolves_names_that_are_not_registered() {
    let mut methods = methods();
    methods.router(|name| {
        let suffix = name.strip_prefix("shout.")?.to_uppercase();
        Some(Method::sync(move |(): (), _cx: Context| Ok::<_, ErrorObject>(suffix.clone())))
    });
    let server = start_with(Server::builder(), methods).await;
    let mut ws = connect(&server).await;
    assert_eq!(call(&mut ws, 1, "shout.hello", json!([])).await["result"], "HELLO");
    assert_eq!(call(&mut ws, 2, "whisper.hello", json!([])).await["error"]["code"], -32601);
}

#[tokio::test]
async fn context_carries_the_connection_facts() {
    let server = start(Server::builder()).await;
    let mut request = url(&server, "/rpc/v1?room=7").into_client_request().unwrap();
    request.headers_mut().insert("x-test", "yes".parse().unwrap());
    let mut ws = try_connect(request).await.expect("connect");
    let local = match ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap(),
        _ => unreachable!("plain ws"),
    };
    let facts = call(&mut ws, 1, "whoami", json!([])).await["result"].clone();
    let id: uuid::Uuid = facts["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(id.get_version_num(), 4, "a uuid v4");
    assert_eq!(facts["remote"], local.to_string());
    assert_eq!(facts["path"], "/rpc/v1");
    assert_eq!(facts["query"], "room=7");
    assert_eq!(facts["x_test"], "yes");
    assert_eq!(facts["auth"], json!(null), "no authenticator, no auth data");
}
