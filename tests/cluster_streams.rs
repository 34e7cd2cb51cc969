//! Several hubs acting as one through Redis (`RedisBroker`): publications
//! reach every subscriber on every hub once and in one order, a positioned
//! subscriber resumes on another hub, and Redis outages (restart, killed
//! subscription connections, Redis down) end in a definite error or a
//! recovery, never a silent gap. Each test runs its own throwaway
//! `redis-server` (tests/support/redis.rs) and hubs on loopback: in this
//! process, or `switchboard serve --redis` processes for the kill -9.

mod support;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, StreamExt};
use futures_util::{SinkExt, future::join_all};
use serde_json::{Value, json};
use switchboard::client::{Cause, Client, StreamItem};
use switchboard::demo::contract_methods;
use switchboard::server::{BrokerError, DeliveryError, RedisBroker, Server, ServerHandle};
use switchboard::shared::tokio_tungstenite::tungstenite::Message;
use switchboard::shared::tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use support::Proc;
use support::redis::RedisServer;

/// Hang guard: far longer than anything here should take on a busy machine.
const GUARD: Duration = Duration::from_secs(60);

async fn within<F: std::future::IntoFuture>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(GUARD, future.into_future()).await.unwrap_or_else(|_| panic!("hung for {GUARD:?}: {what}"))
}

/// A broker on `redis` with every default.
async fn broker(redis: &RedisServer) -> RedisBroker {
    within("connecting to Redis", RedisBroker::connect(&redis.url())).await.expect("Redis is up")
}

/// A hub serving the contract's methods through `broker`.
async fn hub(broker: RedisBroker) -> ServerHandle {
    Server::builder().broker(broker).build(contract_methods()).listen("127.0.0.1:0").await.expect("listens")
}

async fn hubs(redis: &RedisServer, n: usize) -> Vec<ServerHandle> {
    let mut hubs = Vec::new();
    for _ in 0..n {
        hubs.push(hub(broker(redis).await).await);
    }
    hubs
}

fn url(hub: &ServerHandle) -> String {
    format!("ws://{}/", hub.local_addr().expect("bound"))
}

/// A command connection of the test's own to Redis, to look inside it.
async fn redis_cli(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis.url()).expect("a Redis URL");
    within("the test's Redis connection", client.get_multiplexed_async_connection()).await.expect("Redis is up")
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A bare WebSocket client: every frame it receives, checked by the test as
/// it came (no client-side gap filling or deduplication).
struct Wire {
    sink: SplitSink<Ws, Message>,
    frames: mpsc::UnboundedReceiver<Value>,
    /// Frames read while waiting for an answer.
    stash: VecDeque<Value>,
    next_id: u64,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Wire {
    /// Both halves gone: the connection closes.
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Wire {
    async fn connect(hub: &str) -> Wire {
        let (ws, _) = within("a WebSocket connection", connect_async(hub)).await.expect("the hub accepts");
        let (sink, mut stream) = ws.split();
        let (tx, frames) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Text(text) = message {
                    let frame: Value = serde_json::from_str(&text).expect("the hub sends JSON");
                    if tx.send(frame).is_err() {
                        return;
                    }
                }
            }
        });
        Wire { sink, frames, stash: VecDeque::new(), next_id: 1, reader }
    }

    /// Calls `method` and returns the whole answer frame (result or error).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.sink.send(Message::text(request.to_string())).await.expect("send");
        loop {
            let frame = within(&format!("the answer to {method}"), self.frames.recv()).await.expect("connection open");
            if frame["id"] == json!(id) {
                return frame;
            }
            self.stash.push_back(frame);
        }
    }

    /// A positioned subscription to `topic`; returns its answer's result.
    async fn subscribe_positioned(&mut self, topic: &str) -> Value {
        let answer = self.call("rpc.subscribe", json!({"topic": topic, "positioned": true})).await;
        answer.get("result").cloned().unwrap_or_else(|| panic!("subscribe failed: {answer}"))
    }

    /// The next notification frame.
    async fn next(&mut self) -> Value {
        if let Some(frame) = self.stash.pop_front() {
            return frame;
        }
        within("a notification", self.frames.recv()).await.expect("connection open")
    }

    /// The next `n` publications (`rpc.publication` params), in arrival order.
    async fn publications(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let frame = self.next().await;
            assert_eq!(frame["method"], "rpc.publication", "only publications expected: {frame}");
            out.push(frame["params"].clone());
        }
        out
    }
}

/// The offsets of `publications`, which must all be of `epoch`.
fn offsets(publications: &[Value], epoch: &str) -> Vec<u64> {
    publications
        .iter()
        .map(|p| {
            assert_eq!(p["epoch"], epoch, "{p}");
            p["offset"].as_u64().expect("an offset")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_on_one_hub_reach_subscribers_on_every_hub_once_with_consecutive_offsets() {
    const N: u64 = 10_000;
    let redis = RedisServer::start();
    let hubs = hubs(&redis, 3).await;
    let mut subscribers = Vec::new();
    let mut epochs = Vec::new();
    for hub in &hubs {
        let mut wire = Wire::connect(&url(hub)).await;
        let subscribed = wire.subscribe_positioned("t").await;
        assert_eq!(subscribed["offset"], 0, "never published to");
        epochs.push(subscribed["epoch"].as_str().unwrap().to_owned());
        subscribers.push(wire);
    }
    assert!(epochs.iter().all(|e| *e == epochs[0]), "every hub reports the same epoch: {epochs:?}");

    // Queued in call order, awaited together: the offsets follow the calls.
    let published: Vec<_> = (1..=N).map(|n| hubs[0].publish("t", "tick", [n]).expect("queued")).collect();
    let positions: Vec<_> = within("the publications", join_all(published)).await;
    for (n, position) in (1..=N).zip(positions) {
        let position = position.expect("published");
        assert_eq!((position.epoch.as_str(), position.offset), (epochs[0].as_str(), n));
    }

    for (i, wire) in subscribers.iter_mut().enumerate() {
        let publications = wire.publications(N as usize).await;
        assert_eq!(offsets(&publications, &epochs[0]), (1..=N).collect::<Vec<_>>(), "hub {i}");
        assert!(publications.iter().zip(1..).all(|(p, n)| p["params"] == json!([n])), "hub {i}: params in order");
    }
    // Exactly once: nothing more comes (a publication after them is the next).
    hubs[1].publish("t", "tick", ["last"]).unwrap().await.unwrap();
    for wire in &mut subscribers {
        assert_eq!(wire.publications(1).await[0]["offset"], N + 1);
    }
    // History is shared too: any hub reads what hub A published.
    let mut reader = Wire::connect(&url(&hubs[2])).await;
    let page = reader.call("rpc.history", json!({"topic": "t", "since": {"epoch": epochs[0], "offset": N - 2}})).await;
    assert_eq!(page["result"]["publications"].as_array().unwrap().len(), 3, "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_on_every_hub_give_every_subscriber_the_same_sequence() {
    const EACH: u64 = 1_000;
    let redis = RedisServer::start();
    let hubs = hubs(&redis, 3).await;
    let mut subscribers = Vec::new();
    for hub in &hubs {
        let mut wire = Wire::connect(&url(hub)).await;
        wire.subscribe_positioned("t").await;
        subscribers.push(wire);
    }
    let publishers = hubs.iter().enumerate().map(|(h, hub)| {
        let hub = hub.clone();
        tokio::spawn(async move {
            let published: Vec<_> = (0..EACH).map(|i| hub.publish("t", "tick", [h as u64, i]).unwrap()).collect();
            for position in join_all(published).await {
                position.expect("published");
            }
        })
    });
    for publisher in within("the publishers", join_all(publishers)).await {
        publisher.expect("the publisher did not panic");
    }
    let mut sequences = Vec::new();
    for wire in &mut subscribers {
        sequences.push(wire.publications(3 * EACH as usize).await);
    }
    let epoch = sequences[0][0]["epoch"].as_str().unwrap().to_owned();
    assert_eq!(offsets(&sequences[0], &epoch), (1..=3 * EACH).collect::<Vec<_>>());
    assert_eq!(sequences[1], sequences[0], "hub B saw hub A's sequence");
    assert_eq!(sequences[2], sequences[0], "hub C saw hub A's sequence");
    // Each hub's publications are in the order it made them.
    for h in 0..3u64 {
        let own: Vec<u64> =
            sequences[0].iter().filter(|p| p["params"][0] == h).map(|p| p["params"][1].as_u64().unwrap()).collect();
        assert_eq!(own, (0..EACH).collect::<Vec<_>>(), "hub {h}'s publications in call order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_answered_on_one_hub_receives_what_is_published_next_on_another() {
    let redis = RedisServer::start();
    let hubs = hubs(&redis, 2).await;
    let subscriber = within("subscriber", Client::connect(&url(&hubs[0]))).await.unwrap();
    let mut positioned = Wire::connect(&url(&hubs[0])).await;
    let publisher = within("publisher", Client::connect(&url(&hubs[1]))).await.unwrap();
    for i in 0..25 {
        // A fresh topic each time: the hub subscribes to its channel for this subscribe.
        let (plain_topic, positioned_topic) = (format!("plain-{i}"), format!("positioned-{i}"));
        let mut plain = within("plain subscribe", subscriber.subscribe(&plain_topic)).await.unwrap();
        let subscribed = positioned.subscribe_positioned(&positioned_topic).await;
        let _: Value =
            within("publish", publisher.call("publish", json!([plain_topic, plain_topic, [i]]))).await.unwrap();
        let _: Value =
            within("publish", publisher.call("publish", json!([positioned_topic, "tick", [i]]))).await.unwrap();
        let notification = within("the plain publication", plain.next()).await.unwrap().unwrap();
        assert_eq!(notification.raw_params().unwrap().get(), format!("[{i}]"));
        let publication = positioned.publications(1).await.remove(0);
        assert_eq!(
            (publication["epoch"].clone(), publication["offset"].clone()),
            (subscribed["epoch"].clone(), json!(1))
        );
    }
}

/// `switchboard serve --redis URL` on a free port, and its URL.
struct ServeProc {
    url: String,
    process: Proc,
}

impl ServeProc {
    fn start(redis: &RedisServer) -> ServeProc {
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        // No rate limit: the publisher here calls as fast as it can.
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--redis", &redis.url(), "--rate-limit", "0"])
            .env("RUST_LOG", "warn");
        let process = Proc::spawn(command, "switchboard serve --redis".into(), None);
        loop {
            let line = process.line(GUARD);
            if let Some(url) = line.strip_prefix("switchboard hub listening on ") {
                return ServeProc { url: url.to_owned(), process };
            }
        }
    }

    /// kill -9: the hub dies without closing anything.
    fn kill(&mut self) {
        self.process.child().kill().expect("SIGKILL");
        self.process.child().wait().expect("reaped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_positioned_subscriber_whose_hub_is_killed_resumes_on_another_hub_without_gap_or_duplicate() {
    const N: u64 = 400;
    const KILL_AT: u64 = 100;
    let redis = RedisServer::start();
    let mut hubs = [ServeProc::start(&redis), ServeProc::start(&redis)];
    let endpoints = [hubs[0].url.clone(), hubs[1].url.clone()];
    let client = within("client", Client::builder().endpoints(endpoints.clone()).connect()).await.unwrap();
    let mut orders = within("subscribe", client.subscribe_positioned("orders")).await.unwrap();
    let home = orders.endpoint().expect("subscribed somewhere");
    let doomed = endpoints.iter().position(|e| *e == home).expect("one of the endpoints");
    let survivor = endpoints[1 - doomed].clone();

    // A bounded load on the surviving hub, one publication after the other.
    let publisher = within("publisher", Client::connect(&survivor)).await.unwrap();
    let publishing = tokio::spawn(async move {
        for n in 1..=N {
            let _: Value = publisher.call("publish", json!(["orders", "order", {"n": n}])).await.expect("published");
        }
    });
    let mut next = 1;
    let mut recovered = Vec::new();
    while next <= N {
        match within("the next item", orders.next()).await.expect("the stream goes on").expect("no error") {
            StreamItem::Publication(p) => {
                assert_eq!(p.offset, next, "no gap, no duplicate");
                assert_eq!(p.params.get(), format!(r#"{{"n":{next}}}"#));
                if next == KILL_AT {
                    hubs[doomed].kill();
                }
                next += 1;
            }
            StreamItem::Recovered(r) => recovered.push(r),
            StreamItem::Lost(lost) => panic!("nothing may be lost: {lost}"),
            other => panic!("unexpected: {other}"),
        }
    }
    within("the publisher", publishing).await.expect("every publish answered");
    assert_eq!(recovered.len(), 1, "one failover: {recovered:?}");
    assert_eq!(recovered[0].cause, Cause::Reconnect { endpoint: survivor.clone() }, "resumed on the other hub");
    assert_eq!(orders.endpoint().as_deref(), Some(survivor.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_restarts_delivery_resumes_in_a_new_epoch_never_with_a_gap() {
    let mut redis = RedisServer::start();
    let timeout = Duration::from_millis(500);
    let connect = |redis: String| async move { RedisBroker::builder(redis).timeout(timeout).connect().await.unwrap() };
    let publisher = hub(connect(redis.url()).await).await;
    let subscriber_hub = hub(connect(redis.url()).await).await;
    let mut wire = Wire::connect(&url(&subscriber_hub)).await;
    let first = wire.subscribe_positioned("t").await;
    let e1 = first["epoch"].as_str().unwrap().to_owned();
    let client = within("client", Client::connect(&url(&subscriber_hub))).await.unwrap();
    let mut stream = within("subscribe", client.subscribe_positioned("t")).await.unwrap();
    for n in 1..=50u64 {
        publisher.publish("t", "tick", [n]).unwrap().await.unwrap();
    }
    assert_eq!(offsets(&wire.publications(50).await, &e1), (1..=50).collect::<Vec<_>>());

    redis.kill();
    // During the outage: a definite error, in bounded time.
    for n in 0..3 {
        let started = Instant::now();
        let outcome =
            within("a publish during the outage", publisher.publish("t", "tick", json!(["lost", n])).unwrap()).await;
        assert!(matches!(outcome, Err(DeliveryError::Broker(BrokerError::Unavailable(_)))), "{outcome:?}");
        assert!(started.elapsed() < 4 * timeout + Duration::from_secs(1), "took {:?}", started.elapsed());
    }
    redis.restart();
    // The command connection comes back on the next command.
    let started = Instant::now();
    let restart = loop {
        match publisher.publish("t", "tick", ["after"]).unwrap().await {
            Ok(position) => break position,
            Err(e) => assert!(started.elapsed() < GUARD, "Redis is back but publishing still fails: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(restart.epoch, e1, "Redis lost the stream: a new epoch");
    let mut last = restart.clone();
    for n in 1..=49u64 {
        last = publisher.publish("t", "tick", [n]).unwrap().await.unwrap();
    }
    // Every publication of the new epoch, once, in order, after the old ones.
    let after = wire.publications(last.offset as usize).await;
    assert_eq!(offsets(&after, &last.epoch), (1..=last.offset).collect::<Vec<_>>());

    // The client is told its publications after e1:50 are lost (new epoch), then carries on.
    let (mut old, mut seen) = (0, Vec::new());
    let mut lost = None;
    while seen.last() != Some(&last.offset) {
        match within("the client's stream", stream.next()).await.expect("goes on").expect("no error") {
            StreamItem::Publication(p) if p.epoch == e1 => {
                assert_eq!(p.offset, old + 1);
                old += 1;
            }
            StreamItem::Publication(p) => {
                assert!(lost.is_some(), "the new epoch is announced as a loss first");
                assert_eq!(p.offset, seen.len() as u64 + 1, "no gap in the new epoch");
                seen.push(p.offset);
            }
            StreamItem::Lost(l) => {
                assert_eq!(old, 50, "lost after every publication of the old epoch");
                assert!(l.epoch_changed(), "{l}");
                lost = Some(l);
            }
            other => panic!("unexpected: {other}"),
        }
    }
    // Resuming from the old epoch anywhere: recovered false, the new epoch.
    let mut resumer = Wire::connect(&url(&publisher)).await;
    let answer = resumer.call("rpc.subscribe", json!({"topic": "t", "since": {"epoch": e1, "offset": 50}})).await;
    assert_eq!(answer["result"]["recovered"], false, "{answer}");
    assert_eq!(answer["result"]["epoch"], json!(last.epoch));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_just_after_redis_comes_back_is_served_without_waiting_out_the_backoff() {
    let mut redis = RedisServer::start();
    let hubs = hubs(&redis, 1).await;
    let mut wire = Wire::connect(&url(&hubs[0])).await;
    redis.kill();
    let during = wire.call("rpc.subscribe", json!(["t"])).await;
    assert_eq!(during["error"]["code"], -32003, "refused during the outage: {during}");
    // Not a synchronisation: long enough for the reconnect backoff to grow
    // (50 ms doubling to 2 s), so that the next attempt is far off.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    redis.restart();
    // Redis is up: the subscribe brings the next attempt forward instead of
    // answering with the outage's error.
    let after = wire.call("rpc.subscribe", json!(["t"])).await;
    assert_eq!(after["result"], true, "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_publish_subscribe_and_history_fail_with_a_definite_error_and_recover_after() {
    let mut redis = RedisServer::start();
    let timeout = Duration::from_millis(500);
    let broker = RedisBroker::builder(redis.url()).timeout(timeout).connect().await.unwrap();
    let hub = hub(broker).await;
    let mut wire = Wire::connect(&url(&hub)).await;
    redis.kill();
    let bound = 4 * timeout + Duration::from_secs(1);

    let started = Instant::now();
    let outcome = within("publish", hub.publish("t", "tick", [1]).unwrap()).await;
    assert!(matches!(outcome, Err(DeliveryError::Broker(BrokerError::Unavailable(_)))), "{outcome:?}");
    assert!(started.elapsed() < bound, "took {:?}", started.elapsed());
    for (method, params) in [
        ("publish", json!(["t", "tick", [1]])),
        ("rpc.subscribe", json!(["t"])),
        ("rpc.subscribe", json!({"topic": "t", "positioned": true})),
        ("rpc.history", json!({"topic": "t"})),
    ] {
        let started = Instant::now();
        let answer = wire.call(method, params.clone()).await;
        assert_eq!(answer["error"]["code"], -32003, "{method} {params}: {answer}");
        assert_eq!(answer["error"]["message"], "Broker unavailable");
        assert!(started.elapsed() < bound, "{method} took {:?}", started.elapsed());
    }
    // Local calls are not Redis's business.
    assert_eq!(wire.call("echo", json!([1])).await["result"], json!([1]));
    assert_eq!(hub.subscribers("t"), 0, "the failed subscribes left nothing behind");

    redis.restart();
    let started = Instant::now();
    loop {
        let answer = wire.call("rpc.subscribe", json!({"topic": "t", "positioned": true})).await;
        if answer.get("result").is_some() {
            break;
        }
        assert!(started.elapsed() < GUARD, "Redis is back but subscribing still fails: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let position = within("publish", async {
        loop {
            if let Ok(position) = hub.publish("t", "tick", ["back"]).unwrap().await {
                return position;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let publication = wire.publications(1).await.remove(0);
    assert_eq!(
        (publication["offset"].as_u64(), publication["params"].clone()),
        (Some(position.offset), json!(["back"]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_whose_subscription_connection_is_killed_still_delivers_every_publication_once() {
    const N: u64 = 3_000;
    let redis = RedisServer::start();
    let hubs = hubs(&redis, 2).await;
    let mut positioned = Wire::connect(&url(&hubs[1])).await;
    let epoch = positioned.subscribe_positioned("t").await["epoch"].as_str().unwrap().to_owned();
    let mut plain = Wire::connect(&url(&hubs[1])).await;
    assert_eq!(plain.call("rpc.subscribe", json!(["t"])).await["result"], true);
    let mut cli = redis_cli(&redis).await;

    let publisher = hubs[0].clone();
    let publishing = tokio::spawn(async move {
        for chunk in (1..=N).collect::<Vec<_>>().chunks(100) {
            let published: Vec<_> = chunk.iter().map(|n| publisher.publish("t", "t", [n]).unwrap()).collect();
            for position in join_all(published).await {
                position.expect("published");
            }
        }
    });
    // Only hub B subscribes to anything: this kills its subscription connection.
    let mut killed = 0;
    let mut received = Vec::new();
    while received.len() < N as usize {
        received.extend(positioned.publications(500.min(N as usize - received.len())).await);
        let kill: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut cli).await.unwrap();
        killed += kill;
    }
    within("the publisher", publishing).await.unwrap();
    assert!(killed >= 1, "the hub's subscription connection was killed");
    assert_eq!(offsets(&received, &epoch), (1..=N).collect::<Vec<_>>(), "every publication once, in order");
    let mut plain_params = Vec::new();
    while plain_params.len() < N as usize {
        let frame = plain.next().await;
        assert_eq!(frame["method"], "t", "{frame}");
        plain_params.push(frame["params"][0].as_u64().unwrap());
    }
    assert_eq!(plain_params, (1..=N).collect::<Vec<_>>(), "the plain subscriber too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_that_never_reached_the_channel_are_read_from_the_stream_in_order() {
    let redis = RedisServer::start();
    let hubs = hubs(&redis, 2).await;
    let mut wire = Wire::connect(&url(&hubs[1])).await;
    let epoch = wire.subscribe_positioned("t").await["epoch"].as_str().unwrap().to_owned();
    hubs[0].publish("t", "tick", [1]).unwrap().await.unwrap();
    // Two publications whose PUBLISH was lost: in the stream (as `publish.lua`
    // writes them: id OFFSET-0, body "<method length> <method><params>"), never announced.
    let mut cli = redis_cli(&redis).await;
    for n in [2, 3] {
        let offset: u64 =
            redis::cmd("HINCRBY").arg("switchboard:meta:t").arg("o").arg(1).query_async(&mut cli).await.unwrap();
        assert_eq!(offset, n);
        let _: String = redis::cmd("XADD")
            .arg("switchboard:stream:t")
            .arg(format!("{n}-0"))
            .arg("d")
            .arg(format!("4 tick[{n}]"))
            .query_async(&mut cli)
            .await
            .unwrap();
    }
    hubs[0].publish("t", "tick", [4]).unwrap().await.unwrap();
    let publications = wire.publications(4).await;
    assert_eq!(offsets(&publications, &epoch), vec![1, 2, 3, 4], "the gap was filled before 4");
    assert!(publications.iter().zip(1..).all(|(p, n)| p["params"] == json!([n])), "{publications:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_loses_the_topic_its_subscribers_see_a_new_epoch_not_a_silent_gap() {
    let redis = RedisServer::start();
    let hubs = hubs(&redis, 2).await;
    let mut wire = Wire::connect(&url(&hubs[1])).await;
    let e1 = wire.subscribe_positioned("t").await["epoch"].as_str().unwrap().to_owned();
    for n in 1..=3u64 {
        hubs[0].publish("t", "tick", [n]).unwrap().await.unwrap();
    }
    let mut cli = redis_cli(&redis).await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut cli).await.unwrap();
    let e2 = hubs[0].publish("t", "tick", [4]).unwrap().await.unwrap();
    assert_ne!(e2.epoch, e1);
    assert_eq!(e2.offset, 1, "the stream started afresh");
    let publications = wire.publications(4).await;
    assert_eq!(offsets(&publications[..3], &e1), vec![1, 2, 3]);
    assert_eq!(offsets(&publications[3..], &e2.epoch), vec![1], "the new epoch is in the publication");
    // A subscriber resuming after e1:3 is told it cannot be recovered.
    let mut resumer = Wire::connect(&url(&hubs[0])).await;
    let answer = resumer.call("rpc.subscribe", json!({"topic": "t", "since": {"epoch": e1, "offset": 3}})).await;
    assert_eq!(
        (answer["result"]["recovered"].clone(), answer["result"]["epoch"].clone()),
        (json!(false), json!(e2.epoch))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_publication_is_one_redis_command() {
    const N: u64 = 100;
    let redis = RedisServer::start();
    let hubs = hubs(&redis, 2).await;
    let mut wire = Wire::connect(&url(&hubs[1])).await;
    wire.subscribe_positioned("t").await;
    let mut cli = redis_cli(&redis).await;
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut cli).await.unwrap();
    for n in 1..=N {
        hubs[0].publish("t", "tick", [n]).unwrap().await.unwrap();
    }
    assert_eq!(wire.publications(N as usize).await.len(), N as usize);
    let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut cli).await.unwrap();
    // Lines like `cmdstat_evalsha:calls=100,usec=...`: the commands clients
    // sent, and those the scripts ran.
    let mut calls: Vec<(&str, u64)> = stats
        .lines()
        .filter_map(|line| line.strip_prefix("cmdstat_"))
        .map(|line| {
            let (name, rest) = line.split_once(':').unwrap();
            let calls = rest.strip_prefix("calls=").unwrap().split(',').next().unwrap().parse().unwrap();
            (name, calls)
        })
        .filter(|(name, _)| !name.starts_with("config") && !["info", "ping"].contains(name))
        .collect();
    calls.sort();
    // Sorted by name: the one command sent, and the script's steps inside it.
    let expected = [("evalsha", N), ("hget", N), ("hincrby", N), ("pexpire", 2 * N), ("publish", N), ("xadd", N)];
    assert_eq!(calls, expected, "one EVALSHA per publication (the rest ran inside it): {stats}");
}

/// How many subscriptions Redis holds for `topic`'s channel.
async fn numsub(cli: &mut redis::aio::MultiplexedConnection, topic: &str) -> i64 {
    let counts: Vec<(String, i64)> =
        redis::cmd("PUBSUB").arg("NUMSUB").arg(format!("switchboard:pub:{topic}")).query_async(cli).await.unwrap();
    counts[0].1
}

/// Waits until Redis holds no subscription for `topic` (the hub unsubscribes
/// right after the last local subscriber leaves, without telling anyone).
async fn until_unsubscribed(cli: &mut redis::aio::MultiplexedConnection, topic: &str) {
    let started = Instant::now();
    while numsub(cli, topic).await != 0 {
        assert!(started.elapsed() < GUARD, "the hub still subscribes to {topic}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_subscribes_to_a_topic_in_redis_only_while_it_has_local_subscribers() {
    let redis = RedisServer::start();
    let hub = hub(broker(&redis).await).await;
    let mut cli = redis_cli(&redis).await;
    assert_eq!(numsub(&mut cli, "t").await, 0);

    let mut a = Wire::connect(&url(&hub)).await;
    let mut b = Wire::connect(&url(&hub)).await;
    assert_eq!(a.call("rpc.subscribe", json!(["t"])).await["result"], true);
    assert_eq!(numsub(&mut cli, "t").await, 1, "subscribed in Redis before the answer");
    b.subscribe_positioned("t").await;
    assert_eq!(numsub(&mut cli, "t").await, 1, "one Redis subscription per hub, however many subscribers");

    assert_eq!(a.call("rpc.unsubscribe", json!(["t"])).await["result"], true);
    hub.publish("t", "t", [1]).unwrap().await.unwrap();
    assert_eq!(b.publications(1).await[0]["offset"], 1, "the remaining subscriber is still served");
    assert_eq!(numsub(&mut cli, "t").await, 1);
    assert_eq!(b.call("rpc.unsubscribe", json!(["t"])).await["result"], true);
    until_unsubscribed(&mut cli, "t").await;

    // A connection that goes away leaves its topics too.
    let mut c = Wire::connect(&url(&hub)).await;
    c.subscribe_positioned("u").await;
    assert_eq!(numsub(&mut cli, "u").await, 1);
    drop(c);
    until_unsubscribed(&mut cli, "u").await;
    // And subscribing again works as the first time.
    a.subscribe_positioned("u").await;
    assert_eq!(numsub(&mut cli, "u").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_the_hubs_create_has_a_ttl() {
    let redis = RedisServer::start();
    let ttl = Duration::from_secs(120);
    let mut hubs = Vec::new();
    for _ in 0..2 {
        let broker = RedisBroker::builder(redis.url()).history_ttl(ttl).connect().await.unwrap();
        hubs.push(hub(broker).await);
    }
    for (i, topic) in ["a", "b", "c"].into_iter().enumerate() {
        hubs[i % 2].publish(topic, "tick", [i]).unwrap().await.unwrap();
    }
    let mut wire = Wire::connect(&url(&hubs[1])).await;
    wire.subscribe_positioned("subscribed-only").await;
    assert!(wire.call("rpc.history", json!({"topic": "read-only"})).await.get("result").is_some());

    let mut cli = redis_cli(&redis).await;
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, page): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(100).query_async(&mut cli).await.unwrap();
        keys.extend(page);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    for expected in ["switchboard:meta:a", "switchboard:stream:a", "switchboard:meta:subscribed-only"] {
        assert!(keys.iter().any(|k| k == expected), "{expected} in {keys:?}");
    }
    for key in &keys {
        let pttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut cli).await.unwrap();
        assert!(pttl > 0 && pttl <= ttl.as_millis() as i64, "{key} has PTTL {pttl}");
    }
}

/// An address nothing listens on: a port just bound and released.
fn closed_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[test]
fn serve_with_an_unreachable_redis_exits_3_saying_so() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    let redis = format!("redis://{}", closed_addr());
    command.args(["serve", "--addr", "127.0.0.1:0", "--redis", &redis]);
    let finished = Proc::spawn(command, "switchboard serve --redis (closed)".into(), None).finish(GUARD);
    assert_eq!(finished.code, Some(3), "{finished:?}");
    assert!(finished.stdout.is_empty(), "{finished:?}");
    assert!(finished.stderr.contains("could not reach Redis at redis://127.0.0.1:"), "{}", finished.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_redis_that_is_not_there_fails_with_a_definite_error() {
    let closed = closed_addr();
    let error = within("connect", RedisBroker::connect(&format!("redis://{closed}"))).await.unwrap_err();
    assert!(error.to_string().contains("could not reach Redis"), "{error}");
    let error = within("connect", RedisBroker::connect("http://nope")).await.unwrap_err();
    assert!(error.to_string().contains("is not a Redis URL"), "{error}");
}
