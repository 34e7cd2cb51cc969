//! A topic's slow-consumer policy, with a subscriber that stops reading:
//! `Disconnect` (close 1008, the default), `DropOldest` and `LatestPerKey`
//! (the subscriber keeps its connection; every publication is either
//! received or counted as shed).

use std::collections::HashMap;

use serde_json::{Value, json};
use switchboard_server::{ConflationKey, Server, ServerBuilder, ServerHandle, SlowConsumer};
use switchboard_shared::{CloseReason, PeerHandle};
use tokio::net::TcpSocket;
use tokio_tungstenite::{MaybeTlsStream, client_async};

use crate::common::*;

/// A server with a 16 KiB outbound queue and small kernel buffers, and a
/// client (with a small receive buffer) that will stop reading: its peer.
async fn with_slow_client(builder: ServerBuilder) -> (ServerHandle, Ws, PeerHandle) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(8 << 10).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let server = builder.max_queue_bytes(16 << 10).build(methods()).listen_on(socket.listen(16).unwrap()).unwrap();
    let client_socket = TcpSocket::new_v4().unwrap();
    client_socket.set_recv_buffer_size(8 << 10).unwrap();
    let stream = guard("tcp connect", client_socket.connect(server.local_addr().unwrap())).await.unwrap();
    let (mut slow, _) = guard("upgrade", client_async(url(&server, "/"), MaybeTlsStream::Plain(stream))).await.unwrap();
    let id = connection_id(&mut slow).await;
    let peer = server.peer(id).expect("a live connection");
    (server, slow, peer)
}

/// Publishes 1 KiB publications (`params(n)` plus a pad) to `topic` while
/// the client does not read, until its queue has shed some and 100 more;
/// then an `end` publication. Returns how many were published, `end` included.
fn flood(server: &ServerHandle, peer: &PeerHandle, topic: &str, params: impl Fn(u64) -> Value) -> u64 {
    let pad = "x".repeat(1 << 10);
    let mut n = 0;
    let mut after_shedding = 0;
    while after_shedding < 100 {
        n += 1;
        let mut p = params(n);
        p["pad"] = json!(pad);
        server.publish(topic, "tick", p).unwrap();
        if peer.shed_publications() > 0 {
            after_shedding += 1;
        }
        assert!(n < 100_000, "the queue never shed a publication");
    }
    server.publish(topic, "end", ()).unwrap();
    n + 1
}

#[tokio::test]
async fn drop_oldest_keeps_the_newest_publications_and_the_connection() {
    let (server, mut slow, peer) =
        with_slow_client(Server::builder().topic_policy("feed", SlowConsumer::DropOldest)).await;
    let result = call(&mut slow, 1, "rpc.subscribe", json!({"topic": "feed", "positioned": true})).await;
    assert_eq!(result["result"]["offset"], 0, "{result}");

    let published = flood(&server, &peer, "feed", |n| json!({"n": n}));
    // Now read everything that was kept.
    let mut offsets = Vec::new();
    loop {
        let frame = recv(&mut slow).await;
        let p = &frame["params"];
        offsets.push(p["offset"].as_u64().unwrap());
        if p["method"] == "end" {
            break;
        }
        assert_eq!(p["params"]["n"], p["offset"], "{p}");
    }
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "offsets only grow: {offsets:?}");
    assert_eq!(*offsets.last().unwrap(), published, "the newest is delivered");
    let shed = peer.shed_publications();
    assert!(shed > 0 && offsets.len() < published as usize, "some were shed: {shed}");
    assert_eq!(offsets.len() as u64 + shed, published, "every publication delivered or counted as shed");
    assert_eq!(call(&mut slow, 2, "add", json!([1, 2])).await["result"], 3, "still connected");
}

#[tokio::test]
async fn latest_per_key_delivers_the_newest_publication_of_every_key() {
    let policy = SlowConsumer::LatestPerKey(ConflationKey::field("symbol"));
    let (server, mut slow, peer) = with_slow_client(Server::builder().topic_policy("prices.*", policy)).await;
    // A plain subscriber: conflation does not need offsets.
    assert_eq!(call(&mut slow, 1, "rpc.subscribe", json!(["prices.eu"])).await["result"], true);

    const SYMBOLS: [&str; 4] = ["ACME", "BOLT", "CORE", "DYNA"];
    let symbol = |n: u64| SYMBOLS[(n % 4) as usize];
    let published = flood(&server, &peer, "prices.eu", |n| json!({"symbol": symbol(n), "seq": n}));
    let mut last_published: HashMap<&str, u64> = HashMap::new();
    for n in 1..published {
        last_published.insert(symbol(n), n);
    }

    let mut received = 0u64;
    let mut last_seen: HashMap<String, u64> = HashMap::new();
    loop {
        let frame = recv(&mut slow).await;
        received += 1;
        if frame["method"] == "end" {
            break;
        }
        let (s, seq) =
            (frame["params"]["symbol"].as_str().unwrap().to_owned(), frame["params"]["seq"].as_u64().unwrap());
        if let Some(before) = last_seen.insert(s, seq) {
            assert!(before < seq, "each symbol's updates in order");
        }
    }
    for (s, seq) in last_published {
        assert_eq!(last_seen.get(s), Some(&seq), "the newest {s} is delivered");
    }
    let shed = peer.shed_publications();
    assert!(shed > 0, "some were conflated");
    assert_eq!(received + shed, published, "every publication delivered or counted as conflated");
    assert_eq!(call(&mut slow, 2, "add", json!([1, 2])).await["result"], 3, "still connected");
}

#[tokio::test]
async fn without_a_policy_a_subscriber_that_does_not_read_is_closed_as_today() {
    let (builder, mut events) = Events::install(Server::builder());
    let (server, mut slow, peer) = with_slow_client(builder).await;
    events.next_connected().await;
    assert_eq!(call(&mut slow, 1, "rpc.subscribe", json!({"topic": "feed", "positioned": true})).await["id"], 1);
    let pad = "x".repeat(1 << 10);
    // Nothing here awaits, so the connection's writer never runs meanwhile:
    // 64 KiB cannot fit a 16 KiB queue.
    for n in 0..64 {
        server.publish("feed", "tick", json!({"n": n, "pad": pad})).unwrap();
    }
    assert_eq!(peer.shed_publications(), 0);
    let (code, reason) = expect_close(&mut slow).await;
    assert_eq!((code, reason.as_str()), (1008, "slow consumer"));
    let (id, why) = events.next_disconnected().await;
    assert_eq!((id, why), (peer.id(), CloseReason::SlowConsumer));
}
