//! Calls and notifications from the server: methods registered on the
//! client, notification handlers and streams, topic subscriptions.

use std::collections::HashMap;

use serde_json::{Value, json};
use switchboard_client::{Client, Context, Error, ErrorObject, Methods};
use tokio::sync::mpsc;

use crate::support::{RawServer, within};

#[tokio::test]
async fn the_server_can_call_methods_registered_on_the_client() {
    let (answers_tx, mut answers) = mpsc::unbounded_channel();
    let server = RawServer::start(move |mut conn| {
        let answers_tx = answers_tx.clone();
        async move {
            conn.send(json!({"jsonrpc": "2.0", "method": "client.add", "params": [2, 3], "id": "s1"})).await;
            conn.send(json!({"jsonrpc": "2.0", "method": "client.path", "id": "s2"})).await;
            conn.send(json!({"jsonrpc": "2.0", "method": "client.missing", "id": "s3"})).await;
            for _ in 0..3 {
                let _ = answers_tx.send(conn.recv().await.unwrap());
            }
            let _ = conn.recv().await;
        }
    })
    .await;
    let mut methods = Methods::new();
    methods.register("client.add", |(a, b): (i64, i64), _cx: Context| async move { Ok::<_, ErrorObject>(a + b) });
    methods.register_sync("client.path", |(): (), cx: Context| Ok::<_, ErrorObject>(cx.info().path.clone()));
    let _client = Client::builder().endpoint(server.url()).methods(methods).connect().await.unwrap();

    let mut by_id = HashMap::new();
    for _ in 0..3 {
        let answer = within("an answer from the client", answers.recv()).await.unwrap();
        by_id.insert(answer["id"].as_str().unwrap().to_owned(), answer);
    }
    assert_eq!(by_id["s1"]["result"], json!(5));
    assert_eq!(by_id["s2"]["result"], json!("/rpc"));
    assert_eq!(by_id["s3"]["error"]["code"], json!(-32601));
}

#[tokio::test]
async fn a_client_method_can_call_the_server_back_while_answering() {
    let (answer_tx, mut answer) = mpsc::unbounded_channel();
    let server = RawServer::start(move |mut conn| {
        let answer_tx = answer_tx.clone();
        async move {
            conn.send(json!({"jsonrpc": "2.0", "method": "client.ask_back", "params": [21], "id": 1})).await;
            let callback = conn.request().await;
            assert_eq!(callback["method"], "server.double");
            let n = callback["params"][0].as_i64().unwrap();
            conn.reply(&callback, json!(n * 2)).await;
            let _ = answer_tx.send(conn.recv().await.unwrap());
            let _ = conn.recv().await;
        }
    })
    .await;
    let mut methods = Methods::new();
    methods.register("client.ask_back", |(n,): (i64,), cx: Context| async move {
        let doubled: i64 = cx.peer().call("server.double", [n]).await.map_err(ErrorObject::internal)?;
        Ok::<_, ErrorObject>(doubled + 1)
    });
    let _client = Client::builder().endpoint(server.url()).methods(methods).connect().await.unwrap();

    let answer = within("the answer", answer.recv()).await.unwrap();
    assert_eq!(answer, json!({"jsonrpc": "2.0", "result": 43, "id": 1}));
}

#[tokio::test]
async fn a_notification_reaches_its_handler_and_every_stream_for_its_method() {
    let server = RawServer::start(|mut conn| async move {
        let go = conn.request().await;
        for (method, n) in [("tick", 1), ("tock", 9), ("tick", 2)] {
            conn.send(json!({"jsonrpc": "2.0", "method": method, "params": [n]})).await;
        }
        conn.reply(&go, Value::Null).await;
        let _ = conn.recv().await;
    })
    .await;
    let (handled_tx, mut handled) = mpsc::unbounded_channel();
    let mut methods = Methods::new();
    methods.register_sync("tick", move |(n,): (u32,), _cx: Context| {
        let _ = handled_tx.send(n);
        Ok::<_, ErrorObject>(())
    });
    let client = Client::builder().endpoint(server.url()).methods(methods).connect().await.unwrap();
    let mut ticks = client.notifications("tick");
    let mut more_ticks = client.notifications("tick");
    let mut tocks = client.notifications("tock");

    client.call::<Value>("go", ()).await.unwrap();
    for expected in [1, 2] {
        assert_eq!(within("a tick", ticks.next()).await.unwrap().params::<(u32,)>().unwrap(), (expected,));
        assert_eq!(within("a tick", more_ticks.next()).await.unwrap().params::<(u32,)>().unwrap(), (expected,));
        assert_eq!(within("the handler", handled.recv()).await.unwrap(), expected);
    }
    let tock = within("a tock", tocks.next()).await.unwrap();
    assert_eq!((tock.method(), tock.raw_params().unwrap().get()), ("tock", "[9]"));
}

/// A server with topics: after `rpc.subscribe` to a topic it publishes one
/// notification (named after the topic, except `prices`, published as
/// `price.update`). Every frame it gets is reported.
async fn topic_server() -> (RawServer, mpsc::UnboundedReceiver<Value>) {
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let server = RawServer::start(move |mut conn| {
        let seen_tx = seen_tx.clone();
        async move {
            while let Some(frame) = conn.recv().await {
                let _ = seen_tx.send(frame.clone());
                match (frame["method"].as_str(), frame["params"][0].as_str()) {
                    (Some("rpc.subscribe"), Some("secret")) => {
                        let denied = json!({"code": -32001, "message": "subscription denied"});
                        conn.send(json!({"jsonrpc": "2.0", "error": denied, "id": frame["id"]})).await;
                    }
                    (Some("rpc.subscribe"), Some(topic)) => {
                        let method = if topic == "prices" { "price.update" } else { topic };
                        let params = json!({"topic": topic});
                        conn.reply(&frame, json!(true)).await;
                        conn.send(json!({"jsonrpc": "2.0", "method": method, "params": params})).await;
                    }
                    _ if frame.get("id").is_some() => conn.reply(&frame, json!(true)).await,
                    _ => {}
                }
            }
        }
    })
    .await;
    (server, seen)
}

/// The methods (and first param) of every frame the server saw up to a `sync` call.
async fn frames_until_sync(client: &Client, seen: &mut mpsc::UnboundedReceiver<Value>) -> Vec<(String, Value)> {
    client.call::<Value>("sync", ()).await.unwrap();
    let mut frames = Vec::new();
    loop {
        let frame = within("a frame", seen.recv()).await.unwrap();
        let method = frame["method"].as_str().unwrap().to_owned();
        if method == "sync" {
            return frames;
        }
        frames.push((method, frame["params"][0].clone()));
    }
}

#[tokio::test]
async fn subscribe_sends_rpc_subscribe_and_yields_the_topics_notifications_until_dropped() {
    let (server, mut seen) = topic_server().await;
    let client = Client::connect(&server.url()).await.unwrap();

    let mut news = client.subscribe("news").await.unwrap();
    let first = within("news", news.next()).await.unwrap().unwrap();
    assert_eq!((first.method(), first.params::<Value>().unwrap()), ("news", json!({"topic": "news"})));
    assert_eq!(news.topic(), "news");

    // A publisher that names its notifications otherwise is followed by method.
    let mut prices = client.subscribe_method("prices", "price.update").await.unwrap();
    assert_eq!(within("a price", prices.next()).await.unwrap().unwrap().method(), "price.update");

    // Two subscriptions to one topic: only dropping the last one unsubscribes.
    let again = client.subscribe("news").await.unwrap();
    drop(news);
    assert_eq!(
        frames_until_sync(&client, &mut seen).await,
        [
            ("rpc.subscribe".to_owned(), json!("news")),
            ("rpc.subscribe".to_owned(), json!("prices")),
            ("rpc.subscribe".to_owned(), json!("news")),
        ]
    );
    drop(again);
    drop(prices);
    assert_eq!(
        frames_until_sync(&client, &mut seen).await,
        [("rpc.unsubscribe".to_owned(), json!("news")), ("rpc.unsubscribe".to_owned(), json!("prices"))]
    );
}

#[tokio::test]
async fn a_refused_subscription_is_the_servers_error_and_sends_no_unsubscribe() {
    let (server, mut seen) = topic_server().await;
    let client = Client::connect(&server.url()).await.unwrap();

    let err = client.subscribe("secret").await.unwrap_err();
    assert!(matches!(err, Error::Rpc(ref e) if e.code == -32001), "{err:?}");
    assert_eq!(frames_until_sync(&client, &mut seen).await, [("rpc.subscribe".to_owned(), json!("secret"))]);
}
