//! Operating the hub, over real sockets: what `GET /metrics` counts after a
//! scripted workload (read back with a Prometheus text-format parser), the
//! health and readiness endpoints, and the `on_call` hook. Each test builds
//! its own server, which keeps its own registry: the counts are exact even
//! with the tests running in parallel.

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use prometheus_parse::{Sample, Scrape, Value as Measured};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use support::http::{call, connect, http, refused_status};
use support::{Ws, guard};
use switchboard_server::shared::stream::StreamPosition;
use switchboard_server::{
    Broker, BrokerError, BrokerFuture, BrokerOperation, CallEvent, Direction, Fanout, HistoryPage, Identity,
    MemoryBroker, Metrics, Outcome, Rejection, Server, ServerBuilder, ServerContext, ServerHandle, Snapshot,
    operations,
};
use switchboard_shared::{CloseReason, Context, ErrorObject, Methods};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, client_async};

/// A server and the address of its operations port.
struct Hub {
    server: ServerHandle,
    operations: SocketAddr,
}

impl Hub {
    async fn start(builder: ServerBuilder, methods: Methods) -> Hub {
        let server = builder.build(methods).listen("127.0.0.1:0").await.expect("listen on port 0");
        let operations = operations::listen(&server, "127.0.0.1:0").await.expect("the operations port");
        Hub { server, operations }
    }

    fn url(&self) -> String {
        format!("ws://{}/", self.server.local_addr().expect("listening"))
    }

    async fn connect(&self) -> Ws {
        connect(self.url()).await.expect("connect")
    }

    /// Scrapes `/metrics` and parses it.
    async fn scrape(&self) -> Scraped {
        let (status, head, body) = http(self.operations, "GET", "/metrics").await;
        assert_eq!(status, 200, "{head}\n{body}");
        assert!(head.contains("content-type: text/plain; version=0.0.4"), "{head}");
        let scrape = Scrape::parse(body.lines().map(|line| Ok(line.to_owned()))).expect("the Prometheus text format");
        Scraped { samples: scrape.samples, text: body }
    }
}

/// What one scrape said.
struct Scraped {
    samples: Vec<Sample>,
    text: String,
}

impl Scraped {
    /// The samples of `metric` whose labels include `labels`.
    fn matching(&self, metric: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .collect()
    }

    /// The value of the one sample of `metric` with exactly these labels
    /// (0 when there is none: a series appears with its first event).
    fn value(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<_> =
            self.matching(metric, labels).into_iter().filter(|s| s.labels.len() == labels.len()).collect();
        match found.as_slice() {
            [] => 0.0,
            [sample] => match &sample.value {
                Measured::Counter(v) | Measured::Gauge(v) | Measured::Untyped(v) => *v,
                other => panic!("{metric} is not a single value: {other:?}"),
            },
            many => panic!("{} samples of {metric} {labels:?}:\n{}", many.len(), self.text),
        }
    }

    /// The observation count of a histogram series (its `+Inf` bucket).
    fn histogram_count(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        let found = self.matching(metric, labels);
        let [sample] = found.as_slice() else { panic!("one {metric} {labels:?} histogram:\n{}", self.text) };
        match &sample.value {
            Measured::Histogram(buckets) => {
                buckets.iter().find(|b| b.less_than.is_infinite()).expect("a +Inf bucket").count
            }
            other => panic!("{metric} is not a histogram: {other:?}"),
        }
    }
}

fn incoming<'a>(method: &'a str, outcome: &'a str) -> [(&'static str, &'a str); 3] {
    [("direction", "incoming"), ("method", method), ("outcome", outcome)]
}

fn incoming_error<'a>(method: &'a str, code: &'a str) -> [(&'static str, &'a str); 3] {
    [("direction", "incoming"), ("method", method), ("code", code)]
}

/// `add`, `fail` (error 42), `slow` (waits a turn), `note` (a notification).
fn methods() -> Methods {
    let mut methods = Methods::new();
    methods.register_sync("add", |(a, b): (i64, i64), _cx: Context| Ok::<_, ErrorObject>(a + b));
    methods.register_sync("fail", |(): (), _cx: Context| Err::<(), _>(ErrorObject::new(42, "out of stock")));
    methods.register("slow", |(): (), _cx: Context| async move {
        tokio::task::yield_now().await;
        Ok::<_, ErrorObject>("done")
    });
    methods.register_sync("note", |_: Value, _cx: Context| Ok::<_, ErrorObject>(()));
    methods
}

async fn send_json(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string())).await.expect("send a frame");
}

#[tokio::test]
async fn calls_are_counted_by_method_and_error_code_and_unknown_methods_fold_into_other() {
    let hub = Hub::start(Server::builder(), methods()).await;
    let mut ws = hub.connect().await;
    for id in 0..3 {
        assert_eq!(call(&mut ws, id, "add", json!([id, 1])).await["result"], json!(id + 1));
    }
    assert_eq!(call(&mut ws, 3, "add", json!(["x"])).await["error"]["code"], -32602);
    for id in 4..6 {
        assert_eq!(call(&mut ws, id, "fail", json!([])).await["error"]["code"], 42);
    }
    assert_eq!(call(&mut ws, 6, "slow", json!([])).await["result"], "done");
    for (id, name) in [(7, "nope"), (8, "zzz"), (9, "nope")] {
        assert_eq!(call(&mut ws, id, name, json!([])).await["error"]["code"], -32601);
    }
    send_json(&mut ws, json!({"jsonrpc": "2.0", "method": "note", "params": [1]})).await;
    send_json(&mut ws, json!({"jsonrpc": "2.0", "method": "note", "params": [2]})).await;
    // Answered after both notifications were handled (frames run in order).
    call(&mut ws, 10, "add", json!([0, 0])).await;

    let m = hub.scrape().await;
    assert_eq!(m.value("switchboard_calls_total", &incoming("add", "ok")), 4.0);
    assert_eq!(m.value("switchboard_calls_total", &incoming("add", "error")), 1.0);
    assert_eq!(m.value("switchboard_call_errors_total", &incoming_error("add", "-32602")), 1.0);
    assert_eq!(m.value("switchboard_calls_total", &incoming("fail", "error")), 2.0);
    assert_eq!(m.value("switchboard_call_errors_total", &incoming_error("fail", "42")), 2.0);
    assert_eq!(m.value("switchboard_calls_total", &incoming("slow", "ok")), 1.0);
    assert_eq!(m.value("switchboard_calls_total", &incoming("note", "notification")), 2.0);
    assert_eq!(m.value("switchboard_calls_total", &incoming("other", "error")), 3.0);
    assert_eq!(m.value("switchboard_call_errors_total", &incoming_error("other", "-32601")), 3.0);
    assert!(m.matching("switchboard_calls_total", &[("method", "nope")]).is_empty(), "{}", m.text);
    assert!(m.matching("switchboard_calls_total", &[("method", "zzz")]).is_empty(), "{}", m.text);
    let add = [("direction", "incoming"), ("method", "add")];
    assert_eq!(m.histogram_count("switchboard_call_duration_seconds", &add), 5.0);
    assert_eq!(m.value("switchboard_call_duration_seconds_count", &add), 5.0);
    assert_eq!(m.value("switchboard_connections", &[]), 1.0);
    assert_eq!(m.value("switchboard_connections_opened_total", &[]), 1.0);
    assert_eq!(m.value("switchboard_handshakes_accepted_total", &[]), 1.0);
    assert_eq!(m.value("switchboard_calls_in_flight", &[("direction", "incoming")]), 0.0);
    assert_eq!(m.value("switchboard_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);

    ws.close(None).await.expect("close");
    // The close is counted once the server has forgotten the connection.
    let deadline = Instant::now() + support::GUARD;
    loop {
        let m = hub.scrape().await;
        if m.value("switchboard_connections", &[]) == 0.0 {
            assert_eq!(m.value("switchboard_connections_closed_total", &[("reason", "remote")]), 1.0);
            break;
        }
        assert!(Instant::now() < deadline, "the connection was never forgotten");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn refused_handshakes_are_counted_by_reason() {
    let builder = Server::builder()
        .max_connections(1)
        .allowed_origins(["http://good.example"])
        .expect("a valid origin")
        .authenticate(|req| match req.bearer_token() {
            Some("secret") => Ok(()),
            _ => Err(Rejection::Unauthorized("a bearer token is required".into())),
        });
    let hub = Hub::start(builder, methods()).await;
    let request = |origin: &str, token: Option<&str>| {
        let mut request = hub.url().into_client_request().expect("a request");
        request.headers_mut().insert("origin", origin.parse().unwrap());
        if let Some(token) = token {
            request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    };
    assert_eq!(refused_status(connect(request("http://evil.example", Some("secret"))).await), 403);
    assert_eq!(refused_status(connect(request("http://good.example", None)).await), 401);
    let mut admitted = connect(request("http://good.example", Some("secret"))).await.expect("admitted");
    call(&mut admitted, 1, "add", json!([1, 1])).await;
    assert_eq!(refused_status(connect(request("http://good.example", Some("secret"))).await), 503);

    let m = hub.scrape().await;
    assert_eq!(m.value("switchboard_handshakes_accepted_total", &[]), 1.0);
    assert_eq!(m.value("switchboard_handshakes_refused_total", &[("reason", "origin")]), 1.0);
    assert_eq!(m.value("switchboard_handshakes_refused_total", &[("reason", "auth")]), 1.0);
    assert_eq!(m.value("switchboard_handshakes_refused_total", &[("reason", "limit")]), 1.0);
    assert_eq!(m.value("switchboard_handshakes_refused_total", &[("reason", "timeout")]), 0.0);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_is_counted_as_a_timeout() {
    let hub = Hub::start(Server::builder().handshake_timeout(Duration::from_millis(200)), methods()).await;
    let mut silent = TcpStream::connect(hub.server.local_addr().unwrap()).await.expect("tcp connect");
    // The server drops the connection once the handshake timeout has passed.
    let mut byte = [0u8; 1];
    assert_eq!(guard("the server to drop a silent client", silent.read(&mut byte)).await.unwrap_or(0), 0);
    let m = hub.scrape().await;
    assert_eq!(m.value("switchboard_handshakes_refused_total", &[("reason", "timeout")]), 1.0);
    assert_eq!(m.value("switchboard_handshakes_accepted_total", &[]), 0.0);
}

#[tokio::test]
async fn a_slow_consumer_cut_off_is_counted_with_its_reason() {
    let (closed_tx, mut closed) = mpsc::unbounded_channel();
    let (opened_tx, mut opened) = mpsc::unbounded_channel();
    let builder = Server::builder()
        .max_queue_bytes(64 << 10)
        .on_connect(move |peer| {
            let _ = opened_tx.send(peer.id());
        })
        .on_disconnect(move |peer, reason| {
            let _ = closed_tx.send((peer.id(), reason.clone()));
        });
    // Small kernel buffers on both ends, so a client that does not read
    // fills the server's outbound queue after little data.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(8 << 10).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let server = builder.build(methods()).listen_on(socket.listen(16).unwrap()).unwrap();
    let hub = Hub { operations: operations::listen(&server, "127.0.0.1:0").await.unwrap(), server };

    let client_socket = TcpSocket::new_v4().unwrap();
    client_socket.set_recv_buffer_size(8 << 10).unwrap();
    let stream = guard("tcp connect", client_socket.connect(hub.server.local_addr().unwrap())).await.unwrap();
    let (_slow, _) = guard("upgrade", client_async(hub.url(), MaybeTlsStream::Plain(stream))).await.unwrap();
    let slow_id = guard("on_connect", opened.recv()).await.expect("the hook lives");
    let pad = "x".repeat(16 << 10);
    for seq in 0.. {
        assert!(seq < 20_000, "the slow consumer was never cut off");
        if hub.server.notify(slow_id, "tick", json!({"seq": seq, "pad": pad})).is_err() {
            break;
        }
    }
    let (id, reason) = guard("on_disconnect", closed.recv()).await.expect("the hook lives");
    assert_eq!((id, reason), (slow_id, CloseReason::SlowConsumer));

    let m = hub.scrape().await;
    assert_eq!(m.value("switchboard_connections_closed_total", &[("reason", "slow_consumer")]), 1.0);
    assert_eq!(m.value("switchboard_connections", &[]), 0.0);
    assert_eq!(m.histogram_count("switchboard_outbound_queue_bytes", &[]), 0.0, "no connection is open");
}

#[tokio::test]
async fn parked_and_busy_requests_are_counted() {
    let gate = Arc::new(Semaphore::new(0));
    let mut methods = methods();
    let permits = Arc::clone(&gate);
    methods.register("block", move |(n,): (i64,), _cx: Context| {
        let permits = Arc::clone(&permits);
        async move {
            permits.acquire().await.expect("open").forget();
            Ok::<_, ErrorObject>(n)
        }
    });
    let hub = Hub::start(Server::builder().max_in_flight(1).max_parked_bytes(100), methods).await;
    let mut ws = hub.connect().await;
    for id in 1..=3 {
        send_json(&mut ws, json!({"jsonrpc": "2.0", "method": "block", "params": [id], "id": id})).await;
    }
    // The first runs, the second is parked, the third finds the parked bound full.
    let busy = next_reply(&mut ws).await;
    assert_eq!((busy["id"].clone(), busy["error"]["code"].clone()), (json!(3), json!(-32002)), "{busy}");
    let m = hub.scrape().await;
    assert_eq!(m.value("switchboard_requests_parked_total", &[]), 1.0);
    assert_eq!(m.value("switchboard_requests_refused_total", &[("reason", "busy")]), 1.0);
    assert_eq!(m.value("switchboard_calls_in_flight", &[("direction", "incoming")]), 1.0);

    gate.add_permits(2);
    let answers = [next_reply(&mut ws).await, next_reply(&mut ws).await];
    assert_eq!(answers.map(|a| a["result"].clone()), [json!(1), json!(2)]);
    let m = hub.scrape().await;
    assert_eq!(m.value("switchboard_calls_total", &incoming("block", "ok")), 2.0);
    assert_eq!(m.value("switchboard_calls_in_flight", &[("direction", "incoming")]), 0.0);
}

/// The next text frame, parsed.
async fn next_reply(ws: &mut Ws) -> Value {
    loop {
        match guard("a frame", ws.next()).await {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).expect("JSON"),
            Some(Ok(_)) => continue,
            other => panic!("no frame: {other:?}"),
        }
    }
}

#[tokio::test]
async fn resumed_subscriptions_count_replays_and_lost_histories() {
    let hub = Hub::start(Server::builder(), methods()).await;
    let mut first = None;
    for n in 1..=3 {
        let position = hub.server.publish("t", "tick", [n]).expect("publish").await.expect("a position");
        first.get_or_insert(position);
    }
    let first: StreamPosition = first.unwrap();
    let mut ws = hub.connect().await;
    let since = json!({"epoch": first.epoch, "offset": 1});
    let resumed = call(&mut ws, 1, "rpc.subscribe", json!({"topic": "t", "since": since})).await;
    assert_eq!(resumed["result"]["recovered"], true, "{resumed}");
    let replayed = [next_reply(&mut ws).await, next_reply(&mut ws).await];
    assert_eq!(replayed.map(|p| p["params"]["offset"].clone()), [json!(2), json!(3)]);
    let lost = call(&mut ws, 2, "rpc.subscribe", json!({"topic": "u", "since": {"epoch": "gone", "offset": 9}})).await;
    assert_eq!(lost["result"]["recovered"], false, "{lost}");
    hub.server.publish("t", "tick", [4]).expect("publish").await.expect("a position");
    assert_eq!(next_reply(&mut ws).await["params"]["offset"], 4);

    let m = hub.scrape().await;
    assert_eq!(m.value("switchboard_subscriptions_resumed_total", &[("recovered", "true")]), 1.0);
    assert_eq!(m.value("switchboard_subscriptions_resumed_total", &[("recovered", "false")]), 1.0);
    assert_eq!(m.value("switchboard_replayed_publications_total", &[]), 2.0);
    assert_eq!(m.value("switchboard_publications_total", &[]), 4.0);
    assert_eq!(m.value("switchboard_publication_deliveries_total", &[]), 1.0, "only the last had a subscriber");
}

#[tokio::test]
async fn health_is_ok_and_readiness_turns_503_while_connections_drain() {
    let gate = Arc::new(Semaphore::new(0));
    let mut methods = methods();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let permits = Arc::clone(&gate);
    methods.register("block", move |(): (), _cx: Context| {
        let (permits, started_tx) = (Arc::clone(&permits), started_tx.clone());
        async move {
            let _ = started_tx.send(());
            permits.acquire().await.expect("open").forget();
            Ok::<_, ErrorObject>("released")
        }
    });
    let hub = Hub::start(Server::builder(), methods).await;
    assert_eq!(http(hub.operations, "GET", "/healthz").await.0, 200);
    let (status, _, body) = http(hub.operations, "GET", "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    assert_eq!(http(hub.operations, "GET", "/elsewhere").await.0, 404);
    // The hub's own port answers them too, beside the WebSocket upgrade.
    let hub_port = hub.server.local_addr().expect("listening");
    let (status, _, body) = http(hub_port, "GET", "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let (status, head, body) = http(hub_port, "GET", "/metrics").await;
    assert!(status == 200 && head.contains("version=0.0.4"), "{head}");
    assert!(body.lines().any(|line| line == "switchboard_connections 0"), "{body}");

    // A call in flight keeps the server draining once a shutdown begins.
    let mut ws = hub.connect().await;
    send_json(&mut ws, json!({"jsonrpc": "2.0", "method": "block", "id": 1})).await;
    guard("the call to start", started.recv()).await.expect("the method lives");
    let stopped = hub.server.shutdown(Duration::from_secs(30));
    let (status, _, body) = http(hub.operations, "GET", "/readyz").await;
    assert_eq!((status, body.as_str()), (503, "not ready: the server is shutting down\n"));
    assert_eq!(http(hub.operations, "GET", "/healthz").await.0, 200, "alive while draining");

    gate.add_permits(1);
    assert_eq!(next_reply(&mut ws).await["result"], "released");
    guard("the server to stop", stopped).await;
}

/// An in-memory broker whose readiness the test sets, and which reports to
/// the servers' metrics what a broker with a backend reports.
#[derive(Debug)]
struct ReportingBroker {
    inner: MemoryBroker,
    reachable: AtomicBool,
    fanouts: parking_lot::Mutex<Vec<Fanout>>,
}

impl Broker for ReportingBroker {
    fn attach(&self, fanout: Fanout) {
        self.fanouts.lock().push(fanout.clone());
        self.inner.attach(fanout);
    }

    fn publish(&self, topic: &str, method: &str, params: &RawValue) -> BrokerFuture<StreamPosition> {
        let started = Instant::now();
        if !self.reachable.load(Ordering::SeqCst) {
            self.fanouts.lock().iter().for_each(|f| f.observe_error(BrokerOperation::Publish));
            return Box::pin(std::future::ready(Err(BrokerError::Unavailable("connection refused".into()))));
        }
        let published = self.inner.publish(topic, method, params);
        self.fanouts.lock().iter().for_each(|f| f.observe_publish(started.elapsed()));
        published
    }

    fn snapshot(&self, topic: &str, since: Option<&StreamPosition>, max_replay: usize) -> BrokerFuture<Snapshot> {
        self.inner.snapshot(topic, since, max_replay)
    }

    fn history(&self, topic: &str, since: Option<&StreamPosition>, limit: usize) -> BrokerFuture<HistoryPage> {
        self.inner.history(topic, since, limit)
    }

    fn check_ready(&self) -> BrokerFuture<()> {
        let ready = match self.reachable.load(Ordering::SeqCst) {
            true => Ok(()),
            false => Err(BrokerError::Unavailable("connection refused".into())),
        };
        Box::pin(std::future::ready(ready))
    }
}

#[tokio::test]
async fn readiness_and_broker_metrics_follow_what_the_broker_reports() {
    let broker = Arc::new(ReportingBroker {
        inner: MemoryBroker::default(),
        reachable: AtomicBool::new(true),
        fanouts: parking_lot::Mutex::default(),
    });
    let hub = Hub::start(Server::builder().broker(SharedBroker(Arc::clone(&broker))), methods()).await;
    hub.server.publish("t", "tick", [1]).expect("publish").await.expect("published");
    hub.server.publish("t", "tick", [2]).expect("publish").await.expect("published");
    assert_eq!(http(hub.operations, "GET", "/readyz").await.0, 200);

    broker.reachable.store(false, Ordering::SeqCst);
    hub.server.publish("t", "tick", [3]).expect("publish").await.expect_err("the broker is down");
    broker.fanouts.lock().iter().for_each(Fanout::observe_reconnect);
    let (status, _, body) = http(hub.operations, "GET", "/readyz").await;
    assert_eq!((status, body.as_str()), (503, "not ready: the broker is unavailable: connection refused\n"));

    let m = hub.scrape().await;
    assert_eq!(m.histogram_count("switchboard_broker_publish_duration_seconds", &[]), 2.0);
    assert_eq!(m.value("switchboard_broker_errors_total", &[("operation", "publish")]), 1.0);
    assert_eq!(m.value("switchboard_broker_reconnects_total", &[]), 1.0);
    broker.reachable.store(true, Ordering::SeqCst);
    assert_eq!(http(hub.operations, "GET", "/readyz").await.0, 200);
}

/// A broker shared with the test.
#[derive(Debug)]
struct SharedBroker(Arc<ReportingBroker>);

impl Broker for SharedBroker {
    fn attach(&self, fanout: Fanout) {
        self.0.attach(fanout);
    }
    fn publish(&self, topic: &str, method: &str, params: &RawValue) -> BrokerFuture<StreamPosition> {
        self.0.publish(topic, method, params)
    }
    fn snapshot(&self, topic: &str, since: Option<&StreamPosition>, max_replay: usize) -> BrokerFuture<Snapshot> {
        self.0.snapshot(topic, since, max_replay)
    }
    fn history(&self, topic: &str, since: Option<&StreamPosition>, limit: usize) -> BrokerFuture<HistoryPage> {
        self.0.history(topic, since, limit)
    }
    fn check_ready(&self) -> BrokerFuture<()> {
        self.0.check_ready()
    }
}

#[tokio::test]
async fn with_metrics_off_metrics_answer_404_and_health_still_answers() {
    let hub = Hub::start(Server::builder().metrics(Metrics::Off), methods()).await;
    let mut ws = hub.connect().await;
    call(&mut ws, 1, "add", json!([1, 2])).await;
    assert_eq!(http(hub.operations, "GET", "/metrics").await.0, 404);
    assert_eq!(http(hub.operations, "GET", "/healthz").await.0, 200);
    assert_eq!(hub.server.metrics_text(), None);
    assert!(hub.server.method_stats().is_empty());
}

/// What the authenticator accepted a connection with.
#[derive(Debug, Clone)]
struct Claims {
    user: String,
}

/// One call as the hook saw it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    connection: uuid::Uuid,
    user: Option<String>,
    direction: Direction,
    method: String,
    outcome: Outcome,
}

#[tokio::test]
async fn the_call_hook_sees_every_call_with_its_identity_and_outcome_in_both_directions() {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let builder = Server::builder()
        .authenticate(|req| match req.bearer_token() {
            Some(user) => Ok(Identity::typed(Claims { user: user.to_owned() })),
            None => Err(Rejection::Unauthorized("a bearer token is required".into())),
        })
        .on_call(move |event: &CallEvent| {
            let _ = seen_tx.send((
                Seen {
                    connection: event.peer.id(),
                    user: event.peer.identity::<Claims>().map(|c| c.user.clone()),
                    direction: event.direction,
                    method: event.method.to_owned(),
                    outcome: event.outcome,
                },
                event.duration,
            ));
        });
    let mut methods = methods();
    methods.register("ask", |(): (), cx: Context| async move {
        let answer: Value = cx.peer().call("client.confirm", ["delete?"]).await?;
        Ok::<_, ErrorObject>(answer)
    });
    let hub = Hub::start(builder, methods).await;
    let mut request = hub.url().into_client_request().unwrap();
    request.headers_mut().insert("authorization", "Bearer ada".parse().unwrap());
    let mut ws = connect(request).await.expect("admitted");

    call(&mut ws, 1, "add", json!([1, 2])).await;
    call(&mut ws, 2, "fail", json!([])).await;
    send_json(&mut ws, json!({"jsonrpc": "2.0", "method": "ask", "id": 3})).await;
    let asked = next_reply(&mut ws).await;
    assert_eq!(asked["method"], "client.confirm", "{asked}");
    send_json(&mut ws, json!({"jsonrpc": "2.0", "result": "yes", "id": asked["id"]})).await;
    assert_eq!(next_reply(&mut ws).await["result"], "yes");

    let connection = hub.server.connections()[0].id;
    let mut events = Vec::new();
    for _ in 0..4 {
        let (event, duration) = guard("a call event", seen.recv()).await.expect("the hook lives");
        assert!(duration < support::GUARD, "{duration:?}");
        events.push(event);
    }
    let seen = |direction, method: &str, outcome| Seen {
        connection,
        user: Some("ada".into()),
        direction,
        method: method.into(),
        outcome,
    };
    assert_eq!(
        events,
        [
            seen(Direction::Incoming, "add", Outcome::Ok),
            seen(Direction::Incoming, "fail", Outcome::Error(42)),
            seen(Direction::Outgoing, "client.confirm", Outcome::Ok),
            seen(Direction::Incoming, "ask", Outcome::Ok),
        ]
    );
    let m = hub.scrape().await;
    let outgoing = [("direction", "outgoing"), ("method", "client.confirm"), ("outcome", "ok")];
    assert_eq!(m.value("switchboard_calls_total", &outgoing), 1.0);
}

#[tokio::test]
async fn method_stats_give_counts_and_latency_quantiles_per_method() {
    let hub = Hub::start(Server::builder(), methods()).await;
    let mut ws = hub.connect().await;
    for id in 0..10 {
        call(&mut ws, id, "add", json!([id, id])).await;
    }
    call(&mut ws, 10, "fail", json!([])).await;
    let stats = hub.server.method_stats();
    let of = |method: &str| {
        stats
            .iter()
            .find(|s| s.direction == Direction::Incoming && s.method == method)
            .unwrap_or_else(|| panic!("stats of {method}: {stats:?}"))
    };
    assert_eq!((of("add").calls, of("add").errors), (10, 0));
    assert_eq!((of("fail").calls, of("fail").errors), (1, 1));
    let (p50, p99) = (of("add").p50.expect("observed"), of("add").p99.expect("observed"));
    assert!(p50 <= p99 && p99 <= Duration::from_secs(10), "{p50:?} {p99:?}");
    assert_eq!(of("other").p99, None);
}
