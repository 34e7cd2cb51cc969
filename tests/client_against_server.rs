//! Switchboard's client against Switchboard's server, both real, on
//! loopback: concurrency over one socket, timeouts, calls from the server to
//! methods on the client, notifications, topics, batches, auth, relays.
//!
//! Tests wait on events (replies, stream items), never on sleeps; timeouts
//! appear only as the behaviour under test or as hang guards.

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::client::{AttemptError, Client, ConnectError, Error, relay};
use switchboard::server::{Rejection, Server, ServerHandle};
use switchboard::shared::{Context, ErrorObject, Methods};

/// Hang guard: far longer than anything here should take on a busy machine.
const GUARD: Duration = Duration::from_secs(60);

async fn within<F: IntoFuture>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(GUARD, future.into_future()).await {
        Ok(out) => out,
        Err(_) => panic!("hung for {GUARD:?}: {what}"),
    }
}

/// The methods every server here offers.
fn methods() -> Methods {
    let mut methods = Methods::new();
    methods.register_sync("echo", |params: Value, _cx: Context| Ok::<_, ErrorObject>(params));
    methods.register("echo_later", |params: Value, _cx: Context| async move {
        // Finishes on a later poll, so answers interleave with other calls'.
        tokio::task::yield_now().await;
        Ok::<_, ErrorObject>(params)
    });
    methods.register("sleep", |(ms,): (u64,), _cx: Context| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<_, ErrorObject>(ms)
    });
    methods.register_sync("fail", |(): (), _cx: Context| {
        Err::<(), _>(ErrorObject::new(42, "failed on purpose").with_data(json!({"why": "asked to"})))
    });
    methods.register("ask_client", |(a, b): (i64, i64), cx: Context| async move {
        // The server calls the client back on the same connection.
        cx.peer().call::<i64>("client.add", [a, b]).await.map_err(ErrorObject::internal)
    });
    methods
}

async fn serve(methods: Methods) -> (ServerHandle, String) {
    let server = Server::builder().build(methods).listen("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/rpc", server.local_addr().unwrap());
    (server, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_calls_from_a_hundred_tasks_over_one_socket_each_get_their_own_reply() {
    let (server, url) = serve(methods()).await;
    let client = Client::connect(&url).await.unwrap();

    let tasks: Vec<_> = (0..100_u32)
        .map(|task| {
            let client = client.clone();
            tokio::spawn(async move {
                for i in 0..100_u32 {
                    let method = if i % 2 == 0 { "echo" } else { "echo_later" };
                    let reply: (u32, u32) = client.call(method, (task, i)).await.unwrap();
                    assert_eq!(reply, (task, i), "task {task} got someone else's reply");
                }
            })
        })
        .collect();
    for task in tasks {
        within("a task's 100 calls", task).await.unwrap();
    }
    assert_eq!(server.connection_count(), 1, "every task shared one socket");
    assert_eq!(client.pending_calls(), 0);
    assert_eq!(client.unknown_replies(), 0);
}

#[tokio::test]
async fn a_slow_method_times_out_while_other_calls_carry_on() {
    let (_server, url) = serve(methods()).await;
    let client = Client::builder().endpoint(&url).timeout(Duration::from_millis(50)).connect().await.unwrap();

    let err = within("the timeout", client.call::<u64>("sleep", [60_000])).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(d) if d == Duration::from_millis(50)), "{err:?}");
    assert_eq!(client.pending_calls(), 0, "a timed-out call leaves the pending table at once");

    // Per call: a longer wait than the default is fine when asked for...
    let slept: u64 = within("a patient call", client.call("sleep", [100]).no_timeout()).await.unwrap();
    assert_eq!(slept, 100);
    // ...and a shorter one applies even when the default is generous.
    let patient = Client::connect(&url).await.unwrap();
    let err = patient.call::<u64>("sleep", [60_000]).timeout(Duration::from_millis(20)).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(d) if d == Duration::from_millis(20)), "{err:?}");
    assert_eq!(client.call::<Value>("echo", ["still here"]).await.unwrap(), json!(["still here"]));
}

#[tokio::test]
async fn the_server_calls_methods_registered_on_the_client() {
    let (server, url) = serve(methods()).await;
    let mut on_client = Methods::new();
    on_client.register_sync("client.add", |(a, b): (i64, i64), _cx: Context| Ok::<_, ErrorObject>(a + b));
    let client = Client::builder().endpoint(&url).methods(on_client).connect().await.unwrap();

    // From inside a handler, back over the caller's own connection...
    assert_eq!(client.call::<i64>("ask_client", [2, 3]).await.unwrap(), 5);
    // ...and from the server's handle.
    let connection = server.connections()[0].id;
    assert_eq!(server.call::<i64>(connection, "client.add", [20, 22]).await.unwrap(), 42);
    let missing = server.call::<i64>(connection, "client.nope", ()).await.unwrap_err();
    assert_eq!(missing.rpc().map(|e| e.code), Some(-32601), "{missing:?}");
}

#[tokio::test]
async fn notifications_from_the_server_reach_streams_and_handlers() {
    let (server, url) = serve(methods()).await;
    let (handled_tx, mut handled) = tokio::sync::mpsc::unbounded_channel();
    let mut on_client = Methods::new();
    on_client.register_sync("tick", move |(n,): (u32,), _cx: Context| {
        let _ = handled_tx.send(n);
        Ok::<_, ErrorObject>(())
    });
    let client = Client::builder().endpoint(&url).methods(on_client).connect().await.unwrap();
    let mut ticks = client.notifications("tick");
    // A round trip: the server has registered this connection by now.
    client.call::<Value>("echo", ()).await.unwrap();

    assert_eq!(server.broadcast("tick", [1]).unwrap(), 1);
    let connection = server.connections()[0].id;
    server.notify(connection, "tick", [2]).unwrap();
    for expected in [1, 2] {
        assert_eq!(within("a tick", ticks.next()).await.unwrap().params::<(u32,)>().unwrap(), (expected,));
        assert_eq!(within("the handler", handled.recv()).await.unwrap(), expected);
    }
}

#[tokio::test]
async fn topics_via_subscribe_deliver_what_the_server_publishes() {
    let (server, url) = serve(methods()).await;
    let client = Client::connect(&url).await.unwrap();

    let mut news = client.subscribe("news").await.unwrap();
    let mut prices = client.subscribe_method("prices", "price.update").await.unwrap();
    assert_eq!(server.subscribers("news"), 1);

    // Switchboard's convention: the notification is named after the topic.
    assert_eq!(server.subscribers("prices"), 1);
    server.publish("news", "news", json!({"title": "hello"})).unwrap();
    server.publish("prices", "price.update", [9.5]).unwrap();
    server.publish("elsewhere", "news", ["not for us"]).unwrap();
    let item = within("news", news.next()).await.unwrap().unwrap();
    assert_eq!(item.params::<Value>().unwrap(), json!({"title": "hello"}));
    assert_eq!(within("a price", prices.next()).await.unwrap().unwrap().params::<(f64,)>().unwrap(), (9.5,));

    drop(news);
    // The unsubscribe went out before this call, and was handled before it.
    client.call::<Value>("echo", ()).await.unwrap();
    assert_eq!(server.subscribers("news"), 0);
    assert_eq!(server.subscribers("prices"), 1);
}

#[tokio::test]
async fn batch_results_come_back_in_the_order_calls_were_added() {
    let (_server, url) = serve(methods()).await;
    let client = Client::connect(&url).await.unwrap();

    let results = client
        .batch()
        .call("sleep", [30]) // finishes last
        .call("echo", ["second"])
        .notify("echo", ["ignored"])
        .call("fail", ())
        .call("echo_later", {
            #[derive(serde::Serialize)]
            struct Named {
                fourth: bool,
            }
            Named { fourth: true }
        })
        .send()
        .await
        .unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results.decode::<u64>(0).unwrap(), 30);
    assert_eq!(results.decode::<Vec<String>>(1).unwrap(), ["second"]);
    let Err(Error::Rpc(error)) = results.decode::<Value>(2) else { panic!("the failing call fails") };
    assert_eq!((error.code, error.data), (42, Some(json!({"why": "asked to"}))));
    assert_eq!(results.decode::<Value>(3).unwrap(), json!({"fourth": true}));
}

#[tokio::test]
async fn the_bearer_token_reaches_the_servers_authenticator() {
    let server = Server::builder()
        .authenticate(|req| match req.bearer_token() {
            Some("s3cret") => Ok(json!({"user": "ada"})),
            Some(_) => Err(Rejection::Forbidden("unknown token".into())),
            None => Err(Rejection::Unauthorized("a bearer token is required".into())),
        })
        .build({
            let mut methods = Methods::new();
            methods.register_sync("whoami", |(): (), cx: Context| Ok::<_, ErrorObject>(cx.auth().cloned()));
            methods
        })
        .listen("127.0.0.1:0")
        .await
        .unwrap();
    let url = format!("ws://{}/rpc", server.local_addr().unwrap());

    let client = Client::builder().endpoint(&url).token("s3cret").connect().await.unwrap();
    assert_eq!(client.call::<Value>("whoami", ()).await.unwrap(), json!({"user": "ada"}));

    // The refusal names the status and the authenticator's reason, each once.
    let err = Client::builder().endpoint(&url).token("wrong").connect().await.unwrap_err();
    assert!(matches!(err, ConnectError::Unreachable { .. }), "{err}");
    assert_eq!(err.to_string(), format!("could not connect to {url}: HTTP 403 Forbidden: unknown token"));
    let err = Client::connect(&url).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("could not connect to {url}: HTTP 401 Unauthorized: a bearer token is required")
    );
    let ConnectError::Unreachable { failures } = &err else { panic!("{err}") };
    let [(failed_url, AttemptError::Refused { status, reason })] = failures.as_slice() else { panic!("{err:?}") };
    assert_eq!(
        (failed_url.as_str(), status.as_u16(), reason.as_deref()),
        (url.as_str(), 401, Some("a bearer token is required"))
    );
}

#[tokio::test]
async fn a_server_relays_a_method_to_another_server_through_a_client() {
    let (_upstream, upstream_url) = serve(methods()).await;
    let upstream = Client::connect(&upstream_url).await.unwrap();
    let mut front_methods = Methods::new();
    relay::relay_as(&mut front_methods, "upstream.echo", "echo", &upstream);
    relay::relay(&mut front_methods, "fail", &upstream);
    let (_front, front_url) = serve(front_methods).await;
    let client = Client::connect(&front_url).await.unwrap();

    let echoed: Value = client.call("upstream.echo", json!({"a": [1, 2]})).await.unwrap();
    assert_eq!(echoed, json!({"a": [1, 2]}));
    let Err(Error::Rpc(error)) = client.call::<Value>("fail", ()).await else { panic!("the upstream's error") };
    assert_eq!((error.code, error.message.as_ref()), (42, "failed on purpose"));
    assert_eq!(error.data, Some(json!({"why": "asked to"})));
}

#[tokio::test]
async fn a_server_shutdown_fails_pending_calls_with_disconnected_and_the_client_reconnects_to_a_new_one() {
    let (held_tx, mut held) = tokio::sync::mpsc::unbounded_channel();
    let mut with_hold = methods();
    with_hold.register("hold", move |(): (), _cx: Context| {
        let held_tx = held_tx.clone();
        async move {
            let _ = held_tx.send(());
            std::future::pending::<()>().await;
            Ok::<_, ErrorObject>(())
        }
    });
    let (server, url) = serve(with_hold).await;
    let addr = server.local_addr().unwrap();
    let client = Client::connect(&url).await.unwrap();
    let mut states = client.watch_state();
    let pending = {
        let client = client.clone();
        tokio::spawn(async move { client.call::<()>("hold", ()).no_timeout().await })
    };
    within("the call reached its handler", held.recv()).await.unwrap();

    within("shutdown", server.shutdown(Duration::ZERO)).await;
    let err = within("the pending call", pending).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Disconnected), "{err:?}");
    within("the drop noticed", states.wait_for(|s| !s.is_ready())).await.unwrap();

    let connects = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connects);
    let again = Server::builder()
        .on_connect(move |_peer| {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .build(methods())
        .listen(addr)
        .await
        .unwrap();
    let answer: Value = within("a call after the restart", client.call("echo", ["back"]).wait_ready()).await.unwrap();
    assert_eq!(answer, json!(["back"]));
    assert_eq!(connects.load(Ordering::SeqCst), 1);
    assert_eq!(again.connection_count(), 1);
    assert_eq!(client.endpoints()[0].connections, 2);
}
