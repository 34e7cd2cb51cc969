//! Every limit, with the error or close code it answers with.

use std::time::Duration;

use serde_json::json;
use switchboard_server::{DeliveryError, Server};
use switchboard_shared::{CloseReason, Heartbeat};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{MaybeTlsStream, client_async};

use crate::common::*;

#[tokio::test]
async fn connections_over_the_limit_get_503_before_the_upgrade() {
    let (builder, mut events) = Events::install(Server::builder().max_connections(1));
    let server = start(builder).await;
    let mut first = connect(&server).await;
    call(&mut first, 1, "add", json!([1, 2])).await;
    assert_eq!(refused_status(try_connect(url(&server, "/")).await), 503);

    // Once the first has gone, there is room again.
    let first_id = events.next_connected().await;
    first.close(None).await.unwrap();
    assert_eq!(events.next_disconnected().await.0, first_id);
    let mut again = connect(&server).await;
    call(&mut again, 2, "add", json!([2, 2])).await;
}

#[tokio::test]
async fn message_over_the_size_limit_is_closed_with_1009() {
    let (builder, mut events) = Events::install(Server::builder().max_message_size(1024));
    let server = start(builder).await;
    let mut ws = connect(&server).await;
    let id = events.next_connected().await;
    // A message within the limit is answered.
    call(&mut ws, 1, "echo", json!(["x".repeat(512)])).await;
    send_json(&mut ws, json!({"jsonrpc": "2.0", "method": "echo", "params": ["x".repeat(2000)], "id": 2})).await;
    let (code, reason) = expect_close(&mut ws).await;
    assert_eq!(code, 1009, "{reason}");
    assert_eq!(events.next_disconnected().await, (id, CloseReason::MessageTooBig));
}

#[tokio::test]
async fn slow_consumer_is_closed_with_1008_while_others_keep_getting_answers() {
    let (builder, mut events) = Events::install(Server::builder().max_queue_bytes(64 << 10));
    // Small kernel buffers on both ends, so a client that does not read
    // fills the server's outbound queue after little data.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(8 << 10).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let server = builder.build(methods()).listen_on(socket.listen(16).unwrap()).unwrap();

    let client_socket = TcpSocket::new_v4().unwrap();
    client_socket.set_recv_buffer_size(8 << 10).unwrap();
    let stream = guard("tcp connect", client_socket.connect(server.local_addr().unwrap())).await.unwrap();
    let (mut slow, _) = guard("upgrade", client_async(url(&server, "/"), MaybeTlsStream::Plain(stream))).await.unwrap();
    let slow_id = connection_id(&mut slow).await;
    let mut fast = connect(&server).await;

    // From here on `slow` never reads: push to it until the server cuts it off.
    let pad = "x".repeat(16 << 10);
    let mut pushed: i64 = 0;
    loop {
        match server.notify(slow_id, "tick", json!({"seq": pushed, "pad": pad})) {
            Ok(()) => pushed += 1,
            Err(DeliveryError::Disconnected(id)) => {
                assert_eq!(id, slow_id);
                break;
            }
            Err(e) => panic!("unexpected push error: {e}"),
        }
        assert!(pushed < 20_000, "the slow consumer was never cut off");
        // Meanwhile the other client is answered as usual.
        let reply = call(&mut fast, pushed, "add", json!([pushed, 1])).await;
        assert_eq!(reply["result"], json!(pushed + 1));
    }

    // Whatever was already on the wire arrives, then the close frame.
    let (code, reason) = expect_close(&mut slow).await;
    assert_eq!((code, reason.as_str()), (1008, "slow consumer"));
    let (id, why) = loop {
        let (id, why) = events.next_disconnected().await;
        if id == slow_id {
            break (id, why);
        }
    };
    assert_eq!((id, why), (slow_id, CloseReason::SlowConsumer));
    let reply = call(&mut fast, -1, "add", json!([1, 1])).await;
    assert_eq!(reply["result"], 2, "the other client is still served");
}

#[tokio::test]
async fn in_flight_limit_stops_reading_the_connection_until_a_call_finishes() {
    let mut methods = methods();
    let mut gate = Gate::install(&mut methods);
    let server = start_with(Server::builder().max_in_flight(2), methods).await;
    let mut ws = connect(&server).await;
    send(&mut ws, r#"{"jsonrpc":"2.0","method":"block","params":["a"],"id":1}"#).await;
    send(&mut ws, r#"{"jsonrpc":"2.0","method":"block","params":["b"],"id":2}"#).await;
    send(&mut ws, r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":3}"#).await;
    gate.wait_started().await;
    gate.wait_started().await;

    // Two calls wait, so `add` stays unread until one of them finishes.
    gate.open.add_permits(1);
    let first = recv(&mut ws).await;
    assert!(first["id"] == 1 || first["id"] == 2, "a blocked call is answered first, got {first}");
    let second = recv(&mut ws).await;
    assert_eq!(second, json!({"jsonrpc": "2.0", "result": 3, "id": 3}));
    gate.open.add_permits(1);
    let third = recv(&mut ws).await;
    assert_ne!(third["id"], first["id"]);
    assert!(third["id"] == 1 || third["id"] == 2, "{third}");
}

#[tokio::test]
async fn handshake_timeout_drops_a_silent_connection() {
    let server = start(Server::builder().handshake_timeout(Duration::from_millis(100))).await;
    let mut tcp = TcpStream::connect(server.local_addr().unwrap()).await.unwrap();
    let mut buf = [0u8; 64];
    // Nothing is sent; the server gives up and closes without a response.
    let read = guard("the server dropping the silent connection", tcp.read(&mut buf)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "expected the connection to end, read {read:?}");
}

#[tokio::test]
async fn at_the_pending_handshake_bound_new_connections_wait_until_one_ends() {
    let server = start(Server::builder().max_pending_handshakes(1)).await;
    // A socket that never sends its upgrade request holds the only handshake slot.
    let silent = TcpStream::connect(server.local_addr().unwrap()).await.unwrap();
    let waiting = tokio::spawn({
        let url = url(&server, "/");
        async move { try_connect(url).await }
    });
    // Held back while the silent socket is in its handshake (the handshake
    // timeout is 10 s, far beyond this window).
    let early = tokio::time::timeout(Duration::from_millis(300), async {
        while !waiting.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(early.is_err(), "a second handshake was accepted past the bound");
    // The silent socket goes away: its handshake ends, the waiting client gets in.
    drop(silent);
    let mut ws = guard("the waiting client's upgrade", waiting).await.unwrap().expect("upgraded");
    call(&mut ws, 1, "add", json!([1, 2])).await;
}

#[tokio::test]
async fn silent_client_is_closed_after_the_heartbeat_timeout() {
    let heartbeat = Heartbeat { interval: Duration::from_millis(50), timeout: Duration::from_millis(200) };
    let (builder, mut events) = Events::install(Server::builder().heartbeat(Some(heartbeat)));
    let server = start(builder).await;
    // A client that never writes never answers the pings.
    let (mut tcp, rest) = raw_upgrade(server.local_addr().unwrap()).await;
    let id = events.next_connected().await;
    assert_eq!(events.next_disconnected().await, (id, CloseReason::IdleTimeout));
    let (code, reason) = raw_expect_close(&mut tcp, rest).await;
    assert_eq!((code, reason.as_str()), (1001, "idle timeout"));
}

/// Connects to `server` from the local address `from` (any of 127.0.0.0/8).
async fn connect_from(
    server: &switchboard_server::ServerHandle,
    from: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let stream = guard("tcp connect", socket.connect(server.local_addr().unwrap())).await.unwrap();
    guard("upgrade", client_async(url(server, "/"), MaybeTlsStream::Plain(stream))).await.map(|(ws, _)| ws)
}

#[tokio::test]
async fn connections_over_the_per_address_limit_get_503_and_other_addresses_do_not() {
    let (builder, mut events) = Events::install(Server::builder().max_connections_per_ip(2));
    let server = start(builder).await;
    let mut first = connect_from(&server, "127.0.0.1").await.expect("first");
    let first_id = events.next_connected().await;
    let mut second = connect_from(&server, "127.0.0.1").await.expect("second");
    call(&mut second, 1, "add", json!([1, 2])).await;
    match connect_from(&server, "127.0.0.1").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503);
            assert_eq!(response.headers().get("retry-after").unwrap(), "1");
            let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
            assert_eq!(body, "this address already has the server's limit of 2 connections open");
        }
        other => panic!("expected HTTP 503, got {:?}", other.map(|_| "an upgrade")),
    }
    // Another address is not held back by this one's connections.
    let mut other = connect_from(&server, "127.0.0.2").await.expect("another address");
    call(&mut other, 1, "add", json!([2, 2])).await;

    // Once one of the first address's connections is gone, it may open another.
    call(&mut first, 1, "add", json!([1, 1])).await;
    first.close(None).await.unwrap();
    assert_eq!(events.next_disconnected().await.0, first_id);
    let mut again = connect_from(&server, "127.0.0.1").await.expect("room again");
    call(&mut again, 2, "add", json!([3, 3])).await;
}
