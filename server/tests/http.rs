//! JSON-RPC over HTTP POST on the hub's own port (feature `http`): the
//! server's own listener (`Server::listen`) hands requests that are not
//! WebSocket upgrades to hyper. A real HTTP/1.1 client connection over
//! loopback, kept alive across requests; every wait is on an event,
//! timeouts are only hang guards.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_server::{CorsPolicy, OriginPolicy, Rejection, Server, ServerBuilder, ServerHandle};
use switchboard_shared::{Context, ErrorObject, Methods, code};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

mod support;

use support::guard;
use support::post::Conn;

/// Counts the `tick` notifications handled, and wakes whoever waits for one.
#[derive(Default)]
struct Ticks {
    count: AtomicUsize,
    seen: Notify,
}

fn methods(ticks: Arc<Ticks>) -> Methods {
    let mut methods = Methods::new();
    methods.register_sync("add", |(a, b): (i64, i64), _cx: Context| Ok::<_, ErrorObject>(a + b));
    methods.register("later", |(n,): (i64,), _cx: Context| async move {
        tokio::task::yield_now().await;
        Ok::<_, ErrorObject>(n)
    });
    methods.register_sync("whoami", |(): (), cx: Context| Ok::<_, ErrorObject>(cx.auth().cloned()));
    methods.register_sync("tick", move |(): (), _cx: Context| {
        ticks.count.fetch_add(1, Ordering::SeqCst);
        ticks.seen.notify_one();
        Ok::<_, ErrorObject>(())
    });
    methods.register("name_of_caller", |(): (), cx: Context| async move {
        let name: String = cx.peer().call("name", ()).await?;
        Ok::<_, ErrorObject>(name)
    });
    methods
}

async fn serve(builder: ServerBuilder) -> (ServerHandle, SocketAddr, Arc<Ticks>) {
    let ticks = Arc::new(Ticks::default());
    let hub = builder.build(methods(Arc::clone(&ticks))).listen("127.0.0.1:0").await.expect("listen on port 0");
    let addr = hub.local_addr().expect("bound");
    (hub, addr, ticks)
}

#[tokio::test]
async fn a_call_a_batch_and_a_notification_go_over_one_kept_alive_connection() {
    let (_hub, addr, ticks) = serve(Server::builder()).await;
    let mut conn = Conn::open(addr).await;

    let call = conn.post(r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"#).await;
    assert_eq!(call.status, StatusCode::OK);
    assert_eq!(call.header("content-type"), "application/json");
    assert_eq!(call.json(), json!({"jsonrpc": "2.0", "result": 5, "id": 1}));

    let batch = conn
        .post(
            r#"[{"jsonrpc":"2.0","method":"later","params":[7],"id":"a"},
                {"jsonrpc":"2.0","method":"tick"},
                {"jsonrpc":"2.0","method":"add","params":[1,1],"id":2},
                {"jsonrpc":"2.0","method":"missing","id":3}]"#,
        )
        .await;
    assert_eq!(batch.status, StatusCode::OK);
    let answers = batch.json();
    assert_eq!(answers[0], json!({"jsonrpc": "2.0", "result": 7, "id": "a"}));
    assert_eq!(answers[1], json!({"jsonrpc": "2.0", "result": 2, "id": 2}));
    assert_eq!(answers[2]["error"]["code"], code::METHOD_NOT_FOUND);
    assert_eq!(answers.as_array().unwrap().len(), 3, "the notification is not answered: {answers}");

    let before = ticks.count.load(Ordering::SeqCst);
    let notified = ticks.seen.notified();
    let notification = conn.post(r#"{"jsonrpc":"2.0","method":"tick"}"#).await;
    assert_eq!(notification.status, StatusCode::NO_CONTENT);
    assert_eq!(notification.body, "");
    guard("the notification's handler", notified).await;
    assert_eq!(ticks.count.load(Ordering::SeqCst), before + 1);

    let only_notifications =
        conn.post(r#"[{"jsonrpc":"2.0","method":"tick"},{"jsonrpc":"2.0","method":"tick"}]"#).await;
    assert_eq!(only_notifications.status, StatusCode::NO_CONTENT);
    assert!(!conn.is_closed(), "every answer came on the same connection");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_handshake_timeout() {
    let (_hub, addr, _) = serve(Server::builder().handshake_timeout(std::time::Duration::from_millis(200))).await;
    let mut conn = Conn::open(addr).await;
    assert_eq!(conn.post(r#"{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1}"#).await.status, StatusCode::OK);
    // Without the bound the server would keep it open, and this would trip the hang guard.
    conn.ended().await;
}

#[tokio::test]
async fn broken_bodies_get_the_json_rpc_errors_a_websocket_frame_would() {
    let (_hub, addr, _) = serve(Server::builder().max_batch_len(2)).await;
    let mut conn = Conn::open(addr).await;

    let parse = conn.post("{not json").await;
    assert_eq!(parse.status, StatusCode::OK);
    assert_eq!(parse.json()["error"]["code"], code::PARSE_ERROR);
    assert_eq!(parse.json()["id"], Value::Null);

    let invalid = conn.post(r#"{"jsonrpc":"2.0","method":5,"id":9}"#).await;
    assert_eq!(invalid.json()["error"]["code"], code::INVALID_REQUEST);
    assert_eq!(invalid.json()["id"], 9);

    let too_long = conn
        .post(
            r#"[{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1},
                {"jsonrpc":"2.0","method":"add","params":[1,1],"id":2},
                {"jsonrpc":"2.0","method":"add","params":[1,1],"id":3}]"#,
        )
        .await;
    let answers = too_long.json();
    assert_eq!(answers.as_array().unwrap().len(), 3);
    for (answer, id) in answers.as_array().unwrap().iter().zip(1..) {
        assert_eq!(answer["id"], id);
        assert_eq!(answer["error"]["code"], code::INVALID_REQUEST, "{answer}");
    }
}

#[tokio::test]
async fn a_body_over_the_message_size_limit_is_refused_with_413() {
    let (_hub, addr, _) = serve(Server::builder().max_message_size(1024)).await;
    let big = format!(r#"{{"jsonrpc":"2.0","method":"add","params":["{}"],"id":1}}"#, "x".repeat(2000));
    let mut conn = Conn::open(addr).await;
    let refused = conn.post(&big).await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(refused.body.contains("1024"), "{}", refused.body);

    // Without a Content-Length (chunked), the body is cut off once it passes the limit.
    let mut stream = guard("connect", TcpStream::connect(addr)).await.unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..4 {
        let chunk = "y".repeat(500);
        let _ = stream.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes()).await;
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = guard("the answer", stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413 "), "{response}");
}

#[tokio::test]
async fn a_wrong_content_type_gets_415_and_other_methods_405_with_allow() {
    let (_hub, addr, _) = serve(Server::builder()).await;
    let mut conn = Conn::open(addr).await;
    let body = r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"#;

    let text = conn.send(Method::POST, &[("content-type", "text/plain")], body).await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let none = conn.send(Method::POST, &[], body).await;
    assert_eq!(none.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let charset = conn.send(Method::POST, &[("content-type", "application/json; charset=utf-8")], body).await;
    assert_eq!(charset.status, StatusCode::OK);

    for method in [Method::PUT, Method::DELETE, Method::PATCH] {
        let refused = conn.send(method.clone(), &[], "").await;
        assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(refused.header("allow"), "GET, POST, OPTIONS");
    }
    let plain_get = conn.send(Method::GET, &[], "").await;
    assert_eq!(plain_get.status, StatusCode::UPGRADE_REQUIRED);
}

#[tokio::test]
async fn the_authenticator_and_the_origin_policy_decide_posts_as_they_decide_upgrades() {
    let builder = Server::builder().origins(OriginPolicy::allow(["https://app.example"])).authenticate(|req| match req
        .bearer_token()
    {
        Some("secret") => Ok(json!({"user": "ada"})),
        Some(_) => Err(Rejection::Forbidden("unknown token".into())),
        None => Err(Rejection::Unauthorized("a bearer token is required".into())),
    });
    let (_hub, addr, _) = serve(builder).await;
    let mut conn = Conn::open(addr).await;
    let body = r#"{"jsonrpc":"2.0","method":"whoami","id":1}"#;
    let json = ("content-type", "application/json");

    let anonymous = conn.send(Method::POST, &[json], body).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.header("www-authenticate"), "Bearer");
    assert!(anonymous.body.contains("a bearer token is required"));

    let wrong = conn.send(Method::POST, &[json, ("authorization", "Bearer nope")], body).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);

    let ok = conn.send(Method::POST, &[json, ("authorization", "Bearer secret")], body).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.json()["result"], json!({"user": "ada"}), "handlers see the identity");

    let foreign = conn
        .send(Method::POST, &[json, ("authorization", "Bearer secret"), ("origin", "https://evil.example")], body)
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn methods_that_need_a_connection_answer_persistent_connection_required() {
    let (_hub, addr, _) = serve(Server::builder()).await;
    let mut conn = Conn::open(addr).await;
    let answers = conn
        .post(
            r#"[{"jsonrpc":"2.0","method":"rpc.subscribe","params":["news"],"id":1},
                {"jsonrpc":"2.0","method":"rpc.subscribe","params":{"topic":"news","positioned":true},"id":2},
                {"jsonrpc":"2.0","method":"rpc.unsubscribe","params":["news"],"id":3},
                {"jsonrpc":"2.0","method":"name_of_caller","id":4},
                {"jsonrpc":"2.0","method":"rpc.history","params":{"topic":"news"},"id":5},
                {"jsonrpc":"2.0","method":"rpc.discover","id":6}]"#,
        )
        .await
        .json();
    for answer in &answers.as_array().unwrap()[..4] {
        assert_eq!(answer["error"]["code"], code::PERSISTENT_CONNECTION_REQUIRED, "{answer}");
        assert_eq!(answer["error"]["message"], "Persistent connection required");
    }
    assert!(answers[0]["error"]["data"].as_str().unwrap().contains("use a WebSocket"), "{}", answers[0]);
    assert!(answers[4]["result"]["publications"].is_array(), "rpc.history works over HTTP: {}", answers[4]);
    assert_eq!(answers[5]["result"]["openrpc"], "1.3.2", "rpc.discover works over HTTP");
}

#[tokio::test]
async fn cors_preflights_are_answered_for_listed_origins_only() {
    let preflight = |origin: &'static str| {
        [
            ("origin", origin),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
        ]
    };

    // Off by default: every preflight is refused, answers carry no CORS header.
    let (_hub, addr, _) = serve(Server::builder()).await;
    let mut conn = Conn::open(addr).await;
    let refused = conn.send(Method::OPTIONS, &preflight("https://app.example"), "").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.header("access-control-allow-origin"), "");
    let plain = conn.send(Method::OPTIONS, &[], "").await;
    assert_eq!(plain.status, StatusCode::NO_CONTENT);
    assert_eq!(plain.header("allow"), "GET, POST, OPTIONS");

    let app = "https://app.example";
    let (_hub, addr, _) = serve(Server::builder().cors(CorsPolicy::allow([app]))).await;
    let mut conn = Conn::open(addr).await;
    let allowed = conn.send(Method::OPTIONS, &preflight(app), "").await;
    assert_eq!(allowed.status, StatusCode::NO_CONTENT);
    assert_eq!(allowed.header("access-control-allow-origin"), app);
    assert_eq!(allowed.header("access-control-allow-methods"), "POST");
    assert!(allowed.header("access-control-allow-headers").contains("content-type"));
    assert_eq!(allowed.header("access-control-max-age"), "600");

    let other = conn.send(Method::OPTIONS, &preflight("https://evil.example"), "").await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert_eq!(other.header("access-control-allow-origin"), "");

    let body = r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"#;
    let call = conn.send(Method::POST, &[("content-type", "application/json"), ("origin", app)], body).await;
    assert_eq!(call.status, StatusCode::OK);
    assert_eq!(call.header("access-control-allow-origin"), app, "the page may read the answer");
    let foreign = conn
        .send(Method::POST, &[("content-type", "application/json"), ("origin", "https://evil.example")], body)
        .await;
    assert_eq!(foreign.header("access-control-allow-origin"), "", "a browser keeps the answer from that page");
}

#[tokio::test]
async fn websocket_upgrades_are_still_served_on_the_same_port() {
    let (hub, addr, _) = serve(Server::builder()).await;
    let mut conn = Conn::open(addr).await;
    assert_eq!(conn.post(r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#).await.status, StatusCode::OK);

    let (mut ws, _): (support::Ws, _) =
        guard("connect", tokio_tungstenite::connect_async(format!("ws://{addr}/"))).await.expect("upgrade");
    use futures_util::{SinkExt, StreamExt};
    ws.send(tokio_tungstenite::tungstenite::Message::text(r#"{"jsonrpc":"2.0","method":"add","params":[2,2],"id":1}"#))
        .await
        .unwrap();
    let reply = loop {
        match guard("a reply", ws.next()).await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => break text,
            Some(Ok(_)) => continue,
            other => panic!("no reply: {other:?}"),
        }
    };
    assert_eq!(serde_json::from_str::<Value>(&reply).unwrap()["result"], 4);
    assert_eq!(hub.connections().len(), 1, "only the WebSocket is a connection; HTTP requests are not");
}
