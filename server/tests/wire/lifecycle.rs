//! Hooks, graceful shutdown, and the other ways to hand the server connections.

use std::time::Duration;

use serde_json::json;
use switchboard_server::{ServeError, Server, ServerPhase};
use switchboard_shared::{CloseReason, Context, ErrorObject};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::common::*;

#[tokio::test]
async fn on_connect_and_on_disconnect_hooks_fire_with_the_reason() {
    let (builder, mut events) = Events::install(Server::builder());
    let server = start(builder).await;
    let mut ws = connect(&server).await;
    let connected = events.next_connected().await;
    assert_eq!(connection_id(&mut ws).await, connected);
    ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye".into() })).await.unwrap();
    let (gone, reason) = events.next_disconnected().await;
    assert_eq!(gone, connected);
    assert_eq!(reason, CloseReason::Remote { code: Some(1000), reason: "bye".into() });
    assert_eq!(server.connection_count(), 0, "the connection left the registry before the hook ran");
}

#[tokio::test]
async fn graceful_shutdown_lets_the_in_flight_call_finish_then_closes_with_1001() {
    let mut methods = methods();
    let mut gate = Gate::install(&mut methods);
    let (builder, mut events) = Events::install(Server::builder());
    let server = start_with(builder, methods).await;
    let mut ws = connect(&server).await;
    send(&mut ws, r#"{"jsonrpc":"2.0","method":"block","params":["work"],"id":1}"#).await;
    gate.wait_started().await;

    let stopped = server.shutdown(Duration::from_secs(20));
    assert_eq!(server.phase(), ServerPhase::Draining);
    gate.open.add_permits(1);

    assert_eq!(recv(&mut ws).await, json!({"jsonrpc": "2.0", "result": "work", "id": 1}));
    let (code, _reason) = expect_close(&mut ws).await;
    assert_eq!(code, 1001);
    guard("the shutdown to complete", stopped).await;
    assert_eq!(server.phase(), ServerPhase::Stopped);
    let _connected = events.next_connected().await;
    let (_, reason) = events.next_disconnected().await;
    assert!(matches!(reason, CloseReason::Local { code: 1001, .. }), "{reason:?}");
}

#[tokio::test]
async fn shutdown_stops_accepting_new_connections() {
    let server = start(Server::builder()).await;
    let addr = server.local_addr().unwrap();
    guard("shutdown", server.shutdown(Duration::from_secs(1))).await;
    guard("stopped", server.stopped()).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

#[tokio::test]
async fn serve_stream_serves_a_stream_the_caller_accepted() {
    let server = Server::builder().build(methods());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = server.handle();
    let accepting = tokio::spawn(async move {
        let (stream, remote) = listener.accept().await.unwrap();
        server.handle().serve_stream(stream, Some(remote)).await
    });
    let (mut ws, _) = guard("connect", tokio_tungstenite::connect_async(format!("ws://{addr}/own"))).await.unwrap();
    let peer = guard("serve_stream", accepting).await.unwrap().expect("served");
    assert_eq!(peer.info().path, "/own");
    assert_eq!(call(&mut ws, 1, "add", json!([2, 2])).await["result"], 4);
    assert_eq!(handle.connection_count(), 1);
    assert_eq!(handle.local_addr(), None, "this server never listened");
}

#[tokio::test]
async fn serve_stream_refuses_what_is_not_an_upgrade_with_400() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::builder().build(methods()).handle();
    let (mut client, hub_side) = tokio::io::duplex(4096);
    let serving = tokio::spawn(async move { server.serve_stream(hub_side, None).await });
    client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut response = String::new();
    guard("the refusal", client.read_to_string(&mut response)).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    assert!(response.ends_with("not a WebSocket upgrade request"), "{response}");
    let outcome = guard("serve_stream", serving).await.unwrap();
    assert!(matches!(outcome, Err(ServeError::Refused { status: 400, .. })), "{outcome:?}");
}

#[tokio::test]
async fn the_listener_answers_a_plain_get_426_with_http_and_400_without() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start(Server::builder()).await;
    let mut tcp = guard("connect", tokio::net::TcpStream::connect(server.local_addr().unwrap())).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    guard("the refusal", tcp.read_to_string(&mut response)).await.unwrap();
    if cfg!(feature = "http") {
        // The HTTP server answers it: JSON-RPC POSTs are welcome on this port.
        assert!(response.starts_with("HTTP/1.1 426 "), "{response}");
        assert!(response.to_ascii_lowercase().contains("upgrade: websocket"), "{response}");
    } else {
        assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
        assert!(response.ends_with("not a WebSocket upgrade request"), "{response}");
    }
}

#[tokio::test]
async fn serve_websocket_serves_a_socket_admitted_and_upgraded_elsewhere() {
    let server = Server::builder().max_connections(1).build(methods()).handle();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hub = server.clone();
    let accepting = tokio::spawn(async move {
        let (stream, remote) = listener.accept().await.unwrap();
        // What an HTTP framework does: parse the request, admit it before
        // answering 101, upgrade, then hand the socket over.
        let request = http::Request::builder().uri("/from-http?x=1").body(()).unwrap();
        let mut admission = hub.admit(&request, Some(remote)).await.expect("admitted");
        admission.info_mut().auth = Some(json!({"user": "grace"}));
        // The admission holds the only slot.
        let refused = hub.admit(&request, Some(remote)).await.expect_err("over the limit");
        assert_eq!(refused.status(), 503);
        let config = hub.websocket_config();
        let ws = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await.unwrap();
        hub.serve_websocket(ws, admission)
    });
    let (mut ws, _) = guard("connect", tokio_tungstenite::connect_async(format!("ws://{addr}/"))).await.unwrap();
    guard("serve_websocket", accepting).await.unwrap();
    let facts = call(&mut ws, 1, "whoami", json!([])).await["result"].clone();
    assert_eq!(facts["path"], "/from-http");
    assert_eq!(facts["query"], "x=1");
    assert_eq!(facts["auth"], json!({"user": "grace"}));
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn graceful_shutdown_refuses_new_calls_and_finishes_a_handler_waiting_on_its_client() {
    let mut methods = methods();
    methods.register("ask_client", |(): (), cx: Context| async move {
        let name: String = cx.peer().call("client.name", ()).await?;
        Ok::<_, ErrorObject>(format!("hello {name}"))
    });
    let server = start_with(Server::builder(), methods).await;
    let mut ws = connect(&server).await;
    send(&mut ws, r#"{"jsonrpc":"2.0","method":"ask_client","id":1}"#).await;
    let callback = recv(&mut ws).await;
    assert_eq!(callback["method"], "client.name", "{callback}");

    let stopped = server.shutdown(Duration::from_secs(20));
    // New work is refused at once with the documented code...
    send(&mut ws, r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":2}"#).await;
    let refused = recv(&mut ws).await;
    assert_eq!((refused["id"].clone(), refused["error"]["code"].clone()), (json!(2), json!(-32000)), "{refused}");
    // ...while the reply to the server's own call is still read, so the handler finishes.
    send_json(&mut ws, json!({"jsonrpc": "2.0", "result": "ada", "id": callback["id"]})).await;
    assert_eq!(recv(&mut ws).await, json!({"jsonrpc": "2.0", "result": "hello ada", "id": 1}));
    assert_eq!(expect_close(&mut ws).await.0, 1001);
    drop(ws);
    guard("the shutdown to complete", stopped).await;
}
