//! Addressed traffic and presence across hubs: several Switchboard hubs,
//! each a node of a `RedisCluster` on one throwaway `redis-server`, and real
//! clients on loopback. Calls, notifications, pushes and `call_many` from
//! one hub reach clients of the others; presence lists every hub's members;
//! a hub killed with SIGKILL (a real `switchboard serve` process) is
//! forgotten within the TTL, and calls to its clients fail definitely.
//!
//! Waits are on events (a reply, a notification, a line from a child) or on
//! a condition polled until it holds (Redis state written by another task),
//! each bounded by a generous hang guard.

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::client::Client;
use switchboard::server::{CallError, ClusterError, NodeId, Presence, RedisCluster, Server, ServerHandle, Target};
use switchboard::shared::{Context, Error, ErrorObject, Methods};
use tokio::sync::mpsc;
use uuid::Uuid;

use support::Proc;
use support::redis::RedisServer;

/// Hang guard: far longer than anything here should take on a busy machine.
const GUARD: Duration = Duration::from_secs(30);

/// The cluster TTL of every hub here: a killed hub is forgotten within it.
const TTL: Duration = Duration::from_secs(2);

/// Slack on top of the TTL for a busy machine (scheduling, one heartbeat).
const SLACK: Duration = Duration::from_secs(3);

async fn within<F: std::future::IntoFuture>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(GUARD, future.into_future()).await.unwrap_or_else(|_| panic!("hung for {GUARD:?}: {what}"))
}

/// Polls `check` until it gives `Some`, every 20 ms, within the guard.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    within(what, async {
        loop {
            if let Some(found) = check().await {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// The hub's methods: `me` answers the caller's connection id.
fn hub_methods() -> Methods {
    let mut methods = Methods::new();
    methods.register_sync("me", |(): (), cx: Context| Ok::<_, ErrorObject>(cx.connection_id()));
    methods
}

/// A hub that is a node of the cluster on `redis`.
async fn hub(redis: &RedisServer) -> ServerHandle {
    let cluster = RedisCluster::builder(redis.url()).ttl(TTL).connect().await.expect("join the cluster");
    Server::builder().cluster(cluster).build(hub_methods()).listen("127.0.0.1:0").await.unwrap()
}

fn url(hub: &ServerHandle) -> String {
    format!("ws://{}/", hub.local_addr().unwrap())
}

/// What a client's handler reports to the test.
#[derive(Debug, PartialEq)]
enum Seen {
    /// A `slow` call reached the client.
    SlowStarted,
    /// A `slow` call was dropped before it answered (cancelled).
    SlowDropped,
}

/// Sends `Seen::SlowDropped` when dropped.
struct DropSignal(mpsc::UnboundedSender<Seen>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(Seen::SlowDropped);
    }
}

/// A client of one of this test's hubs (see [`client_of`]), with its
/// connection id (the hub's `me`).
async fn client(endpoint: &str, name: &str) -> (Client, Uuid, mpsc::UnboundedReceiver<Seen>) {
    let (client, seen) = client_of(endpoint, name).await;
    let id: Uuid = within("me", client.call("me", ())).await.unwrap();
    (client, id, seen)
}

/// A client of `endpoint` called `name`: `whoami` answers its name, `echo`
/// its params, `fail` an error object (code 7), `slow` never answers.
/// Returns it and what its handlers report.
async fn client_of(endpoint: &str, name: &str) -> (Client, mpsc::UnboundedReceiver<Seen>) {
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let mut methods = Methods::new();
    let me = name.to_owned();
    methods.register_sync("whoami", move |(): (), _cx: Context| Ok::<_, ErrorObject>(me.clone()));
    methods.register_sync("echo", |params: Value, _cx: Context| Ok::<_, ErrorObject>(params));
    methods.register_sync("fail", |(): (), _cx: Context| Err::<(), _>(ErrorObject::new(7, "refused on purpose")));
    methods.register("slow", move |(): (), _cx: Context| {
        let _ = seen_tx.send(Seen::SlowStarted);
        let signal = DropSignal(seen_tx.clone());
        async move {
            let _signal = signal;
            std::future::pending::<()>().await;
            Ok::<(), ErrorObject>(())
        }
    });
    let client = within("connect", Client::builder().endpoint(endpoint).methods(methods).connect()).await.unwrap();
    (client, seen)
}

/// Waits until `from` can route to `connection` (its hub has written its
/// directory entry) and checks the hub it names.
async fn routable(from: &ServerHandle, connection: Uuid, node: &NodeId) {
    let found = eventually("a directory entry", || async { from.locate(connection).await.unwrap() }).await;
    assert_eq!(&found, node, "the directory names the connection's hub");
}

/// The presence of `topic` seen from `hub`, once it equals `expected`.
async fn presence_becomes(hub: &ServerHandle, topic: &str, expected: &[Presence]) {
    let mut expected = expected.to_vec();
    expected.sort();
    eventually("presence", || async {
        let seen = hub.presence(topic).await.unwrap();
        (seen == expected).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_call_from_one_hub_reaches_clients_on_the_other_hubs() {
    let redis = RedisServer::start();
    let (a, b, c) = (hub(&redis).await, hub(&redis).await, hub(&redis).await);
    let (_cb, id_b, _) = client(&url(&b), "on b").await;
    let (cc, id_c, _) = client(&url(&c), "on c").await;
    routable(&a, id_b, &b.node()).await;
    routable(&a, id_c, &c.node()).await;

    let from_b: String = within("call b", a.call(id_b, "whoami", ())).await.unwrap();
    let from_c: String = within("call c", a.call(id_c, "whoami", ())).await.unwrap();
    assert_eq!((from_b.as_str(), from_c.as_str()), ("on b", "on c"));

    // Params and results cross untouched; the client's error object too.
    let params = json!({"x": [1, 2.5, "three"], "nested": {"ok": true}});
    let echoed: Value = within("echo", a.call(id_c, "echo", &params)).await.unwrap();
    assert_eq!(echoed, params);
    let refused = within("fail", a.call::<()>(id_b, "fail", ())).await.unwrap_err();
    assert_eq!(refused.rpc().map(|e| e.code), Some(7), "{refused:?}");

    // A notification by connection id crosses too.
    let mut notes = cc.notifications("note");
    a.notify(id_c, "note", ["from a"]).unwrap();
    let note = within("the notification", notes.next()).await.unwrap();
    assert_eq!(note.params::<(String,)>().unwrap(), ("from a".to_owned(),));
}

#[tokio::test]
async fn a_remote_call_times_out_on_time_and_a_dropped_one_is_cancelled_on_the_client() {
    let redis = RedisServer::start();
    let (a, b) = (hub(&redis).await, hub(&redis).await);
    let (_cb, id_b, mut seen) = client(&url(&b), "on b").await;
    routable(&a, id_b, &b.node()).await;

    let started = Instant::now();
    let late = within("a slow call", a.call::<()>(id_b, "slow", ()).timeout(Duration::from_millis(300))).await;
    assert!(matches!(late, Err(CallError::Call(Error::Timeout(_)))), "{late:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "timed out after {:?}", started.elapsed());
    assert_eq!(within("the first slow call", seen.recv()).await, Some(Seen::SlowStarted));
    assert_eq!(within("the first slow call's end", seen.recv()).await, Some(Seen::SlowDropped));

    // Without a timeout, only the caller giving up can end it: its hub
    // passes the cancellation on, and the client drops the handler.
    let call = a.call::<()>(id_b, "slow", ()).no_timeout();
    tokio::select! {
        outcome = call => panic!("the call cannot answer: {outcome:?}"),
        started = seen.recv() => assert_eq!(started, Some(Seen::SlowStarted)),
    }
    // The call was dropped at the end of the select.
    assert_eq!(within("the cancellation", seen.recv()).await, Some(Seen::SlowDropped));
}

#[tokio::test]
async fn call_many_gathers_the_answers_of_every_hub_by_its_deadline() {
    let redis = RedisServer::start();
    let (a, b, c) = (hub(&redis).await, hub(&redis).await, hub(&redis).await);
    let (_ca, id_a, _) = client(&url(&a), "on a").await;
    let (cb, id_b, _) = client(&url(&b), "on b").await;
    let (cc, id_c, _) = client(&url(&c), "on c").await;

    let answers = within("call_many all", a.call_many::<String>(Target::All, "whoami", (), GUARD)).await.unwrap();
    let mut got: Vec<(Uuid, String)> = answers.into_iter().map(|ans| (ans.connection, ans.result.unwrap())).collect();
    got.sort();
    let mut expected = vec![(id_a, "on a".to_owned()), (id_b, "on b".to_owned()), (id_c, "on c".to_owned())];
    expected.sort();
    assert_eq!(got, expected, "one answer per client of every hub");

    // A topic's members on every hub, and only them.
    let (_sub_b, _sub_c) = (cb.subscribe("room").await.unwrap(), cc.subscribe("room").await.unwrap());
    let room =
        within("call_many topic", a.call_many::<String>(Target::Topic("room".into()), "whoami", (), GUARD)).await;
    let mut members: Vec<Uuid> = room.unwrap().into_iter().map(|ans| ans.connection).collect();
    members.sort();
    let mut expected = vec![id_b, id_c];
    expected.sort();
    assert_eq!(members, expected);

    // Named connections, wherever they are; an unknown id is skipped.
    let named = Target::Connections(vec![id_a, id_c, Uuid::new_v4()]);
    let answers = within("call_many named", a.call_many::<String>(named, "whoami", (), GUARD)).await.unwrap();
    let mut got: Vec<Uuid> = answers.into_iter().map(|ans| ans.connection).collect();
    got.sort();
    let mut expected = vec![id_a, id_c];
    expected.sort();
    assert_eq!(got, expected);

    // A client that never answers holds nobody past the deadline: it has a timeout.
    let deadline = Duration::from_millis(800);
    let started = Instant::now();
    let answers = within("call_many slow", a.call_many::<()>(Target::All, "slow", (), deadline)).await.unwrap();
    let took = started.elapsed();
    assert_eq!(answers.len(), 3, "every client is named: {answers:?}");
    assert!(answers.iter().all(|ans| matches!(ans.result, Err(Error::Timeout(_)))), "{answers:?}");
    assert!(took >= deadline && took < deadline + Duration::from_secs(3), "returned after {took:?}");
}

#[tokio::test]
async fn broadcast_and_topic_pushes_reach_every_client_on_every_hub_once() {
    let redis = RedisServer::start();
    let (a, b, c) = (hub(&redis).await, hub(&redis).await, hub(&redis).await);
    let mut clients = Vec::new();
    for (hub, name) in [(&a, "a1"), (&a, "a2"), (&b, "b1"), (&b, "b2"), (&c, "c1")] {
        let (client, _, _) = client(&url(hub), name).await;
        let news = client.notifications("news");
        clients.push((client, news));
    }
    // Each hub counts its own.
    assert_eq!(a.broadcast("news", ["first"]).unwrap(), 2);
    assert_eq!(a.broadcast("news", ["second"]).unwrap(), 2);
    for (_, news) in &mut clients {
        for expected in ["first", "second"] {
            let got = within("a broadcast", news.next()).await.unwrap();
            assert_eq!(got.params::<(String,)>().unwrap().0, expected, "each broadcast once, in order");
        }
    }

    // A topic push reaches the topic's members on every hub, and only them.
    let mut rooms = Vec::new();
    for (client, _) in &clients[1..4] {
        rooms.push(client.subscribe("room").await.unwrap());
    }
    b.push(&Target::Topic("room".into()), "room", ["to the room"]).unwrap();
    b.broadcast("news", ["third"]).unwrap();
    for room in &mut rooms {
        let got = within("a topic push", room.next()).await.unwrap().unwrap();
        assert_eq!(got.params::<(String,)>().unwrap().0, "to the room");
    }
    // Had a non-member got the topic push, it would come before "third".
    let (_, news) = &mut clients[0];
    assert_eq!(within("the third", news.next()).await.unwrap().params::<(String,)>().unwrap().0, "third");
}

#[tokio::test]
async fn calls_to_unknown_or_departed_connections_fail_at_once() {
    let redis = RedisServer::start();
    let (a, b) = (hub(&redis).await, hub(&redis).await);
    let stranger = Uuid::new_v4();
    let started = Instant::now();
    let unknown = within("call a stranger", a.call::<()>(stranger, "whoami", ()).timeout(GUARD)).await;
    assert!(matches!(unknown, Err(CallError::UnknownConnection(id)) if id == stranger), "{unknown:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
    // A notification to it is sent, and nothing is reported (see `notify`).
    a.notify(stranger, "note", ()).unwrap();

    let (cb, id_b, _) = client(&url(&b), "on b").await;
    routable(&a, id_b, &b.node()).await;
    cb.close().await;
    eventually("the directory entry gone", || async { a.locate(id_b).await.unwrap().is_none().then_some(()) }).await;
    let started = Instant::now();
    let departed = within("call the departed", a.call::<()>(id_b, "whoami", ()).timeout(GUARD)).await;
    assert!(matches!(departed, Err(CallError::UnknownConnection(id)) if id == id_b), "{departed:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
}

#[tokio::test]
async fn presence_lists_a_topics_members_on_every_hub() {
    let redis = RedisServer::start();
    let (a, b) = (hub(&redis).await, hub(&redis).await);
    let (ca, id_a, _) = client(&url(&a), "on a").await;
    let (cb, id_b, _) = client(&url(&b), "on b").await;
    let sub_a = ca.subscribe("room").await.unwrap();
    let _sub_b = cb.subscribe("room").await.unwrap();
    let both = [Presence::new(id_a, a.node()), Presence::new(id_b, b.node())];
    presence_becomes(&a, "room", &both).await;
    presence_becomes(&b, "room", &both).await;
    assert_eq!(a.presence("elsewhere").await.unwrap(), vec![]);

    drop(sub_a); // sends rpc.unsubscribe
    presence_becomes(&b, "room", &[Presence::new(id_b, b.node())]).await;
    cb.close().await;
    presence_becomes(&a, "room", &[]).await;

    let nodes: BTreeSet<NodeId> = a.nodes().await.unwrap().into_iter().collect();
    assert_eq!(nodes, BTreeSet::from([a.node(), b.node()]));
    let everyone = a.cluster_connections(GUARD).await.unwrap();
    assert_eq!(everyone, vec![Presence::new(id_a, a.node())], "the closed client is gone");
}

/// `switchboard serve` as a node of the cluster on `redis`: its process,
/// its WebSocket URL and its node id.
fn hub_process(redis: &RedisServer) -> (Proc, String, NodeId) {
    let ttl_ms = TTL.as_millis().to_string();
    let args = ["serve", "--addr", "127.0.0.1:0", "--redis", &redis.url(), "--cluster-ttl-ms", &ttl_ms];
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.args(args).env("RUST_LOG", "warn");
    let process = Proc::spawn(command, format!("switchboard {}", args.join(" ")), None);
    let listening = process.line(GUARD);
    let url = listening.rsplit(' ').next().expect("the URL ends the line").to_owned();
    assert!(url.starts_with("ws://127.0.0.1:"), "{listening}");
    let node = process.line(GUARD);
    let node = node.strip_prefix("cluster node ").and_then(|rest| rest.split(' ').next()).expect(&node).into();
    (process, url, node)
}

#[tokio::test]
async fn a_killed_hub_is_forgotten_within_the_ttl_and_calls_to_its_clients_fail_definitely() {
    let redis = RedisServer::start();
    let a = hub(&redis).await;
    let (mut process, url, node) = hub_process(&redis);
    let (cx, mut seen) = client_of(&url, "on the process").await;
    let _room = cx.subscribe("room").await.unwrap();
    // The client's id, as the cluster sees it.
    let member = eventually("the process's member", || async {
        let members = a.presence("room").await.unwrap();
        members.into_iter().find(|m| m.node == node)
    })
    .await;
    let id = member.connection;
    routable(&a, id, &node).await;
    let whoami: String = within("call the process's client", a.call(id, "whoami", ())).await.unwrap();
    assert_eq!(whoami, "on the process");

    // A call in flight, with no timeout at all.
    let pending = tokio::spawn({
        let a = a.clone();
        async move {
            let started = Instant::now();
            (a.call::<()>(id, "slow", ()).no_timeout().await, started.elapsed())
        }
    });
    assert_eq!(within("the call reaching the client", seen.recv()).await, Some(Seen::SlowStarted));

    process.child().kill().expect("SIGKILL the hub");
    process.child().wait().expect("reap the hub");
    let killed = Instant::now();

    let (outcome, _) = within("the call in flight", pending).await.unwrap();
    assert!(
        matches!(outcome, Err(CallError::NodeUnreachable { connection, ref node }) if connection == id && node == &member.node),
        "{outcome:?}"
    );
    assert!(killed.elapsed() < TTL + SLACK, "the call in flight ended {:?} after the kill", killed.elapsed());

    // A new call fails at once, long before its timeout.
    let started = Instant::now();
    let fresh = within("a call after the kill", a.call::<String>(id, "whoami", ()).timeout(GUARD)).await;
    assert!(matches!(fresh, Err(CallError::NodeUnreachable { .. } | CallError::UnknownConnection(_))), "{fresh:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "failed after {:?}", started.elapsed());

    // Within the TTL the other hubs forget it: directory, presence, node set.
    eventually("the dead hub forgotten", || async {
        let located = a.locate(id).await.unwrap();
        let present = a.presence("room").await.unwrap();
        let nodes = a.nodes().await.unwrap();
        (located.is_none() && present.is_empty() && !nodes.contains(&node)).then_some(())
    })
    .await;
    assert!(killed.elapsed() < TTL + SLACK, "forgotten {:?} after the kill", killed.elapsed());
    let gone = within("a call once forgotten", a.call::<String>(id, "whoami", ())).await;
    assert!(matches!(gone, Err(CallError::UnknownConnection(unknown)) if unknown == id), "{gone:?}");
    assert_eq!(a.nodes().await.unwrap(), vec![a.node()]);
}

#[tokio::test]
async fn while_redis_is_down_calls_across_hubs_fail_definitely_and_local_ones_work() {
    let mut redis = RedisServer::start();
    let (a, b) = (hub(&redis).await, hub(&redis).await);
    let (_ca, id_a, _) = client(&url(&a), "on a").await;
    let (_cb, id_b, _) = client(&url(&b), "on b").await;
    routable(&a, id_b, &b.node()).await;

    redis.kill();
    let started = Instant::now();
    let down = within("a call across while Redis is down", a.call::<String>(id_b, "whoami", ()).timeout(GUARD)).await;
    assert!(matches!(down, Err(CallError::Cluster(ClusterError::Unavailable(_)))), "{down:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "failed after {:?}", started.elapsed());
    let local: String = within("a local call", a.call(id_a, "whoami", ())).await.unwrap();
    assert_eq!(local, "on a");
    let started = Instant::now();
    assert!(a.presence("room").await.is_err(), "presence cannot be read");
    assert!(started.elapsed() < Duration::from_secs(10), "failed after {:?}", started.elapsed());

    // Back (empty): the hubs subscribe again and write their entries again.
    redis.restart();
    let answer = eventually("a call across after the restart", || async {
        a.call::<String>(id_b, "whoami", ()).timeout(Duration::from_secs(2)).await.ok()
    })
    .await;
    assert_eq!(answer, "on b");
}

#[tokio::test]
async fn a_hub_that_shuts_down_removes_its_entries() {
    let redis = RedisServer::start();
    let (a, b) = (hub(&redis).await, hub(&redis).await);
    let (cb, id_b, _) = client(&url(&b), "on b").await;
    let _room = cb.subscribe("room").await.unwrap();
    presence_becomes(&a, "room", &[Presence::new(id_b, b.node())]).await;

    within("shutdown", b.shutdown(Duration::from_secs(1))).await;
    eventually("b's entries removed", || async {
        let gone = a.locate(id_b).await.unwrap().is_none()
            && a.presence("room").await.unwrap().is_empty()
            && a.nodes().await.unwrap() == vec![a.node()];
        gone.then_some(())
    })
    .await;
    let mut redis_conn = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let left: Vec<String> = redis::cmd("KEYS").arg(format!("*{}*", b.node())).query(&mut redis_conn).unwrap();
    assert_eq!(left, Vec::<String>::new(), "no key of the stopped hub is left");
}

#[tokio::test]
async fn every_key_the_hubs_create_has_a_ttl() {
    let redis = RedisServer::start();
    let (a, b) = (hub(&redis).await, hub(&redis).await);
    let (ca, id_a, _) = client(&url(&a), "on a").await;
    let (cb, id_b, _) = client(&url(&b), "on b").await;
    let (_ra, _rb) = (ca.subscribe("room").await.unwrap(), cb.subscribe("room").await.unwrap());
    presence_becomes(&a, "room", &[Presence::new(id_a, a.node()), Presence::new(id_b, b.node())]).await;
    let _: String = within("a call", a.call(id_b, "whoami", ())).await.unwrap();
    let _ = within("call_many", a.call_many::<String>(Target::All, "whoami", (), GUARD)).await.unwrap();

    let mut conn = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    for kind in ["switchboard:node:", "switchboard:nodes", "switchboard:conn:", "switchboard:presence:room"] {
        assert!(keys.iter().any(|k| k.starts_with(kind)), "a {kind}* key exists among {keys:?}");
    }
    for key in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query(&mut conn).unwrap();
        assert!(ttl > 0 && ttl <= TTL.as_millis() as i64, "{key} has PTTL {ttl}");
    }
}

#[tokio::test]
async fn a_hub_without_a_cluster_answers_for_itself_alone() {
    let alone = Server::builder().build(hub_methods()).listen("127.0.0.1:0").await.unwrap();
    let (ca, id, _) = client(&url(&alone), "alone").await;
    let _room = ca.subscribe("room").await.unwrap();
    assert_eq!(alone.presence("room").await.unwrap(), vec![Presence::new(id, alone.node())]);
    assert_eq!(alone.nodes().await.unwrap(), vec![alone.node()]);
    assert_eq!(alone.locate(id).await.unwrap(), Some(alone.node()));
    assert_eq!(alone.cluster_connections(GUARD).await.unwrap(), vec![Presence::new(id, alone.node())]);
    let stranger = Uuid::new_v4();
    assert!(matches!(alone.call::<()>(stranger, "whoami", ()).await, Err(CallError::UnknownConnection(_))));
    assert!(alone.notify(stranger, "note", ()).is_err(), "alone, an unknown id is reported at once");
}
