//! The engine's observer hook, over real sockets: every call is reported
//! exactly once when it ends, in both directions, with the outcome the
//! caller saw (answered, error code, timeout, cancelled, disconnected,
//! panicked), and flow control reports what it parks, refuses and drops.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{guard, peer_pair, raw_client};
use serde_json::Value;
use switchboard_shared::peer::{CallEvent, CallObserver, Direction, FlowEvent, Outcome};
use switchboard_shared::{Context, Error, ErrorObject, Methods, PeerConfig, PeerHandle};
use tokio::sync::{Semaphore, mpsc};

/// One reported call: who called, which method, how it ended.
type Seen = (Direction, String, Outcome);

/// Sends every call and flow event it is told of on channels.
struct Recorder {
    calls: mpsc::UnboundedSender<Seen>,
    flow: mpsc::UnboundedSender<String>,
}

impl CallObserver for Recorder {
    fn call(&self, event: &CallEvent<'_>) {
        assert!(event.duration < common::GUARD, "{:?}", event.duration);
        let _ = self.calls.send((event.direction, event.method.to_owned(), event.outcome));
    }

    fn flow(&self, _peer: &PeerHandle, event: FlowEvent<'_>) {
        let _ = self.flow.send(format!("{event:?}"));
    }
}

struct Watched {
    config: PeerConfig,
    calls: mpsc::UnboundedReceiver<Seen>,
    flow: mpsc::UnboundedReceiver<String>,
}

fn watched(config: PeerConfig) -> Watched {
    let (calls_tx, calls) = mpsc::unbounded_channel();
    let (flow_tx, flow) = mpsc::unbounded_channel();
    let observer = Arc::new(Recorder { calls: calls_tx, flow: flow_tx });
    Watched { config: PeerConfig { observer: Some(observer), ..config }, calls, flow }
}

impl Watched {
    async fn next(&mut self) -> Seen {
        guard(self.calls.recv()).await.expect("the observer lives")
    }

    async fn next_flow(&mut self) -> String {
        guard(self.flow.recv()).await.expect("the observer lives")
    }
}

fn seen(direction: Direction, method: &str, outcome: Outcome) -> Seen {
    (direction, method.to_owned(), outcome)
}

/// `add`, `fail` (error 42), `wait` (waits for a permit), `forever`, `boom` (panics after a turn), `note`.
fn methods(gate: Arc<Semaphore>) -> Methods {
    let mut m = Methods::new();
    m.register_sync("add", |(a, b): (i64, i64), _cx: Context| Ok::<_, ErrorObject>(a + b));
    m.register_sync("fail", |(): (), _cx: Context| Err::<(), _>(ErrorObject::new(42, "no")));
    m.register("wait", move |(): (), _cx: Context| {
        let gate = Arc::clone(&gate);
        async move {
            gate.acquire().await.expect("open").forget();
            Ok::<_, ErrorObject>("waited")
        }
    });
    m.register("forever", |(): (), _cx: Context| async move {
        std::future::pending::<()>().await;
        Ok::<_, ErrorObject>(())
    });
    m.register("boom", |(): (), _cx: Context| async move {
        tokio::task::yield_now().await;
        if true {
            panic!("boom (expected by the test)");
        }
        Ok::<_, ErrorObject>(())
    });
    m.register_sync("note", |_: Value, _cx: Context| Ok::<_, ErrorObject>(()));
    m
}

#[tokio::test]
async fn each_call_is_reported_once_by_both_ends_with_the_outcome_each_saw() {
    let gate = Arc::new(Semaphore::new(0));
    let mut server = watched(PeerConfig::default());
    let mut client = watched(PeerConfig::default());
    let (_a, b) =
        peer_pair(methods(Arc::clone(&gate)), server.config.clone(), Methods::new(), client.config.clone()).await;

    assert_eq!(b.call::<i64>("add", (2, 3)).await.unwrap(), 5);
    assert_eq!(server.next().await, seen(Direction::Incoming, "add", Outcome::Ok));
    assert_eq!(client.next().await, seen(Direction::Outgoing, "add", Outcome::Ok));

    assert!(matches!(b.call::<()>("fail", ()).await, Err(Error::Rpc(e)) if e.code == 42));
    assert_eq!(server.next().await, seen(Direction::Incoming, "fail", Outcome::Error(42)));
    assert_eq!(client.next().await, seen(Direction::Outgoing, "fail", Outcome::Error(42)));

    b.call::<Value>("nope", ()).await.unwrap_err();
    assert_eq!(server.next().await, seen(Direction::Incoming, "nope", Outcome::Error(-32601)));
    assert_eq!(client.next().await, seen(Direction::Outgoing, "nope", Outcome::Error(-32601)));

    b.notify("note", [1]).await.unwrap();
    assert_eq!(server.next().await, seen(Direction::Incoming, "note", Outcome::Notification));

    // A handler that waits is reported when it answers.
    let waiting = tokio::spawn({
        let b = b.clone();
        async move { b.call::<String>("wait", ()).await }
    });
    gate.add_permits(1);
    assert_eq!(guard(waiting).await.unwrap().unwrap(), "waited");
    assert_eq!(server.next().await, seen(Direction::Incoming, "wait", Outcome::Ok));
    assert_eq!(client.next().await, seen(Direction::Outgoing, "wait", Outcome::Ok));

    // A handler that panics after waiting: -32603 on both ends.
    b.call::<()>("boom", ()).await.unwrap_err();
    assert_eq!(server.next().await, seen(Direction::Incoming, "boom", Outcome::Error(-32603)));
    assert_eq!(client.next().await, seen(Direction::Outgoing, "boom", Outcome::Error(-32603)));
}

#[tokio::test]
async fn a_timed_out_call_is_a_timeout_for_the_caller_and_cancelled_for_the_callee() {
    let mut server = watched(PeerConfig::default());
    let mut client = watched(PeerConfig::default());
    let (_a, b) =
        peer_pair(methods(Arc::new(Semaphore::new(0))), server.config.clone(), Methods::new(), client.config.clone())
            .await;

    let outcome = b.call::<()>("forever", ()).timeout(Duration::from_millis(50)).await;
    assert!(matches!(outcome, Err(Error::Timeout(_))), "{outcome:?}");
    assert_eq!(client.next().await, seen(Direction::Outgoing, "forever", Outcome::Timeout));
    // The caller sent `$/cancelRequest`: the handler was dropped and answered -32800.
    assert_eq!(server.next().await, seen(Direction::Incoming, "forever", Outcome::Error(-32800)));
}

#[tokio::test]
async fn a_call_given_up_by_its_caller_is_cancelled_and_one_cut_off_is_disconnected() {
    let mut client = watched(PeerConfig::default());
    let (a, b) =
        peer_pair(methods(Arc::new(Semaphore::new(0))), PeerConfig::default(), Methods::new(), client.config.clone())
            .await;

    let call = b.call::<()>("forever", ());
    let gave_up = tokio::time::timeout(Duration::from_millis(20), call).await;
    assert!(gave_up.is_err(), "the call never answers");
    assert_eq!(client.next().await, seen(Direction::Outgoing, "forever", Outcome::Cancelled));

    let pending = tokio::spawn({
        let b = b.clone();
        async move { b.call::<()>("forever", ()).no_timeout().await }
    });
    guard(async {
        while b.pending_calls() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    a.close(1000, "bye");
    assert!(matches!(guard(pending).await.unwrap(), Err(Error::Disconnected)));
    assert_eq!(client.next().await, seen(Direction::Outgoing, "forever", Outcome::Disconnected));
}

#[tokio::test]
async fn flow_control_reports_what_it_parks_refuses_and_drops() {
    let gate = Arc::new(Semaphore::new(0));
    let mut server = watched(PeerConfig { max_in_flight: 1, max_parked_bytes: 1, ..PeerConfig::default() });
    let (_peer, mut client) = raw_client(methods(Arc::clone(&gate)), server.config.clone()).await;
    client.send(r#"{"jsonrpc":"2.0","method":"wait","id":1}"#).await;
    client.send(r#"{"jsonrpc":"2.0","method":"wait","id":2}"#).await;
    let busy = client.exchange(r#"{"jsonrpc":"2.0","method":"wait","id":3}"#).await;
    assert_eq!(busy["error"]["code"], -32002, "{busy}");
    client.send(r#"{"jsonrpc":"2.0","method":"note","params":[1]}"#).await;
    assert_eq!(server.next_flow().await, "Parked");
    assert_eq!(server.next_flow().await, "Refused(-32002)");
    assert_eq!(server.next_flow().await, "Dropped(-32002)");

    gate.add_permits(2);
    let answers = [client.recv().await.unwrap(), client.recv().await.unwrap()];
    assert!(answers.iter().all(|a| a.contains(r#""result":"waited""#)), "{answers:?}");
    for _ in 0..2 {
        assert_eq!(server.next().await, seen(Direction::Incoming, "wait", Outcome::Ok));
    }
}

/// Sends the method and method index of every incoming call it is told of.
struct Indexes(mpsc::UnboundedSender<(String, Option<usize>)>);

impl CallObserver for Indexes {
    fn call(&self, event: &CallEvent<'_>) {
        if event.direction == Direction::Incoming {
            let _ = self.0.send((event.method.to_owned(), event.method_index));
        }
    }
}

#[tokio::test]
async fn an_incoming_call_carries_its_method_index_so_an_observer_needs_no_name_lookup() {
    let gate = Arc::new(Semaphore::new(0));
    let mut served = methods(Arc::clone(&gate));
    served.router(|name| {
        (name == "routed").then(|| switchboard_shared::Method::sync(|(): (), _cx: Context| Ok::<_, ErrorObject>(1)))
    });
    // The index is the position in registration order, which `iter` follows.
    let names: Vec<String> = served.iter().map(|(name, _)| name.to_owned()).collect();
    assert_eq!(names, ["add", "fail", "wait", "forever", "boom", "note"]);
    let (tx, mut seen) = mpsc::unbounded_channel();
    let config = PeerConfig { observer: Some(Arc::new(Indexes(tx))), ..PeerConfig::default() };
    let (_a, b) = peer_pair(served.clone(), config, Methods::new(), PeerConfig::default()).await;
    let mut next = async || guard(seen.recv()).await.expect("the observer lives");

    assert_eq!(b.call::<i64>("add", (2, 3)).await.unwrap(), 5);
    assert_eq!(next().await, ("add".to_owned(), served.index_of("add")));
    assert_eq!(served.index_of("add"), Some(0));

    // Answered later, and answered by a panic: the same index.
    gate.add_permits(1);
    assert_eq!(b.call::<String>("wait", ()).await.unwrap(), "waited");
    assert_eq!(next().await, ("wait".to_owned(), Some(2)));
    b.call::<()>("boom", ()).await.unwrap_err();
    assert_eq!(next().await, ("boom".to_owned(), Some(4)));
    b.notify("note", [1]).await.unwrap();
    assert_eq!(next().await, ("note".to_owned(), Some(5)));

    // Not in the table: no index.
    assert_eq!(b.call::<i64>("routed", ()).await.unwrap(), 1);
    assert_eq!(next().await, ("routed".to_owned(), None));
    b.call::<Value>("nope", ()).await.unwrap_err();
    assert_eq!(next().await, ("nope".to_owned(), None));
}
