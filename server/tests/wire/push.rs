//! Calling and pushing to clients: call, notify, publish, broadcast,
//! call_many, topics and the subscription hook.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_server::{Builtins, CallError, Server, ServerContext, SubscriptionDecision, Target};
use switchboard_shared::{Context, Error, ErrorObject, code};

use crate::common::*;

/// Reads the server's next request and checks its shape; returns it.
async fn next_request(ws: &mut Ws, method: &str) -> Value {
    let request = recv(ws).await;
    assert_eq!(request["jsonrpc"], "2.0", "{request}");
    assert_eq!(request["method"], method, "{request}");
    assert!(!request["id"].is_null(), "a call carries an id: {request}");
    request
}

#[tokio::test]
async fn server_calls_a_client_and_gets_its_reply() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    let id = connection_id(&mut ws).await;
    let caller = server.clone();
    let call = tokio::spawn(async move { caller.call::<i64>(id, "double", [21]).await });
    let request = next_request(&mut ws, "double").await;
    assert_eq!(request["params"], json!([21]));
    send_json(&mut ws, json!({"jsonrpc": "2.0", "result": 42, "id": request["id"]})).await;
    assert_eq!(guard("the call's result", call).await.unwrap().unwrap(), 42);
}

#[tokio::test]
async fn server_call_gets_the_clients_error_object() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    let id = connection_id(&mut ws).await;
    let caller = server.clone();
    let call = tokio::spawn(async move { caller.call::<Value>(id, "confirm", ()).await });
    let request = next_request(&mut ws, "confirm").await;
    assert!(request.get("params").is_none(), "no params are sent for (): {request}");
    send_json(&mut ws, json!({"jsonrpc": "2.0", "error": {"code": 7, "message": "declined"}, "id": request["id"]}))
        .await;
    let error = guard("the call's error", call).await.unwrap().unwrap_err();
    assert_eq!(error.rpc().map(|e| (e.code, e.message.to_string())), Some((7, "declined".into())));
}

#[tokio::test]
async fn server_call_times_out_when_the_client_does_not_answer() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    let id = connection_id(&mut ws).await;
    let caller = server.clone();
    let call =
        tokio::spawn(async move { caller.call::<Value>(id, "ignored", [1]).timeout(Duration::from_millis(100)).await });
    let request = next_request(&mut ws, "ignored").await;
    let error = guard("the timeout", call).await.unwrap().unwrap_err();
    assert!(matches!(error, CallError::Call(Error::Timeout(_))), "{error}");
    // The server gave up: it tells the client, which may stop the work.
    let cancel = recv(&mut ws).await;
    assert_eq!(cancel, json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": request["id"]}}));
    // A late answer is dropped and the connection lives on.
    send_json(&mut ws, json!({"jsonrpc": "2.0", "result": 1, "id": request["id"]})).await;
    call_add(&mut ws).await;
}

async fn call_add(ws: &mut Ws) {
    assert_eq!(call(ws, 77, "add", json!([3, 4])).await["result"], 7);
}

#[tokio::test]
async fn server_call_to_an_unknown_connection_fails_at_once() {
    let server = start(Server::builder()).await;
    let missing = uuid::Uuid::new_v4();
    let error = server.call::<Value>(missing, "x", ()).await.unwrap_err();
    assert!(matches!(error, CallError::UnknownConnection(id) if id == missing), "{error}");
    assert!(server.notify(missing, "x", ()).is_err());
}

#[tokio::test]
async fn handler_can_call_back_the_client_that_called_it() {
    let mut methods = methods();
    methods.register("confirm_with_caller", |(question,): (String,), cx: Context| async move {
        let answer: bool = cx.peer().call("confirm", [question]).await.map_err(ErrorObject::internal)?;
        Ok::<_, ErrorObject>(json!({"confirmed": answer}))
    });
    let server = start_with(Server::builder(), methods).await;
    let mut ws = connect(&server).await;
    send(&mut ws, r#"{"jsonrpc":"2.0","method":"confirm_with_caller","params":["sure?"],"id":1}"#).await;
    let request = next_request(&mut ws, "confirm").await;
    assert_eq!(request["params"], json!(["sure?"]));
    send_json(&mut ws, json!({"jsonrpc": "2.0", "result": true, "id": request["id"]})).await;
    assert_eq!(recv(&mut ws).await, json!({"jsonrpc": "2.0", "result": {"confirmed": true}, "id": 1}));
}

#[tokio::test]
async fn notify_reaches_one_connection() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    let id = connection_id(&mut ws).await;
    server.notify(id, "hello", json!({"n": 1})).unwrap();
    assert_eq!(recv(&mut ws).await, json!({"jsonrpc": "2.0", "method": "hello", "params": {"n": 1}}));
}

#[tokio::test]
async fn publish_reaches_topic_members_only() {
    let server = start(Server::builder()).await;
    let mut member = connect(&server).await;
    let mut other = connect(&server).await;
    assert_eq!(call(&mut member, 1, "rpc.subscribe", json!(["news"])).await["result"], true);
    assert_eq!(server.subscribers("news"), 1);

    assert_eq!(server.publish("news", "headline", json!({"t": 1})).unwrap().await.unwrap().offset, 1);
    assert_eq!(recv(&mut member).await, json!({"jsonrpc": "2.0", "method": "headline", "params": {"t": 1}}));
    // Had `other` received the publication, it would come before this answer.
    call(&mut other, 2, "add", json!([1, 1])).await;
}

#[tokio::test]
async fn subscribe_takes_a_positional_or_named_topic_and_unsubscribe_leaves() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    assert_eq!(call(&mut ws, 1, "rpc.subscribe", json!({"topic": "a"})).await["result"], true);
    assert_eq!(call(&mut ws, 2, "rpc.subscribe", json!(["b"])).await["result"], true);
    assert_eq!(server.connections()[0].topics, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(call(&mut ws, 3, "rpc.unsubscribe", json!(["a"])).await["result"], true);
    assert_eq!(call(&mut ws, 4, "rpc.unsubscribe", json!({"topic": "a"})).await["result"], false);
    server.publish("a", "gone", ()).unwrap();
    assert_eq!(call(&mut ws, 5, "rpc.subscribe", json!([])).await["error"]["code"], -32602);
}

#[tokio::test]
async fn subscription_hook_can_deny_a_topic() {
    let builder = Server::builder().on_subscribe(|_cx, topic| {
        if topic.starts_with("admin.") {
            SubscriptionDecision::Deny(format!("{topic} is for admins"))
        } else {
            SubscriptionDecision::Allow
        }
    });
    let server = start(builder).await;
    let mut ws = connect(&server).await;
    let reply = call(&mut ws, 1, "rpc.subscribe", json!(["admin.audit"])).await;
    assert_eq!(reply["error"]["code"], code::SUBSCRIPTION_DENIED, "{reply}");
    assert_eq!(reply["error"]["data"], "admin.audit is for admins");
    assert_eq!(server.subscribers("admin.audit"), 0);
    assert_eq!(call(&mut ws, 2, "rpc.subscribe", json!(["news"])).await["result"], true);
}

#[tokio::test]
async fn subscriptions_over_the_limit_are_denied() {
    let server = start(Server::builder().max_subscriptions(1)).await;
    let mut ws = connect(&server).await;
    assert_eq!(call(&mut ws, 1, "rpc.subscribe", json!(["a"])).await["result"], true);
    let reply = call(&mut ws, 2, "rpc.subscribe", json!(["b"])).await;
    assert_eq!(reply["error"]["code"], code::SUBSCRIPTION_DENIED, "{reply}");
}

#[tokio::test]
async fn broadcast_reaches_every_connection_with_the_same_frame() {
    let server = start(Server::builder()).await;
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    // Both are registered once each has been answered.
    call(&mut a, 1, "add", json!([1, 1])).await;
    call(&mut b, 1, "add", json!([1, 1])).await;
    assert_eq!(server.broadcast("maintenance", json!(["in 5 min"])).unwrap(), 2);
    let expected = json!({"jsonrpc": "2.0", "method": "maintenance", "params": ["in 5 min"]});
    assert_eq!(recv(&mut a).await, expected);
    assert_eq!(recv(&mut b).await, expected);
}

#[tokio::test]
async fn handler_joins_its_connection_to_a_topic() {
    let mut methods = methods();
    methods.register_sync("enter", |(room,): (String,), cx: Context| {
        let joined = cx.join(&room)?;
        Ok::<_, ErrorObject>(joined)
    });
    methods.register("say", |(room, text): (String, String), cx: Context| async move {
        let position = cx.server()?.publish(&room, "said", [text])?.await?;
        Ok::<_, ErrorObject>(position.offset)
    });
    let server = start_with(Server::builder(), methods).await;
    let mut ws = connect(&server).await;
    assert_eq!(call(&mut ws, 1, "enter", json!(["lobby"])).await["result"], true);
    assert_eq!(call(&mut ws, 2, "enter", json!(["lobby"])).await["result"], false, "already a member");
    server.publish("lobby", "welcome", ()).unwrap();
    assert_eq!(recv(&mut ws).await, json!({"jsonrpc": "2.0", "method": "welcome"}));
    // A handler publishes through its context; the publication is queued before the answer.
    send(&mut ws, r#"{"jsonrpc":"2.0","method":"say","params":["lobby","hi"],"id":3}"#).await;
    assert_eq!(recv(&mut ws).await, json!({"jsonrpc": "2.0", "method": "said", "params": ["hi"]}));
    assert_eq!(recv(&mut ws).await, json!({"jsonrpc": "2.0", "result": 2, "id": 3}), "the lobby's second publication");
}

#[tokio::test]
async fn without_builtins_rpc_names_are_not_found() {
    let server = start(Server::builder().builtins(Builtins::None)).await;
    let mut ws = connect(&server).await;
    assert_eq!(call(&mut ws, 1, "rpc.subscribe", json!(["news"])).await["error"]["code"], -32601);
}

#[tokio::test]
async fn call_many_gathers_every_answer_by_the_deadline() {
    let server = start(Server::builder()).await;
    let mut yes = connect(&server).await;
    let mut no = connect(&server).await;
    let mut silent = connect(&server).await;
    let yes_id = connection_id(&mut yes).await;
    let no_id = connection_id(&mut no).await;
    let silent_id = connection_id(&mut silent).await;
    for ws in [&mut yes, &mut no, &mut silent] {
        call(ws, 1, "rpc.subscribe", json!(["voters"])).await;
    }

    let caller = server.clone();
    let deadline = Duration::from_secs(2);
    let gathering = tokio::spawn(async move {
        caller.call_many::<String>(Target::Topic("voters".into()), "vote", ["lunch?"], deadline).await
    });
    let request = next_request(&mut yes, "vote").await;
    send_json(&mut yes, json!({"jsonrpc": "2.0", "result": "pizza", "id": request["id"]})).await;
    let request = next_request(&mut no, "vote").await;
    send_json(&mut no, json!({"jsonrpc": "2.0", "error": {"code": 1, "message": "abstain"}, "id": request["id"]}))
        .await;
    next_request(&mut silent, "vote").await;

    let answers = guard("call_many", gathering).await.unwrap().unwrap();
    assert_eq!(answers.len(), 3);
    for answer in answers {
        match answer.connection {
            id if id == yes_id => assert_eq!(answer.result.unwrap(), "pizza"),
            id if id == no_id => assert_eq!(answer.result.unwrap_err().rpc().unwrap().code, 1),
            id if id == silent_id => assert!(matches!(answer.result, Err(Error::Timeout(_)))),
            other => panic!("an answer from an unknown connection {other}"),
        }
    }
}

#[tokio::test]
async fn connections_lists_live_connections() {
    let server = start(Server::builder()).await;
    let mut ws = connect(&server).await;
    let id = connection_id(&mut ws).await;
    call(&mut ws, 1, "rpc.subscribe", json!(["x"])).await;
    let listed = server.connections();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].path, "/");
    assert_eq!(listed[0].topics, vec!["x".to_string()]);
    assert_eq!(server.connection_count(), 1);
}
