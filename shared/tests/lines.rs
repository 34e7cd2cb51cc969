//! The peer engine over newline-delimited JSON on real TCP sockets: the same
//! behaviour as over a WebSocket (calls both ways, flow control, drain,
//! cancellation, disconnects), plus what only lines have (over-long lines,
//! blank lines, `\r\n`, no pings).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::guard;
use serde_json::{Value, json};
use switchboard_shared::transport::Lines;
use switchboard_shared::{
    CloseReason, ConnectionInfo, Context, Error, ErrorObject, Heartbeat, Methods, PeerConfig, PeerHandle, code, peer,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

const MAX_LINE: usize = 4096;

/// Two engines joined by one TCP connection carrying lines.
async fn line_pair(a: Methods, a_config: PeerConfig, b: Methods, b_config: PeerConfig) -> (PeerHandle, PeerHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dial = TcpStream::connect(addr).await.unwrap();
    let (accepted, _) = listener.accept().await.unwrap();
    let a = peer::spawn(Lines::new(accepted, MAX_LINE), Arc::new(a), ConnectionInfo::new(), a_config);
    let b = peer::spawn(Lines::new(dial, MAX_LINE), Arc::new(b), ConnectionInfo::new(), b_config);
    (a, b)
}

/// An engine serving `methods` over lines, and a plain TCP client talking to it.
async fn raw_client(methods: Methods, config: PeerConfig) -> (PeerHandle, RawLines) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dial = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let (accepted, _) = listener.accept().await.unwrap();
    let peer = peer::spawn(Lines::new(accepted, MAX_LINE), Arc::new(methods), ConnectionInfo::new(), config);
    let (read, write) = dial.into_split();
    (peer, RawLines { read: BufReader::new(read), write })
}

struct RawLines {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl RawLines {
    async fn send_raw(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.unwrap();
    }

    async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes()).await;
    }

    /// The next line as it came (without its newline); `None` at the end.
    async fn recv_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match guard(self.read.read_line(&mut line)).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.strip_suffix('\n').expect("every line ends with a newline").to_owned()),
        }
    }

    async fn recv(&mut self) -> Value {
        serde_json::from_str(&self.recv_line().await.expect("a line")).expect("a line is JSON")
    }

    async fn exchange(&mut self, line: &str) -> Value {
        self.send(line).await;
        self.recv().await
    }
}

fn server_methods(gate: Arc<Semaphore>) -> Methods {
    let mut m = Methods::new();
    m.register_sync("ping", |(): (), _: Context| Ok::<_, ErrorObject>("pong"));
    m.register("gated", move |n: Value, _cx: Context| {
        let gate = gate.clone();
        async move {
            gate.acquire().await.expect("the gate stays open").forget();
            Ok::<_, ErrorObject>(n)
        }
    });
    m.register("forever", |(): (), _cx: Context| async move {
        std::future::pending::<()>().await;
        Ok::<_, ErrorObject>(())
    });
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_both_ways_over_lines_and_handlers_call_back() {
    let mut server = Methods::new();
    server.register("whoami", |(): (), cx: Context| async move {
        let name: String = cx.peer().call("name", ()).await?;
        Ok::<_, ErrorObject>(format!("you are {name}"))
    });
    let mut client = Methods::new();
    client.register("name", |(): (), _cx: Context| async move {
        tokio::task::yield_now().await;
        Ok::<_, ErrorObject>("ada")
    });
    let config = PeerConfig { max_in_flight: 2, ..PeerConfig::default() };
    let (server, client) = line_pair(server, config, client, PeerConfig::default()).await;
    let calls = (0..20).map(|_| {
        let client = client.clone();
        async move { client.call::<String>("whoami", ()).await }
    });
    for answer in guard(futures_util::future::join_all(calls)).await {
        assert_eq!(answer.expect("every call is answered"), "you are ada");
    }
    let name: String = guard(server.call("name", ())).await.expect("the server calls the client too");
    assert_eq!(name, "ada");
}

#[tokio::test]
async fn each_line_is_one_message_crlf_is_accepted_and_blank_lines_are_skipped() {
    let (_peer, mut raw) = raw_client(server_methods(Arc::new(Semaphore::new(0))), PeerConfig::default()).await;
    raw.send_raw(b"\n  \r\n{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1}\r\n\n").await;
    assert_eq!(raw.recv_line().await.unwrap(), r#"{"jsonrpc":"2.0","result":"pong","id":1}"#);
    // Two messages in one write, a batch on one line.
    raw.send_raw(
        b"{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":2}\n[{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":3}]\n",
    )
    .await;
    assert_eq!(raw.recv().await, json!({"jsonrpc": "2.0", "result": "pong", "id": 2}));
    assert_eq!(raw.recv().await, json!([{"jsonrpc": "2.0", "result": "pong", "id": 3}]));
}

#[tokio::test]
async fn a_malformed_line_is_answered_with_a_parse_error_and_the_connection_goes_on() {
    let (peer, mut raw) = raw_client(server_methods(Arc::new(Semaphore::new(0))), PeerConfig::default()).await;
    let reply = raw.exchange("this is not json").await;
    assert_eq!(reply["id"], Value::Null, "{reply}");
    assert_eq!(reply["error"]["code"], code::PARSE_ERROR, "{reply}");
    raw.send_raw(b"\xff\xfe{}\n").await;
    let reply = raw.recv().await;
    assert_eq!(reply["error"]["code"], code::PARSE_ERROR, "{reply}");
    assert_eq!(raw.exchange(r#"{"jsonrpc":"2.0","method":"ping","id":7}"#).await["result"], "pong");
    assert_eq!(peer.malformed_frames(), 2);
}

#[tokio::test]
async fn a_line_over_the_limit_is_answered_invalid_request_and_closes_the_connection() {
    let (peer, mut raw) = raw_client(server_methods(Arc::new(Semaphore::new(0))), PeerConfig::default()).await;
    // No newline needed: the limit is enforced before the line ends.
    let long = format!(r#"{{"jsonrpc":"2.0","method":"ping","params":["{}"],"id":1}}"#, "x".repeat(MAX_LINE));
    raw.send_raw(long.as_bytes()).await;
    let reply = raw.recv().await;
    assert_eq!(reply["id"], Value::Null, "{reply}");
    assert_eq!(reply["error"]["code"], code::INVALID_REQUEST, "{reply}");
    assert!(reply["error"]["data"].as_str().unwrap().contains("max_message_size"), "{reply}");
    assert_eq!(raw.recv_line().await, None, "then the connection ends");
    assert_eq!(guard(peer.closed()).await, CloseReason::MessageTooBig);
}

#[tokio::test]
async fn beyond_max_in_flight_requests_are_parked_then_refused_busy() {
    let gate = Arc::new(Semaphore::new(0));
    let config = PeerConfig { max_in_flight: 1, max_parked_bytes: 1, ..PeerConfig::default() };
    let (server, mut raw) = raw_client(server_methods(gate.clone()), config).await;
    for id in 1..=3 {
        raw.send(&format!(r#"{{"jsonrpc":"2.0","method":"gated","params":[{id}],"id":{id}}}"#)).await;
    }
    // 1 runs, 2 is parked, 3 is refused before anything finishes.
    let refused = raw.recv().await;
    assert_eq!((refused["id"].clone(), refused["error"]["code"].clone()), (json!(3), json!(code::SERVER_BUSY)));
    assert_eq!(server.busy_refusals(), 1);
    gate.add_permits(2);
    for id in [1, 2] {
        assert_eq!(raw.recv().await, json!({"jsonrpc": "2.0", "result": [id], "id": id}));
    }
}

#[tokio::test]
async fn a_running_request_is_cancelled_with_cancel_request() {
    let (peer, mut raw) = raw_client(server_methods(Arc::new(Semaphore::new(0))), PeerConfig::default()).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"forever","id":"f"}"#).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"f"}}"#).await;
    let reply = raw.recv().await;
    assert_eq!((reply["id"].clone(), reply["error"]["code"].clone()), (json!("f"), json!(code::REQUEST_CANCELLED)));
    assert_eq!(peer.cancelled_requests(), 1);
}

#[tokio::test]
async fn pending_calls_fail_at_once_when_the_other_side_disconnects() {
    let (peer, raw) = raw_client(Methods::new(), PeerConfig { call_timeout: None, ..PeerConfig::default() }).await;
    let call = tokio::spawn({
        let peer = peer.clone();
        async move { peer.call::<Value>("never.answered", ()).await }
    });
    let mut raw = raw;
    let request = raw.recv().await;
    assert_eq!(request["method"], "never.answered");
    drop(raw);
    assert!(matches!(guard(call).await.unwrap(), Err(Error::Disconnected)));
    assert!(matches!(guard(peer.closed()).await, CloseReason::Remote { .. }));
}

#[tokio::test]
async fn a_peer_that_ends_its_input_still_gets_every_answer_then_the_end() {
    let gate = Arc::new(Semaphore::new(0));
    let (peer, mut raw) = raw_client(server_methods(gate.clone()), PeerConfig::default()).await;
    let ours = tokio::spawn({
        let peer = peer.clone();
        async move { peer.call::<Value>("never.answered", ()).no_timeout().await }
    });
    assert_eq!(raw.recv().await["method"], "never.answered");
    // As `echo '..' | nc -N` does: the requests, then the write half shut down.
    raw.send(r#"{"jsonrpc":"2.0","method":"gated","params":["slow"],"id":1}"#).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"ping","id":2}"#).await;
    raw.write.shutdown().await.unwrap();
    assert_eq!(raw.recv().await, json!({"jsonrpc": "2.0", "result": "pong", "id": 2}));
    // Nothing can answer our call any more: it fails at once.
    assert!(matches!(guard(ours).await.unwrap(), Err(Error::Disconnected)));
    gate.add_permits(1);
    assert_eq!(raw.recv().await, json!({"jsonrpc": "2.0", "result": ["slow"], "id": 1}));
    assert_eq!(raw.recv_line().await, None, "then the connection ends");
    assert!(matches!(guard(peer.closed()).await, CloseReason::Remote { .. }));
}

#[tokio::test]
async fn a_drain_lets_running_requests_finish_refuses_new_ones_then_closes() {
    let gate = Arc::new(Semaphore::new(0));
    let (peer, mut raw) = raw_client(server_methods(gate.clone()), PeerConfig::default()).await;
    raw.send(r#"{"jsonrpc":"2.0","method":"gated","params":["slow"],"id":1}"#).await;
    // The engine has read it once the next request is answered.
    assert_eq!(raw.exchange(r#"{"jsonrpc":"2.0","method":"ping","id":2}"#).await["result"], "pong");
    peer.shutdown(tokio::time::Instant::now() + Duration::from_secs(30));
    let refused = raw.exchange(r#"{"jsonrpc":"2.0","method":"ping","id":3}"#).await;
    assert_eq!(refused["error"]["code"], code::SHUTTING_DOWN, "{refused}");
    gate.add_permits(1);
    assert_eq!(raw.recv().await, json!({"jsonrpc": "2.0", "result": ["slow"], "id": 1}));
    assert_eq!(raw.recv_line().await, None, "the write half is shut down");
    drop(raw);
    assert!(matches!(guard(peer.closed()).await, CloseReason::Local { .. }));
}

#[tokio::test]
async fn a_peer_that_does_not_read_is_cut_off_as_a_slow_consumer() {
    let config = PeerConfig { max_queue_bytes: 64 << 10, ..PeerConfig::default() };
    let (peer, _unread) = raw_client(Methods::new(), config).await;
    let frame = format!(r#"{{"jsonrpc":"2.0","method":"tick","params":["{}"]}}"#, "x".repeat(1024));
    // Far more than the socket buffers hold: the queue reaches its bound.
    let mut pushed = 0;
    while pushed < 200_000 && peer.try_send_text(frame.clone().into()).is_ok() {
        pushed += 1;
        tokio::task::yield_now().await;
    }
    assert_eq!(guard(peer.closed()).await, CloseReason::SlowConsumer, "after {pushed} frames");
}

#[tokio::test]
async fn lines_have_no_pings_so_the_heartbeat_never_closes_a_quiet_peer() {
    let heartbeat = Heartbeat { interval: Duration::from_millis(10), timeout: Duration::from_millis(30) };
    let config = PeerConfig { heartbeat: Some(heartbeat), ..PeerConfig::default() };
    let (peer, mut raw) = raw_client(server_methods(Arc::new(Semaphore::new(0))), config).await;
    // Ten heartbeat timeouts of silence: over a WebSocket this is an idle timeout.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!peer.is_closed(), "closed: {:?}", peer.close_reason());
    assert_eq!(raw.exchange(r#"{"jsonrpc":"2.0","method":"ping","id":1}"#).await["result"], "pong");
}

#[tokio::test]
async fn answers_sent_with_send_text_stay_one_line_even_with_newlines_inside() {
    let (peer, mut raw) = raw_client(Methods::new(), PeerConfig::default()).await;
    guard(peer.send_text("{\"jsonrpc\":\"2.0\",\n\"method\":\"tick\"}".into())).await.unwrap();
    assert_eq!(raw.recv_line().await.unwrap(), r#"{"jsonrpc":"2.0", "method":"tick"}"#);
}

#[tokio::test]
async fn a_notification_flood_reaches_a_handler_in_order() {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let mut methods = Methods::new();
    methods.register_sync("tick", move |(n,): (u64,), _: Context| {
        seen_tx.send(n).unwrap();
        Ok::<_, ErrorObject>(())
    });
    let (_peer, mut raw) = raw_client(methods, PeerConfig::default()).await;
    let mut burst = String::new();
    for n in 0..500 {
        burst.push_str(&format!("{{\"jsonrpc\":\"2.0\",\"method\":\"tick\",\"params\":[{n}]}}\n"));
    }
    raw.send_raw(burst.as_bytes()).await;
    for n in 0..500 {
        assert_eq!(guard(seen.recv()).await, Some(n));
    }
}
