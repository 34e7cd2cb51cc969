//! Two peer engines over a real loopback WebSocket: both call each other at
//! once, exchange notifications, time out, and see every pending call fail
//! when the socket drops.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{guard, peer_pair, raw_client};
use futures_util::future::join_all;
use serde_json::Value;
use switchboard_shared::{CloseReason, Context, Error, ErrorObject, Methods, PeerConfig, StrayMessage};
use tokio::sync::{Semaphore, mpsc};

fn arithmetic() -> Methods {
    let mut m = Methods::new();
    // Yields once so that it really waits and is spawned, not answered in place.
    m.register("double", |(n,): (i64,), _cx: Context| async move {
        tokio::task::yield_now().await;
        Ok::<_, ErrorObject>(n * 2)
    });
    m.register_sync("triple", |(n,): (i64,), _: Context| Ok::<_, ErrorObject>(n * 3));
    m.register("never", |(): (), _cx: Context| async move {
        std::future::pending::<()>().await;
        Ok::<_, ErrorObject>(())
    });
    m.register_sync("boom", |(): (), _: Context| -> Result<(), ErrorObject> { panic!("handler bug") });
    m.register("boom_later", |(): (), _cx: Context| async move {
        tokio::task::yield_now().await;
        if true {
            panic!("async handler bug");
        }
        Ok::<_, ErrorObject>(())
    });
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_calls_each_way_at_once_all_match() {
    let (a, b) = peer_pair(arithmetic(), PeerConfig::default(), arithmetic(), PeerConfig::default()).await;
    let a_calls = (0..1000i64).map(|n| {
        let a = a.clone();
        async move { (n, a.call::<i64>(if n % 2 == 0 { "double" } else { "triple" }, [n]).await) }
    });
    let b_calls = (0..1000i64).map(|n| {
        let b = b.clone();
        async move { (n, b.call::<i64>("double", [n]).await) }
    });
    let (from_a, from_b) = guard(futures_util::future::join(join_all(a_calls), join_all(b_calls))).await;
    for (n, result) in from_a {
        assert_eq!(result.unwrap(), if n % 2 == 0 { n * 2 } else { n * 3 });
    }
    for (n, result) in from_b {
        assert_eq!(result.unwrap(), n * 2);
    }
    assert_eq!((a.pending_calls(), b.pending_calls()), (0, 0));
}

#[tokio::test]
async fn notifications_reach_their_handlers_both_ways() {
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Value)>();
    let listener = |side: &'static str| {
        let tx = tx.clone();
        let mut m = Methods::new();
        m.register_sync("note", move |v: Value, _: Context| {
            tx.send((side.to_owned(), v)).unwrap();
            Ok::<_, ErrorObject>(())
        });
        m
    };
    let (a, b) = peer_pair(listener("a"), PeerConfig::default(), listener("b"), PeerConfig::default()).await;
    a.notify("unknown_method_is_ignored", [1]).await.unwrap();
    a.notify("note", [1]).await.unwrap();
    b.notify("note", serde_json::json!({"x": 2})).await.unwrap();
    let mut got = [guard(rx.recv()).await.unwrap(), guard(rx.recv()).await.unwrap()];
    got.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(got[0], ("a".to_owned(), serde_json::json!({"x": 2})));
    assert_eq!(got[1], ("b".to_owned(), serde_json::json!([1])));
}

#[tokio::test]
async fn a_call_times_out_and_leaves_no_trace() {
    let (a, _b) = peer_pair(Methods::new(), PeerConfig::default(), arithmetic(), PeerConfig::default()).await;
    let err = a.call_raw("never", (), Some(Duration::from_millis(50))).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(d) if d == Duration::from_millis(50)), "{err}");
    assert_eq!(a.pending_calls(), 0);
    // The connection is still fine.
    assert_eq!(a.call::<i64>("triple", [2]).await.unwrap(), 6);
}

#[tokio::test]
async fn every_pending_call_fails_with_disconnected_when_the_socket_drops() {
    let (a, b) = peer_pair(Methods::new(), PeerConfig::default(), arithmetic(), PeerConfig::default()).await;
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(async move { a.call_raw("never", (), None).await })
        })
        .collect();
    // Wait until all twenty are really pending on the other side.
    guard(async {
        while b.in_flight() < 20 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    b.close(1000, "bye");
    for call in calls {
        assert!(matches!(guard(call).await.unwrap(), Err(Error::Disconnected)));
    }
    assert!(matches!(guard(a.closed()).await, CloseReason::Remote { code: Some(1000), .. }));
    // A call after the end fails at once too.
    assert!(matches!(a.call_raw("triple", [1], None).await, Err(Error::Disconnected)));
}

#[tokio::test]
async fn a_panicking_handler_answers_internal_error_and_the_connection_lives_on() {
    let (a, _b) = peer_pair(Methods::new(), PeerConfig::default(), arithmetic(), PeerConfig::default()).await;
    for method in ["boom", "boom_later"] {
        let err = guard(a.call_raw(method, (), None)).await.unwrap_err();
        assert_eq!(err.rpc().map(|e| e.code), Some(-32603), "{method}: {err}");
    }
    assert_eq!(guard(a.call::<i64>("double", [21])).await.unwrap(), 42);
}

#[tokio::test]
async fn at_the_in_flight_limit_new_requests_wait_parked_until_a_slot_frees() {
    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let mut m = Methods::new();
    let (g, s) = (gate.clone(), started.clone());
    m.register("gated", move |(): (), _cx: Context| {
        let (g, s) = (g.clone(), s.clone());
        async move {
            s.fetch_add(1, Ordering::SeqCst);
            g.acquire().await.unwrap().forget();
            Ok::<_, ErrorObject>("done")
        }
    });
    m.register_sync("ping", |(): (), _: Context| Ok::<_, ErrorObject>("pong"));
    let config = PeerConfig { max_in_flight: 2, ..PeerConfig::default() };
    let (a, b) = peer_pair(Methods::new(), PeerConfig::default(), m, config).await;
    let gated: Vec<_> = (0..3)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(async move { a.call::<String>("gated", ()).await })
        })
        .collect();
    guard(async {
        while started.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    // The third call and this ping wait, parked, behind the limit.
    let ping = tokio::spawn({
        let a = a.clone();
        async move { a.call::<String>("ping", ()).await }
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(150), async {
            while !ping.is_finished() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .is_err(),
        "the ping ran while two calls were in flight"
    );
    assert_eq!(b.in_flight(), 2);
    assert_eq!(started.load(Ordering::SeqCst), 2);
    gate.add_permits(3);
    for call in gated {
        assert_eq!(guard(call).await.unwrap().unwrap(), "done");
    }
    assert_eq!(guard(ping).await.unwrap().unwrap(), "pong");
}

#[tokio::test]
async fn replies_with_unknown_ids_are_counted_and_dropped() {
    let (peer, mut raw) = raw_client(Methods::new(), PeerConfig::default()).await;
    raw.send(r#"{"jsonrpc":"2.0","result":1,"id":12345}"#).await;
    raw.send(r#"{"jsonrpc":"2.0","result":1,"error":{"code":1,"message":"x"},"id":777}"#).await;
    let call = tokio::spawn({
        let peer = peer.clone();
        async move { peer.call::<i64>("ask", ()).await }
    });
    let request: Value = serde_json::from_str(&raw.recv().await.unwrap()).unwrap();
    assert_eq!(request["method"], "ask");
    raw.send(&format!(r#"{{"jsonrpc":"2.0","result":5,"id":{}}}"#, request["id"])).await;
    assert_eq!(guard(call).await.unwrap().unwrap(), 5);
    assert!(peer.unknown_replies() >= 1);
}

#[tokio::test]
async fn a_reply_with_both_result_and_error_is_an_invalid_response() {
    let (peer, mut raw) = raw_client(Methods::new(), PeerConfig::default()).await;
    let call = tokio::spawn({
        let peer = peer.clone();
        async move { peer.call::<i64>("ask", ()).await }
    });
    let request: Value = serde_json::from_str(&raw.recv().await.unwrap()).unwrap();
    raw.send(&format!(r#"{{"jsonrpc":"2.0","result":1,"error":{{"code":1,"message":"x"}},"id":{}}}"#, request["id"]))
        .await;
    assert!(matches!(guard(call).await.unwrap(), Err(Error::InvalidResponse(_))));
}

#[tokio::test]
async fn a_binary_frame_of_json_is_answered_like_text_and_other_binary_gets_parse_error() {
    use futures_util::SinkExt;
    use switchboard_shared::tokio_tungstenite::tungstenite::Message;
    let (_peer, mut raw) = raw_client(arithmetic(), PeerConfig::default()).await;
    raw.ws.send(Message::binary(br#"{"jsonrpc":"2.0","method":"triple","params":[3],"id":1}"#.to_vec())).await.unwrap();
    assert_eq!(raw.recv().await.unwrap(), r#"{"jsonrpc":"2.0","result":9,"id":1}"#);
    raw.ws.send(Message::binary(vec![0xff, 0xfe, 0x00])).await.unwrap();
    let reply: Value = serde_json::from_str(&raw.recv().await.unwrap()).unwrap();
    assert_eq!((reply["error"]["code"].as_i64(), reply["id"].is_null()), (Some(-32700), true));
}

#[tokio::test]
async fn a_batch_mixing_ready_and_waiting_calls_answers_every_call_once() {
    let (_peer, mut raw) = raw_client(arithmetic(), PeerConfig::default()).await;
    let reply = raw
        .exchange(
            r#"[{"jsonrpc":"2.0","method":"double","params":[1],"id":1},
                {"jsonrpc":"2.0","method":"triple","params":[1],"id":2},
                {"jsonrpc":"2.0","method":"triple","params":[5]},
                {"jsonrpc":"2.0","method":"double","params":[2],"id":3}]"#,
        )
        .await;
    let mut got: Vec<(i64, i64)> =
        reply.as_array().unwrap().iter().map(|r| (r["id"].as_i64().unwrap(), r["result"].as_i64().unwrap())).collect();
    got.sort();
    assert_eq!(got, vec![(1, 2), (2, 3), (3, 4)]);
}

/// A config whose stray messages land in the returned channel.
fn reporting(malformed: switchboard_shared::MalformedFrames) -> (PeerConfig, mpsc::UnboundedReceiver<StrayMessage>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let config = PeerConfig {
        malformed_frames: malformed,
        on_stray: Some(Arc::new(move |stray| drop(tx.send(stray)))),
        ..PeerConfig::default()
    };
    (config, rx)
}

const NULL_ID_ERROR: &str =
    r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request","data":"batch too long"},"id":null}"#;

#[tokio::test]
async fn an_error_without_id_fails_the_only_outstanding_call_at_once() {
    let (config, mut strays) = reporting(switchboard_shared::MalformedFrames::Report);
    let (peer, mut raw) = raw_client(Methods::new(), config).await;
    let call = tokio::spawn({
        let peer = peer.clone();
        async move { peer.call::<i64>("ask", ()).no_timeout().await }
    });
    raw.recv().await.expect("the request");
    raw.send(NULL_ID_ERROR).await;
    let err = guard(call).await.unwrap().unwrap_err();
    assert_eq!(err.rpc().map(|e| (e.code, e.data.clone())), Some((-32600, Some(Value::from("batch too long")))));
    let stray = guard(strays.recv()).await.unwrap();
    assert!(matches!(stray, StrayMessage::ErrorWithoutId { failed_calls: 1, .. }), "{stray:?}");
    assert_eq!(peer.errors_without_id(), 1);
}

#[tokio::test]
async fn an_error_without_id_fails_a_lone_batch_as_a_whole() {
    let (peer, mut raw) = raw_client(Methods::new(), PeerConfig::default()).await;
    let batch = tokio::spawn({
        let peer = peer.clone();
        async move {
            let batch = (0..3).fold(switchboard_shared::BatchBuilder::new(), |b, n| b.call(&peer, "ask", [n]));
            peer.batch(batch, None).await
        }
    });
    raw.recv().await.expect("the batch");
    raw.send(NULL_ID_ERROR).await;
    let results = guard(batch).await.unwrap().unwrap();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| matches!(r, Err(Error::Rpc(e)) if e.code == -32600)), "{results:?}");
}

#[tokio::test]
async fn an_error_without_id_is_ambiguous_with_two_calls_outstanding() {
    let (config, mut strays) = reporting(switchboard_shared::MalformedFrames::Report);
    let (peer, mut raw) = raw_client(Methods::new(), config).await;
    let calls: Vec<_> = (0..2)
        .map(|n| {
            let peer = peer.clone();
            tokio::spawn(async move { peer.call::<i64>("ask", [n]).no_timeout().await })
        })
        .collect();
    let ids: Vec<Value> = [raw.recv().await.unwrap(), raw.recv().await.unwrap()]
        .iter()
        .map(|frame| serde_json::from_str::<Value>(frame).unwrap()["id"].clone())
        .collect();
    raw.send(NULL_ID_ERROR).await;
    assert!(matches!(guard(strays.recv()).await.unwrap(), StrayMessage::ErrorWithoutId { failed_calls: 0, .. }));
    for id in &ids {
        raw.send(&format!(r#"{{"jsonrpc":"2.0","result":7,"id":{id}}}"#)).await;
    }
    for call in calls {
        assert_eq!(guard(call).await.unwrap().unwrap(), 7);
    }
}

#[tokio::test]
async fn a_client_reports_frames_that_are_not_json_rpc_and_never_answers_them() {
    let (config, mut strays) = reporting(switchboard_shared::MalformedFrames::Report);
    let (peer, mut raw) = raw_client(arithmetic(), config).await;
    raw.send("not json").await;
    raw.send("[]").await;
    // The next frame answers this request: nothing answered the two above.
    let reply = raw.exchange(r#"{"jsonrpc":"2.0","method":"triple","params":[2],"id":1}"#).await;
    assert_eq!(reply, serde_json::json!({"jsonrpc": "2.0", "result": 6, "id": 1}));
    for code in [-32700, -32600] {
        let stray = guard(strays.recv()).await.unwrap();
        assert!(matches!(&stray, StrayMessage::Malformed { error } if error.code == code), "{stray:?}");
    }
    assert_eq!(peer.malformed_frames(), 2);
}

#[tokio::test]
async fn a_reply_id_of_the_same_numeric_value_matches_the_call() {
    let (peer, mut raw) = raw_client(Methods::new(), PeerConfig::default()).await;
    let call = tokio::spawn({
        let peer = peer.clone();
        async move { peer.call::<i64>("ask", ()).await }
    });
    let request: Value = serde_json::from_str(&raw.recv().await.unwrap()).unwrap();
    let id = request["id"].as_i64().unwrap();
    raw.send(&format!(r#"{{"jsonrpc":"2.0","result":5,"id":{id}.0}}"#)).await;
    assert_eq!(guard(call).await.unwrap().unwrap(), 5);
}

#[tokio::test]
async fn state_added_once_reaches_sync_and_async_handlers_typed() {
    #[derive(Clone)]
    struct Prefix(&'static str);
    async fn greet((name,): (String,), cx: Context) -> switchboard_shared::RpcResult<String> {
        Ok(format!("{} {name}", cx.state::<Prefix>()?.0))
    }
    fn prefix((): (), cx: Context) -> switchboard_shared::RpcResult<&'static str> {
        Ok(cx.state::<Prefix>()?.0)
    }
    fn missing((): (), cx: Context) -> switchboard_shared::RpcResult<u8> {
        Ok(*cx.state::<u8>()?)
    }
    let mut methods = Methods::new().with_state(Prefix("hello"));
    methods.register("greet", greet);
    methods.register_sync("prefix", prefix);
    methods.register_sync("missing", missing);
    let (a, _b) = peer_pair(Methods::new(), PeerConfig::default(), methods, PeerConfig::default()).await;
    assert_eq!(guard(a.call::<String>("greet", ["ada"])).await.unwrap(), "hello ada");
    assert_eq!(guard(a.call::<String>("prefix", ())).await.unwrap(), "hello");
    let err = guard(a.call::<u8>("missing", ())).await.unwrap_err();
    let data = err.rpc().and_then(|e| e.data.clone()).unwrap();
    assert!(data.as_str().unwrap().contains("no state of type u8"), "{data}");
}
