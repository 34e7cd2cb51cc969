//! Flow control, shutdown, panics and cancellation of the peer engine, over
//! real sockets: the socket is always read, so calls in both directions never
//! wait on each other, and every request ends with exactly one answer.

mod common;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use common::{guard, peer_pair, raw_client};
use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_shared::Overflow;
use switchboard_shared::tokio_tungstenite::WebSocketStream;
use switchboard_shared::tokio_tungstenite::tungstenite::Message;
use switchboard_shared::tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use switchboard_shared::{
    CloseReason, ConnectionInfo, Context, Dispatch, Error, ErrorObject, Method, Methods, PeerConfig, PeerHandle, code,
    peer,
};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::sync::{Semaphore, mpsc};

/// Sets its flag when dropped: shows that a handler's future was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// `gated` waits for a permit of `gate`; `ping` answers at once; `double`
/// yields once (so it is spawned); `forever` never answers and sets `dropped`
/// when its future is dropped.
fn server_methods(gate: Arc<Semaphore>, dropped: Arc<AtomicBool>) -> Methods {
    let mut m = Methods::new();
    m.register("gated", move |n: Value, _cx: Context| {
        let gate = gate.clone();
        async move {
            gate.acquire().await.expect("the gate stays open").forget();
            Ok::<_, ErrorObject>(n)
        }
    });
    m.register_sync("ping", |(): (), _: Context| Ok::<_, ErrorObject>("pong"));
    m.register("double", |(n,): (i64,), _cx: Context| async move {
        tokio::task::yield_now().await;
        Ok::<_, ErrorObject>(n * 2)
    });
    m.register("forever", move |(): (), _cx: Context| {
        let flag = DropFlag(dropped.clone());
        async move {
            let _flag = flag;
            std::future::pending::<()>().await;
            Ok::<_, ErrorObject>(())
        }
    });
    m
}

fn closed_gate() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(0))
}

fn parse(frame: &str) -> Value {
    serde_json::from_str(frame).expect("the peer sends JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_calling_back_never_deadlock_at_ten_times_max_in_flight() {
    let mut server = Methods::new();
    server.register("whoami", |(): (), cx: Context| async move {
        let name: String = cx.peer().call("name", ()).await?;
        Ok::<_, ErrorObject>(name)
    });
    let mut client = Methods::new();
    client.register("name", |(): (), _cx: Context| async move {
        tokio::task::yield_now().await;
        Ok::<_, ErrorObject>("ada")
    });
    let config = PeerConfig { max_in_flight: 4, ..PeerConfig::default() };
    let (_server, client) = peer_pair(server, config, client, PeerConfig::default()).await;
    let calls = (0..40).map(|_| {
        let client = client.clone();
        async move { client.call::<String>("whoami", ()).await }
    });
    for result in guard(join_all(calls)).await {
        assert_eq!(result.expect("every call is answered"), "ada");
    }
}

#[tokio::test]
async fn beyond_the_parked_bound_a_request_is_refused_busy_at_once() {
    let gate = Arc::new(Semaphore::new(0));
    let config = PeerConfig { max_in_flight: 1, max_parked_bytes: 1, ..PeerConfig::default() };
    let (server, mut raw) = raw_client(server_methods(gate.clone(), Arc::default()), config).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"gated","params":[1],"id":1}"#).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"gated","params":[2],"id":2}"#).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"gated","params":[3],"id":3}"#).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"ping","id":4}"#).await;
    // 1 runs, 2 is parked, 3 and 4 are refused before anything finishes.
    for id in [3, 4] {
        let reply = parse(&raw.recv().await.expect("a refusal"));
        assert_eq!(reply["id"], id, "{reply}");
        assert_eq!(reply["error"]["code"], code::SERVER_BUSY, "{reply}");
        assert!(reply["error"]["data"].as_str().unwrap().contains("max_in_flight (1)"), "{reply}");
    }
    assert_eq!(server.busy_refusals(), 2);
    gate.add_permits(2);
    for id in [1, 2] {
        let reply = parse(&raw.recv().await.expect("an answer"));
        assert_eq!((reply["id"].clone(), reply["result"].clone()), (json!(id), json!([id])), "{reply}");
    }
}

#[tokio::test]
async fn parked_requests_run_in_arrival_order_as_slots_free() {
    let gate = Arc::new(Semaphore::new(0));
    let config = PeerConfig { max_in_flight: 1, ..PeerConfig::default() };
    let (server, mut raw) = raw_client(server_methods(gate.clone(), Arc::default()), config).await;
    for id in 1..=3 {
        raw.send(&format!(r#"{{"jsonrpc":"2.0","method":"gated","params":[{id}],"id":{id}}}"#)).await;
    }
    // A sync request behind them waits its turn too (order is kept)...
    raw.send(r#"{"jsonrpc":"2.0","method":"ping","id":4}"#).await;
    for id in 1..=3 {
        gate.add_permits(1);
        let reply = parse(&raw.recv().await.expect("an answer"));
        assert_eq!(reply["id"], id, "{reply}");
        assert!(server.in_flight() <= 1);
    }
    assert_eq!(parse(&raw.recv().await.unwrap())["result"], "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_refuses_new_requests_and_lets_a_handler_waiting_on_its_callback_finish() {
    let gate = Arc::new(Semaphore::new(0));
    let mut server = Methods::new();
    server.register("whoami", |(): (), cx: Context| async move {
        Ok::<_, ErrorObject>(cx.peer().call::<String>("name", ()).await?)
    });
    server.register_sync("ping", |(): (), _: Context| Ok::<_, ErrorObject>("pong"));
    let mut client = Methods::new();
    let (asked_tx, mut asked) = mpsc::unbounded_channel();
    let g = gate.clone();
    client.register("name", move |(): (), _cx: Context| {
        let (g, asked_tx) = (g.clone(), asked_tx.clone());
        async move {
            asked_tx.send(()).unwrap();
            g.acquire().await.unwrap().forget();
            Ok::<_, ErrorObject>("ada")
        }
    });
    let (server, client) = peer_pair(server, PeerConfig::default(), client, PeerConfig::default()).await;
    let whoami = tokio::spawn({
        let client = client.clone();
        async move { client.call::<String>("whoami", ()).await }
    });
    guard(asked.recv()).await.unwrap();
    server.shutdown(tokio::time::Instant::now() + Duration::from_secs(30));
    let refused = guard(client.call::<String>("ping", ())).await.unwrap_err();
    assert_eq!(refused.rpc().map(|e| e.code), Some(code::SHUTTING_DOWN), "{refused}");
    gate.add_permits(1);
    assert_eq!(guard(whoami).await.unwrap().unwrap(), "ada");
    assert!(matches!(guard(client.closed()).await, CloseReason::Remote { code: Some(1001), .. }));
}

#[tokio::test]
async fn an_over_long_batch_answers_each_request_with_its_own_id() {
    let config = PeerConfig { max_batch_len: 3, ..PeerConfig::default() };
    let (_peer, mut raw) = raw_client(server_methods(closed_gate(), Arc::default()), config).await;
    let reply = raw
        .exchange(
            r#"[{"jsonrpc":"2.0","method":"ping","id":1},
                {"jsonrpc":"2.0","method":"ping","id":"two"},
                {"jsonrpc":"2.0","method":"ping"},
                {"jsonrpc":"2.0","method":"ping","id":3}]"#,
        )
        .await;
    let answers = reply.as_array().expect("an array answer");
    let ids: Vec<Value> = answers.iter().map(|a| a["id"].clone()).collect();
    assert_eq!(ids, vec![json!(1), json!("two"), json!(3)], "{reply}");
    for answer in answers {
        assert_eq!(answer["error"]["code"], code::INVALID_REQUEST, "{reply}");
        assert!(answer["error"]["data"].as_str().unwrap().contains("limit of 3"), "{reply}");
    }
}

/// A raw handler that yields once, then panics: no wrapper of `Method::new` catches it.
fn panics_later() -> Method {
    Method::raw(|_params, _cx, _id| {
        Dispatch::Pending(Box::pin(async {
            tokio::task::yield_now().await;
            panic!("handler bug after its first poll");
        }))
    })
}

#[tokio::test]
async fn a_handler_panicking_after_its_first_poll_is_answered_with_its_own_id() {
    let mut methods = server_methods(closed_gate(), Arc::default());
    methods.insert("boom_later", panics_later());
    let (peer, mut raw) = raw_client(methods, PeerConfig::default()).await;
    let reply = raw.exchange(r#"{"jsonrpc":"2.0","method":"boom_later","id":5}"#).await;
    assert_eq!((reply["id"].clone(), reply["error"]["code"].clone()), (json!(5), json!(code::INTERNAL_ERROR)));
    assert_eq!(peer.handler_panics(), 1);
}

#[tokio::test]
async fn a_panicking_notification_gets_no_reply_alone_or_in_a_batch() {
    let mut methods = server_methods(closed_gate(), Arc::default());
    methods.insert("boom_later", panics_later());
    let (peer, mut raw) = raw_client(methods, PeerConfig::default()).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"boom_later"}"#).await;
    // The next frame answers the next request: the notification got nothing.
    let reply = raw.exchange(r#"{"jsonrpc":"2.0","method":"double","params":[2],"id":1}"#).await;
    assert_eq!(reply, json!({"jsonrpc": "2.0", "result": 4, "id": 1}));
    let reply = raw
        .exchange(
            r#"[{"jsonrpc":"2.0","method":"boom_later"},{"jsonrpc":"2.0","method":"double","params":[3],"id":2}]"#,
        )
        .await;
    assert_eq!(reply, json!([{"jsonrpc": "2.0", "result": 6, "id": 2}]));
    assert_eq!(peer.handler_panics(), 2);
}

/// A peer over an in-memory pipe whose other end is a plain WebSocket that
/// reads only when the test says so. The peer's writes go out one frame at
/// a time (no write buffer), so an unread pipe backs its queue up at once.
async fn piped(methods: Methods, config: PeerConfig) -> (PeerHandle, WebSocketStream<DuplexStream>) {
    piped_over(methods, config, |s| s).await
}

async fn piped_over<S, F>(methods: Methods, config: PeerConfig, wrap: F) -> (PeerHandle, WebSocketStream<DuplexStream>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(DuplexStream) -> S,
{
    let (near, far) = tokio::io::duplex(64);
    let ws_config = WebSocketConfig::default().write_buffer_size(0);
    let near = WebSocketStream::from_raw_socket(wrap(near), Role::Server, Some(ws_config)).await;
    let far = WebSocketStream::from_raw_socket(far, Role::Client, None).await;
    (peer::spawn(near, Arc::new(methods), ConnectionInfo::new(), config), far)
}

/// Frames that fill the pipe and the WebSocket's write buffer (the first)
/// and leave the second counted in the peer's queue, over its bound.
const FILL: usize = 2;

async fn fill(peer: &PeerHandle) {
    let frame = format!(r#"{{"jsonrpc":"2.0","method":"big","params":["{}"]}}"#, "x".repeat(300));
    for _ in 0..FILL {
        guard(peer.send_text_with(frame.clone().into(), Overflow::Wait)).await.unwrap();
    }
    tokio::task::yield_now().await;
    assert!(peer.queued_bytes() > 100, "the queue is over its bound");
}

async fn next_text(ws: &mut WebSocketStream<DuplexStream>) -> Value {
    loop {
        match guard(ws.next()).await.expect("a frame").expect("a good frame") {
            Message::Text(text) => return parse(&text),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn answering_a_call_never_closes_a_peer_whose_queue_is_full_of_its_own_frames() {
    let config = PeerConfig { max_queue_bytes: 100, overflow: Overflow::Wait, ..PeerConfig::default() };
    let (peer, mut far) = piped(server_methods(closed_gate(), Arc::default()), config).await;
    fill(&peer).await;
    far.send(Message::text(r#"{"jsonrpc":"2.0","method":"ping","id":1}"#)).await.unwrap();
    for _ in 0..FILL {
        assert_eq!(next_text(&mut far).await["method"], "big");
    }
    assert_eq!(next_text(&mut far).await, json!({"jsonrpc": "2.0", "result": "pong", "id": 1}));
    assert!(!peer.is_closed(), "closed: {:?}", peer.close_reason());
}

#[tokio::test]
async fn batch_and_notification_sends_give_up_at_their_timeout_when_the_queue_stays_full() {
    let config = PeerConfig {
        max_queue_bytes: 100,
        overflow: Overflow::Wait,
        call_timeout: Some(Duration::from_millis(100)),
        ..PeerConfig::default()
    };
    let (peer, _far) = piped(Methods::new(), config).await;
    let pad = "x".repeat(300);
    fill(&peer).await;
    let err = guard(peer.notify("big", [&pad])).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    let batch = peer::BatchBuilder::new().call(&peer, "ping", ()).notify("big", [&pad]);
    let err = guard(peer.batch(batch, Some(Duration::from_millis(100)))).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    assert_eq!(peer.pending_calls(), 0);
    let err = guard(peer.call::<String>("ping", ())).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
}

/// A transport that panics on read once armed: a bug below the engine.
struct PanicOnRead {
    inner: DuplexStream,
    armed: Arc<AtomicBool>,
}

impl AsyncRead for PanicOnRead {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.armed.load(Ordering::SeqCst) {
            panic!("transport bug");
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PanicOnRead {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn a_panicking_connection_task_still_fails_every_pending_call() {
    let armed = Arc::new(AtomicBool::new(false));
    let trigger = armed.clone();
    let (peer, mut far) =
        piped_over(Methods::new(), PeerConfig::default(), move |inner| PanicOnRead { inner, armed: trigger }).await;
    let call = tokio::spawn({
        let peer = peer.clone();
        async move { peer.call_raw("ask", (), None).await }
    });
    assert_eq!(next_text(&mut far).await["method"], "ask");
    armed.store(true, Ordering::SeqCst);
    far.send(Message::text("{}")).await.unwrap();
    assert!(matches!(guard(call).await.unwrap(), Err(Error::Disconnected)));
    assert!(matches!(guard(peer.closed()).await, CloseReason::Transport(ref why) if why.contains("panicked")));
}

#[tokio::test]
async fn a_cancelled_request_is_answered_request_cancelled_and_frees_its_slot() {
    let dropped = Arc::new(AtomicBool::new(false));
    let config = PeerConfig { max_in_flight: 1, ..PeerConfig::default() };
    let (peer, mut raw) = raw_client(server_methods(closed_gate(), dropped.clone()), config).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"forever","id":7}"#).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"double","params":[1],"id":8}"#).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":7}}"#).await;
    let reply = parse(&raw.recv().await.unwrap());
    assert_eq!((reply["id"].clone(), reply["error"]["code"].clone()), (json!(7), json!(code::REQUEST_CANCELLED)));
    assert!(dropped.load(Ordering::SeqCst), "the handler's future was dropped");
    // The parked call ran in the freed slot.
    assert_eq!(parse(&raw.recv().await.unwrap()), json!({"jsonrpc": "2.0", "result": 2, "id": 8}));
    assert_eq!(peer.cancelled_requests(), 1);
}

#[tokio::test]
async fn a_parked_request_can_be_cancelled_too() {
    let config = PeerConfig { max_in_flight: 1, ..PeerConfig::default() };
    let (_peer, mut raw) = raw_client(server_methods(closed_gate(), Arc::default()), config).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"forever","id":1}"#).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"forever","id":2}"#).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":2}}"#).await;
    let reply = parse(&raw.recv().await.unwrap());
    assert_eq!((reply["id"].clone(), reply["error"]["code"].clone()), (json!(2), json!(code::REQUEST_CANCELLED)));
}

#[tokio::test]
async fn a_call_that_times_out_or_is_dropped_sends_cancel_request_with_its_id() {
    let (peer, mut raw) = raw_client(Methods::new(), PeerConfig::default()).await;
    let err = peer.call::<Value>("slow", ()).timeout(Duration::from_millis(20)).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(d) if d == Duration::from_millis(20)), "{err}");
    let request = parse(&raw.recv().await.unwrap());
    let cancel = parse(&raw.recv().await.unwrap());
    assert_eq!(cancel, json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": request["id"]}}));

    let call = tokio::spawn({
        let peer = peer.clone();
        async move { peer.call::<Value>("slow", ()).no_timeout().await }
    });
    let request = parse(&raw.recv().await.unwrap());
    call.abort();
    let cancel = parse(&raw.recv().await.unwrap());
    assert_eq!(cancel["params"]["id"], request["id"]);
}

#[tokio::test]
async fn a_call_answered_in_time_sends_no_cancel() {
    let (peer, mut raw) = raw_client(Methods::new(), PeerConfig::default()).await;
    let call = tokio::spawn({
        let peer = peer.clone();
        async move { peer.call::<i64>("ask", ()).await }
    });
    let request = parse(&raw.recv().await.unwrap());
    raw.send(&format!(r#"{{"jsonrpc":"2.0","result":5,"id":{}}}"#, request["id"])).await;
    assert_eq!(guard(call).await.unwrap().unwrap(), 5);
    // The next frame is this notification, not a cancellation.
    peer.notify("marker", ()).await.unwrap();
    assert_eq!(parse(&raw.recv().await.unwrap())["method"], "marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_second_call_cancelled_by_its_timeout_frees_the_only_slot_at_once() {
    let dropped = Arc::new(AtomicBool::new(false));
    let mut server = server_methods(closed_gate(), dropped.clone());
    server.register("sleep", |(ms,): (u64,), _cx: Context| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<_, ErrorObject>(ms)
    });
    let config = PeerConfig { max_in_flight: 1, ..PeerConfig::default() };
    let (server, client) = peer_pair(server, config, Methods::new(), PeerConfig::default()).await;
    let err = client.call::<u64>("sleep", [10_000]).timeout(Duration::from_millis(100)).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    // Far sooner than the sleep's 10 s: the slot is free again.
    let doubled = tokio::time::timeout(Duration::from_secs(5), client.call::<i64>("double", [21])).await;
    assert_eq!(doubled.expect("the slot was freed by the cancellation").unwrap(), 42);
    assert_eq!(server.cancelled_requests(), 1);
}

#[tokio::test]
async fn a_handler_hands_its_cancellation_token_to_work_it_started() {
    let (stopped_tx, mut stopped) = mpsc::unbounded_channel();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let mut methods = Methods::new();
    methods.register("export", move |(): (), cx: Context| {
        let (stopped_tx, started_tx) = (stopped_tx.clone(), started_tx.clone());
        async move {
            let token = cx.cancellation();
            tokio::spawn(async move {
                token.cancelled().await;
                stopped_tx.send(()).unwrap();
            });
            started_tx.send(()).unwrap();
            std::future::pending::<()>().await;
            Ok::<_, ErrorObject>(())
        }
    });
    let (_peer, mut raw) = raw_client(methods, PeerConfig::default()).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"export","id":"job"}"#).await;
    guard(started.recv()).await.unwrap();
    raw.send(r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"job"}}"#).await;
    guard(stopped.recv()).await.expect("the token fired");
    assert_eq!(parse(&raw.recv().await.unwrap())["error"]["code"], code::REQUEST_CANCELLED);
}

#[tokio::test]
async fn with_cancellation_off_cancel_request_is_an_ordinary_notification() {
    let config = PeerConfig { cancellation: switchboard_shared::Cancellation::Off, ..PeerConfig::default() };
    let (_peer, mut raw) = raw_client(server_methods(closed_gate(), Arc::default()), config).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"forever","id":1}"#).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"#).await;
    // Nothing answers request 1; the next frame is the ping's answer.
    assert_eq!(raw.exchange(r#"{"jsonrpc":"2.0","method":"ping","id":2}"#).await["id"], 2);
}

#[tokio::test]
async fn a_connection_busy_at_its_in_flight_bound_still_hears_pongs_and_stays_open() {
    let gate = closed_gate();
    let config = PeerConfig {
        max_in_flight: 1,
        heartbeat: Some(switchboard_shared::Heartbeat {
            interval: Duration::from_millis(20),
            timeout: Duration::from_millis(100),
        }),
        ..PeerConfig::default()
    };
    let (peer, mut raw) = raw_client(server_methods(gate.clone(), Arc::default()), config).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"gated","params":[1],"id":1}"#).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"gated","params":[2],"id":2}"#).await;
    // Twenty pings span four heartbeat timeouts; our pongs (sent by
    // tungstenite as it reads them) must count as heard.
    let mut pings = 0;
    while pings < 20 {
        match guard(raw.ws.next()).await {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("expected pings while the handlers wait, got {other:?}"),
        }
    }
    assert!(!peer.is_closed(), "closed: {:?}", peer.close_reason());
    gate.add_permits(2);
    assert_eq!(parse(&raw.recv().await.unwrap())["id"], 1);
    assert_eq!(parse(&raw.recv().await.unwrap())["id"], 2);
}
