//! Calling: multiplexing, params, results, errors, notifications, batches,
//! timeouts and ids.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use switchboard_client::{Client, Error, Id};
use tokio::sync::{Mutex, mpsc};

use crate::support::{RawServer, within};

fn double(req: &Value) -> Value {
    json!(req["params"][0].as_i64().expect("an integer param") * 2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_from_many_tasks_share_one_socket_and_each_gets_its_own_reply() {
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    let server = RawServer::start(move |mut conn| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            // Hold 50 calls, then answer them in reverse order.
            let mut held = Vec::new();
            while held.len() < 50 {
                held.push(conn.request().await);
            }
            for req in held.iter().rev() {
                conn.reply(req, double(req)).await;
            }
            conn.serve(|req| Ok(double(req))).await;
        }
    })
    .await;
    let client = Client::connect(&server.url()).await.unwrap();

    let tasks: Vec<_> = (0..50_i64)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { (i, client.call::<i64>("double", [i]).await) })
        })
        .collect();
    for task in tasks {
        let (i, result) = within("a reply", task).await.unwrap();
        assert_eq!(result.unwrap(), i * 2, "call {i} got someone else's reply");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1, "one socket for every task");
    assert_eq!(client.pending_calls(), 0);
}

#[tokio::test]
async fn typed_calls_send_positional_named_or_no_params() {
    let server =
        RawServer::start(|conn| conn.serve(|req| Ok(req.get("params").cloned().unwrap_or(json!("absent"))))).await;
    let client = Client::connect(&server.url()).await.unwrap();

    let positional: Vec<i64> = client.call("echo", [1, 2]).await.unwrap();
    assert_eq!(positional, [1, 2]);
    let tuple: (i64, String) = client.call("echo", (7, "x")).await.unwrap();
    assert_eq!(tuple, (7, "x".to_owned()));

    #[derive(Serialize)]
    struct Named {
        a: u8,
        b: &'static str,
    }
    let named = client.call_raw("echo", Named { a: 1, b: "x" }).await.unwrap();
    assert_eq!(named, json!({"a": 1, "b": "x"}));

    let nothing: String = client.call("echo", ()).await.unwrap();
    assert_eq!(nothing, "absent", "() sends no params member");

    let err = client.call::<i64>("echo", 5).await.unwrap_err();
    assert!(matches!(err, Error::Encode(_)), "scalar params are refused before sending: {err}");
}

#[tokio::test]
async fn the_servers_error_object_comes_back_as_an_rpc_error() {
    let server = RawServer::start(|conn| {
        conn.serve(|_| Err(json!({"code": 42, "message": "division by zero", "data": {"dividend": 1}})))
    })
    .await;
    let client = Client::connect(&server.url()).await.unwrap();

    let err = client.call::<i64>("div", [1, 0]).await.unwrap_err();
    let Error::Rpc(error) = err else { panic!("expected the server's error, got {err:?}") };
    assert_eq!((error.code, error.message.as_ref()), (42, "division by zero"));
    assert_eq!(error.data, Some(json!({"dividend": 1})));
}

#[tokio::test]
async fn a_result_that_does_not_fit_the_requested_type_is_a_decode_error() {
    let server = RawServer::start(|conn| conn.serve(|_| Ok(json!("not a number")))).await;
    let client = Client::connect(&server.url()).await.unwrap();

    let err = client.call::<i64>("answer", ()).await.unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    // The raw form still reads it.
    assert_eq!(client.call_raw("answer", ()).await.unwrap(), json!("not a number"));
}

#[tokio::test]
async fn a_notification_goes_out_without_an_id() {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let server = RawServer::start(move |conn| {
        let seen_tx = seen_tx.clone();
        conn.serve(move |req| {
            let _ = seen_tx.send(req.clone());
            Ok(Value::Null)
        })
    })
    .await;
    let client = Client::connect(&server.url()).await.unwrap();

    client.notify("log", ["hello"]).await.unwrap();
    let frame = within("the notification", seen.recv()).await.unwrap();
    assert_eq!(frame, json!({"jsonrpc": "2.0", "method": "log", "params": ["hello"]}));
}

#[tokio::test]
async fn batch_results_come_back_in_the_order_calls_were_added() {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let server = RawServer::start(move |mut conn| {
        let seen_tx = seen_tx.clone();
        async move {
            let frame = conn.recv().await.unwrap();
            let entries = frame.as_array().expect("one frame holding the whole batch").clone();
            // Answer in reverse order: the spec lets a server answer in any order.
            let mut answers: Vec<Value> = entries
                .iter()
                .filter(|e| e.get("id").is_some())
                .map(|e| match e["method"].as_str() {
                    Some("fail") => json!({"jsonrpc": "2.0", "error": {"code": 7, "message": "no"}, "id": e["id"]}),
                    _ => json!({"jsonrpc": "2.0", "result": e["params"][0], "id": e["id"]}),
                })
                .collect();
            answers.reverse();
            conn.send(Value::Array(answers)).await;
            let _ = seen_tx.send(entries);
            conn.serve(|_| Ok(Value::Null)).await;
        }
    })
    .await;
    let client = Client::connect(&server.url()).await.unwrap();

    let results = client
        .batch()
        .call("echo", [1])
        .notify("log", ["between"])
        .call("fail", ())
        .call("echo", ["three"])
        .send()
        .await
        .unwrap();
    assert_eq!(results.len(), 3, "one result per call; the notification has none");
    assert_eq!(results.decode::<i64>(0).unwrap(), 1);
    assert!(matches!(results.decode::<i64>(1), Err(Error::Rpc(e)) if e.code == 7));
    assert_eq!(results.decode::<String>(2).unwrap(), "three");
    assert!(matches!(results.decode::<String>(0), Err(Error::Decode(_))), "each entry decodes on its own");

    let entries = within("the batch frame", seen.recv()).await.unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[1], json!({"jsonrpc": "2.0", "method": "log", "params": ["between"]}));
    assert_eq!(client.pending_calls(), 0);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_the_call_and_the_pending_table_empties() {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let (late_tx, late_rx) = mpsc::unbounded_channel::<()>();
    let late_rx = Arc::new(Mutex::new(late_rx));
    let server = RawServer::start(move |mut conn| {
        let (seen_tx, late_rx) = (seen_tx.clone(), Arc::clone(&late_rx));
        async move {
            let first = conn.request().await;
            let _ = seen_tx.send(first.clone());
            // Silent until the test says the call has timed out; then answer it late.
            late_rx.lock().await.recv().await;
            conn.reply(&first, json!(1)).await;
            conn.serve(|_| Ok(json!("pong"))).await;
        }
    })
    .await;
    let client = Client::builder().endpoint(server.url()).timeout(Duration::from_millis(50)).connect().await.unwrap();

    let err = within("the timeout", client.call::<i64>("silence", [1])).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(d) if d == Duration::from_millis(50)), "{err:?}");
    assert_eq!(client.pending_calls(), 0, "a timed-out call leaves the pending table at once");
    within("the server saw the call", seen.recv()).await.unwrap();

    late_tx.send(()).unwrap();
    // The late reply is written before this call's reply, so it has been handled when this returns.
    let pong: String = within("a later call", client.call("ping", ()).no_timeout()).await.unwrap();
    assert_eq!(pong, "pong");
    assert_eq!(client.unknown_replies(), 1, "the late reply is counted and dropped");
    assert_eq!(client.pending_calls(), 0);
}

#[tokio::test]
async fn a_per_call_timeout_overrides_the_default() {
    let (held_tx, mut held_seen) = mpsc::unbounded_channel();
    let server = RawServer::start(move |mut conn| {
        let held_tx = held_tx.clone();
        async move {
            let mut held = None;
            while let Some(frame) = conn.recv().await {
                match frame["method"].as_str() {
                    Some("held") => {
                        held = Some(frame);
                        let _ = held_tx.send(());
                    }
                    Some("release") => {
                        let req = held.take().expect("release after held");
                        conn.reply(&req, json!("released")).await;
                    }
                    _ => {} // "never": no answer
                }
            }
        }
    })
    .await;
    let client = Client::builder().endpoint(server.url()).timeout(Duration::from_millis(50)).connect().await.unwrap();

    // Without a timeout, a call outlives the 50 ms default...
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move { client.call::<String>("held", ()).no_timeout().await })
    };
    within("the held call reached the server", held_seen.recv()).await.unwrap();
    let err = client.call::<String>("never", ()).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(d) if d == Duration::from_millis(50)), "{err:?}");
    assert_eq!(client.pending_calls(), 1, "the held call is still waiting after the default timeout passed");

    // ...a longer default is overridden by a shorter per-call one...
    let patient = Client::builder().endpoint(server.url()).connect().await.unwrap();
    let err = patient.call::<String>("never", ()).timeout(Duration::from_millis(30)).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(d) if d == Duration::from_millis(30)), "{err:?}");

    // ...and the call without a timeout gets its answer whenever it comes.
    client.notify("release", ()).await.unwrap();
    assert_eq!(within("the held call", waiting).await.unwrap().unwrap(), "released");
}

#[tokio::test]
async fn a_custom_id_generator_makes_the_ids_of_calls_and_batches() {
    let (ids_tx, mut ids) = mpsc::unbounded_channel();
    let server = RawServer::start(move |conn| {
        let ids_tx = ids_tx.clone();
        conn.serve(move |req| {
            let _ = ids_tx.send(req["id"].clone());
            Ok(req["id"].clone())
        })
    })
    .await;
    let counter = Arc::new(AtomicU64::new(0));
    let next = Arc::clone(&counter);
    let client = Client::builder()
        .endpoint(server.url())
        .id_generator(move || Id::from(format!("req-{}", next.fetch_add(1, Ordering::SeqCst) + 1)))
        .connect()
        .await
        .unwrap();

    let first: String = client.call("whoami", ()).await.unwrap();
    let second: String = client.call("whoami", ()).await.unwrap();
    let batch = client.batch().call("whoami", ()).send().await.unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("req-1", "req-2"));
    assert_eq!(batch.decode::<String>(0).unwrap(), "req-3");
    for expected in ["req-1", "req-2", "req-3"] {
        assert_eq!(within("an id", ids.recv()).await.unwrap(), json!(expected));
    }
}

#[tokio::test]
async fn calls_are_futures_for_join_all_select_and_futures_unordered() {
    use futures_util::StreamExt;
    use futures_util::stream::FuturesUnordered;

    // `never` is held unanswered; every other call is doubled, batches too.
    let server = RawServer::start(|mut conn| async move {
        let mut held = Vec::new();
        while let Some(frame) = conn.recv().await {
            if let Value::Array(entries) = &frame {
                let answers: Vec<Value> = entries
                    .iter()
                    .filter(|e| e.get("id").is_some())
                    .map(|e| json!({"jsonrpc": "2.0", "result": double(e), "id": e["id"]}))
                    .collect();
                conn.send(Value::Array(answers)).await;
            } else if frame["method"] == "never" {
                held.push(frame);
            } else if frame.get("id").is_some() {
                conn.reply(&frame, double(&frame)).await;
            }
        }
    })
    .await;
    let client = Client::connect(&server.url()).await.unwrap();

    let calls = (0..10_i64).map(|i| client.call::<i64>("double", [i]));
    let doubled: Vec<i64> =
        within("join_all", futures_util::future::join_all(calls)).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(doubled, (0..10).map(|i| i * 2).collect::<Vec<_>>());

    let answered = within("select!", async {
        tokio::select! {
            never = client.call::<i64>("never", ()).no_timeout() => panic!("never answered: {never:?}"),
            doubled = client.call::<i64>("double", [21]) => doubled,
        }
    })
    .await;
    assert_eq!(answered.unwrap(), 42);

    // A call is `Unpin`: `&mut call` can be polled in a loop with a timer beside it.
    let mut pending = client.call::<i64>("double", [5]);
    let five = within("select! over &mut call", async {
        loop {
            tokio::select! {
                done = &mut pending => break done,
                () = tokio::task::yield_now() => {}
            }
        }
    })
    .await;
    assert_eq!(five.unwrap(), 10);

    let mut unordered: FuturesUnordered<_> = (1..=3_i64).map(|i| client.call::<i64>("double", [i])).collect();
    let mut sum = 0;
    while let Some(doubled) = within("FuturesUnordered", unordered.next()).await {
        sum += doubled.unwrap();
    }
    assert_eq!(sum, 12);

    // Spawned calls must be Send and 'static: a cloned client and owned strings.
    let spawned = {
        let client = client.clone();
        tokio::spawn(async move { client.call::<i64>("double", [50]).await })
    };
    assert_eq!(within("a spawned call", spawned).await.unwrap().unwrap(), 100);
    // The other awaitables are `Send` futures too: notify, a batch's send, subscribe.
    let others = {
        let client = client.clone();
        tokio::spawn(async move {
            let (note, batch) = tokio::join!(client.notify("note", [1]), client.batch().call("double", [4]).send());
            note.unwrap();
            batch.unwrap().decode::<i64>(0).unwrap()
        })
    };
    assert_eq!(within("spawned notify and batch", others).await.unwrap(), 8);
    // The abandoned `never` call left the pending table when select! dropped it.
    assert_eq!(client.pending_calls(), 0);
}
