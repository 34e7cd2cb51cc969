//! Connection life: connect errors, auth headers, TLS, the state watch,
//! offline behaviour, reconnect with re-subscription, graceful close.

use std::sync::Arc;

use futures_util::FutureExt;
use serde_json::{Value, json};
use switchboard_client::{AttemptError, Backoff, Client, ConnectError, Error, Reconnect, State, WhenOffline};
use tokio::sync::{Mutex, mpsc};

use crate::support::{Conn, RawServer, free_addr, within};

async fn answer_hello(conn: Conn) {
    conn.serve(|_| Ok(json!("world"))).await;
}

#[tokio::test]
async fn connect_fails_with_a_clear_error_when_the_first_attempt_fails() {
    let addr = free_addr().await;
    let err = Client::connect(&format!("ws://{addr}/rpc")).await.unwrap_err();
    assert!(matches!(err, ConnectError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "names the endpoint: {err}");

    let refusing = RawServer::refusing(401).await;
    let err = Client::builder().endpoint(refusing.url()).token("wrong").connect().await.unwrap_err();
    assert!(err.to_string().contains("401"), "names the HTTP status: {err}");

    let err = Client::connect("http://example.com/rpc").await.unwrap_err();
    assert!(matches!(err, ConnectError::InvalidUrl { .. }), "{err}");
}

#[tokio::test]
async fn connect_errors_say_each_thing_once() {
    // Nothing listens: the OS's own words, after the endpoint, once.
    let addr = free_addr().await;
    let url = format!("ws://{addr}/rpc");
    let err = Client::connect(&url).await.unwrap_err().to_string();
    assert!(err.starts_with(&format!("could not connect to {url}: ")), "{err}");
    assert_eq!(err.matches(&addr.to_string()).count(), 1, "the endpoint is named once: {err}");
    assert_eq!(err.matches("connect").count(), 1, "{err}");
    assert!(!err.contains("transport error"), "{err}");

    // A listener that never answers the upgrade: the connect timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/rpc", silent.local_addr().unwrap());
    let err = Client::builder()
        .endpoint(&url)
        .connect_timeout(std::time::Duration::from_millis(200))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), format!("could not connect to {url}: timed out after 200ms (the connect timeout)"));

    // A refusal: the HTTP status and the body's reason.
    let refusing = RawServer::refusing(401).await;
    let err = Client::connect(&refusing.url()).await.unwrap_err();
    assert_eq!(err.to_string(), format!("could not connect to {}: HTTP 401 Unauthorized: refused", refusing.url()));

    // Several endpoints: each with its own reason, in order.
    let urls = [refusing.url(), url];
    let err = Client::builder()
        .endpoints(&urls)
        .connect_timeout(std::time::Duration::from_millis(200))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "could not connect to any endpoint: {}: HTTP 401 Unauthorized: refused; {}: timed out after 200ms (the connect timeout)",
            urls[0], urls[1]
        )
    );
    drop(silent);
}

#[tokio::test]
async fn the_token_and_extra_headers_go_with_the_upgrade_request() {
    let (headers_tx, mut headers) = mpsc::unbounded_channel();
    let server = RawServer::start(move |conn| {
        let _ = headers_tx.send(conn.headers.clone());
        answer_hello(conn)
    })
    .await;
    let client =
        Client::builder().endpoint(server.url()).token("s3cret").header("x-tenant", "acme").connect().await.unwrap();

    let seen = within("the upgrade headers", headers.recv()).await.unwrap();
    assert_eq!(seen["authorization"], "Bearer s3cret");
    assert_eq!(seen["x-tenant"], "acme");
    assert_eq!(client.call::<String>("hello", ()).await.unwrap(), "world");
}

#[tokio::test]
async fn a_wss_endpoint_goes_through_rustls_and_reports_a_failed_handshake() {
    // A plain WebSocket server: the TLS handshake cannot succeed, but it must
    // be attempted (no crypto provider panic) and fail with a transport error.
    let server = RawServer::start(answer_hello).await;
    let url = format!("wss://{}/rpc", server.addr());
    let err = within("the TLS attempt", Client::connect(&url)).await.unwrap_err();
    let ConnectError::Unreachable { failures } = &err else { panic!("{err}") };
    assert!(matches!(failures[0].1, AttemptError::Io(_) | AttemptError::Tls(_)), "{err}");
}

#[tokio::test]
async fn the_state_watch_follows_connecting_ready_offline_and_ready_again() {
    let addr = free_addr().await;
    let client = Client::builder().endpoint(format!("ws://{addr}/rpc")).build().unwrap();
    assert_eq!(client.state(), State::Connecting, "a new client starts connecting");
    let mut states = client.watch_state();

    // Nothing listens yet: attempts fail, and between them the client is offline.
    within("offline", states.wait_for(|s| *s == State::Offline)).await.unwrap();
    let server = RawServer::start_on(addr, answer_hello).await;
    within("ready", states.wait_for(|s| *s == State::Ready)).await.unwrap();
    assert_eq!(client.endpoints()[0].state, State::Ready);

    server.kill().await;
    within("not ready after the crash", states.wait_for(|s| *s != State::Ready)).await.unwrap();
    within("offline while the server is down", states.wait_for(|s| *s == State::Offline)).await.unwrap();
    let _server = RawServer::start_on(addr, answer_hello).await;
    within("ready again", states.wait_for(|s| *s == State::Ready)).await.unwrap();
    assert_eq!(client.endpoints()[0].connections, 2);

    client.close().await;
    assert_eq!(*states.borrow_and_update(), State::Closed);
}

#[tokio::test]
async fn calls_made_while_offline_fail_fast_with_offline_unless_they_wait_for_readiness() {
    let addr = free_addr().await;
    let url = format!("ws://{addr}/rpc");
    let client = Client::builder().endpoint(&url).build().unwrap();
    let patient = Client::builder().endpoint(&url).when_offline(WhenOffline::WaitReady).build().unwrap();

    assert!(matches!(client.call::<String>("hello", ()).await, Err(Error::Offline)));
    assert!(matches!(client.notify("hello", ()).await, Err(Error::Offline)));
    assert!(matches!(client.batch().call("hello", ()).send().await, Err(Error::Offline)));

    let asked = {
        let client = client.clone();
        tokio::spawn(async move { client.call::<String>("hello", ()).wait_ready().await })
    };
    let by_default = {
        let patient = patient.clone();
        tokio::spawn(async move { patient.call::<String>("hello", ()).await })
    };
    let ready = {
        let client = client.clone();
        tokio::spawn(async move { client.ready().await })
    };
    // A failed attempt takes a socket round trip: by then the three are waiting.
    let mut states = client.watch_state();
    within("offline", states.wait_for(|s| *s == State::Offline)).await.unwrap();
    assert!(!asked.is_finished() && !by_default.is_finished() && !ready.is_finished());

    let _server = RawServer::start_on(addr, answer_hello).await;
    assert_eq!(within("the waiting call", asked).await.unwrap().unwrap(), "world");
    assert_eq!(within("the patient client's call", by_default).await.unwrap().unwrap(), "world");
    within("readiness", ready).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_server_that_restarts_on_the_same_port_gets_the_client_back_and_its_topics_subscribed_again() {
    let (subscribed_tx, mut subscribed) = mpsc::unbounded_channel();
    let server_generation = move |generation: u32| {
        let subscribed_tx = subscribed_tx.clone();
        move |mut conn: Conn| {
            let subscribed_tx = subscribed_tx.clone();
            async move {
                while let Some(frame) = conn.recv().await {
                    if frame["method"] == "rpc.subscribe" {
                        let _ = subscribed_tx.send((generation, frame["params"].clone()));
                        conn.reply(&frame, json!(true)).await;
                        conn.send(json!({"jsonrpc": "2.0", "method": "news", "params": [generation]})).await;
                    } else if frame.get("id").is_some() {
                        conn.reply(&frame, json!(generation)).await;
                    }
                }
            }
        }
    };
    let first = RawServer::start(server_generation(1)).await;
    let addr = first.addr();
    let client = Client::connect(&first.url()).await.unwrap();
    let mut news = client.subscribe("news").await.unwrap();
    assert_eq!(within("rpc.subscribe", subscribed.recv()).await.unwrap(), (1, json!(["news"])));
    assert_eq!(within("news", news.next()).await.unwrap().unwrap().params::<(u32,)>().unwrap(), (1,));

    let mut states = client.watch_state();
    first.kill().await;
    within("the crash noticed", states.wait_for(|s| *s != State::Ready)).await.unwrap();
    let _second = RawServer::start_on(addr, server_generation(2)).await;

    assert_eq!(
        within("rpc.subscribe again", subscribed.recv()).await.unwrap(),
        (2, json!(["news"])),
        "the restarted server saw the topic subscribed again"
    );
    let after = within("news after the restart", news.next()).await.unwrap().unwrap();
    assert_eq!(after.params::<(u32,)>().unwrap(), (2,), "the same stream carries on");
    within("ready", client.ready()).await.unwrap();
    assert_eq!(client.call::<u32>("generation", ()).await.unwrap(), 2);
    assert_eq!(client.endpoints()[0].connections, 2);
}

/// A server whose first connection accepts `rpc.subscribe`, publishes
/// `news [1]` and drops; on later connections it refuses the first
/// `refusals` subscribes with -32001, then accepts and publishes `news [2]`.
async fn refusing_after_a_reconnect(refusals: usize) -> RawServer {
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    RawServer::start(move |mut conn| {
        let first = connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        let attempts = Arc::clone(&attempts);
        async move {
            while let Some(frame) = conn.recv().await {
                if frame["method"] != "rpc.subscribe" {
                    continue;
                }
                if first {
                    conn.reply(&frame, json!(true)).await;
                    conn.send(json!({"jsonrpc": "2.0", "method": "news", "params": [1]})).await;
                    return; // a crash: the socket drops without a close frame
                }
                if attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < refusals {
                    let error = json!({"code": -32001, "message": "not now"});
                    conn.send(json!({"jsonrpc": "2.0", "error": error, "id": frame["id"]})).await;
                } else {
                    conn.reply(&frame, json!(true)).await;
                    conn.send(json!({"jsonrpc": "2.0", "method": "news", "params": [2]})).await;
                }
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_resubscribe_refused_after_a_reconnect_is_an_error_item_and_is_retried_until_it_succeeds() {
    let server = refusing_after_a_reconnect(2).await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut news = client.subscribe("news").await.unwrap();
    let first = within("news before the drop", news.next()).await.unwrap().unwrap();
    assert_eq!(first.params::<(u32,)>().unwrap(), (1,));

    // The reconnect's re-subscribe is refused twice: two error items, each retried.
    for refusal in 1..=2 {
        let err = within("the refusal", news.next()).await.unwrap().unwrap_err();
        assert_eq!((err.topic(), err.endpoint()), ("news", server.url().as_str()), "{err}");
        assert_eq!(err.cause().rpc().map(|e| e.code), Some(-32001), "refusal {refusal}: {err}");
        assert!(!err.gave_up() && err.retry_in().is_some(), "refusal {refusal}: {err}");
        assert!(err.to_string().starts_with(&format!("re-subscribing to \"news\" on {}", server.url())), "{err}");
    }
    // The third try is accepted: the same subscription carries on.
    let after = within("news after the retries", news.next()).await.unwrap().unwrap();
    assert_eq!(after.params::<(u32,)>().unwrap(), (2,));
    assert_eq!(client.endpoints()[0].connections, 2);
}

#[tokio::test]
async fn a_resubscribe_refused_past_the_retry_limit_says_it_gave_up() {
    let server = refusing_after_a_reconnect(usize::MAX).await;
    let policy = Backoff { max_retries: Some(1), ..Backoff::default() };
    let client =
        Client::builder().endpoint(server.url()).reconnect(Reconnect::Backoff(policy)).connect().await.unwrap();
    let mut news = client.subscribe("news").await.unwrap();
    assert!(within("news before the drop", news.next()).await.unwrap().is_ok());

    let retried = within("the first refusal", news.next()).await.unwrap().unwrap_err();
    assert_eq!(retried.retry_in(), Some(std::time::Duration::ZERO), "the first retry is immediate: {retried}");
    assert!(retried.to_string().ends_with("; retrying now"), "{retried}");
    let dead = within("the last refusal", news.next()).await.unwrap().unwrap_err();
    assert!(dead.gave_up(), "one retry allowed: {dead}");
    assert!(dead.to_string().ends_with("; gave up until the next reconnect"), "{dead}");
    assert_eq!(client.state(), State::Ready, "the connection itself is fine");
}

#[tokio::test]
async fn without_reconnect_a_dropped_connection_leaves_the_client_closed() {
    let server = RawServer::start(|mut conn| async move {
        let _ = conn.request().await;
        // Dropped without an answer.
    })
    .await;
    let client = Client::builder().endpoint(server.url()).reconnect(Reconnect::Never).connect().await.unwrap();

    assert!(matches!(client.call::<Value>("bye", ()).await, Err(Error::Disconnected)));
    let mut states = client.watch_state();
    within("closed", states.wait_for(|s| *s == State::Closed)).await.unwrap();
    assert!(matches!(client.ready().await, Err(Error::Offline)));
    assert!(matches!(client.call::<Value>("again", ()).wait_ready().await, Err(Error::Offline)));
}

#[tokio::test]
async fn close_lets_calls_in_flight_finish_then_closes_the_socket_with_1000() {
    let (held_tx, mut held) = mpsc::unbounded_channel();
    let (release_tx, release_rx) = mpsc::unbounded_channel::<()>();
    let (code_tx, mut code) = mpsc::unbounded_channel();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let server = RawServer::start(move |mut conn| {
        let (held_tx, release_rx, code_tx) = (held_tx.clone(), Arc::clone(&release_rx), code_tx.clone());
        async move {
            let req = conn.request().await;
            let _ = held_tx.send(());
            release_rx.lock().await.recv().await;
            conn.reply(&req, json!("done")).await;
            let _ = code_tx.send(conn.close_code().await);
        }
    })
    .await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut ticks = client.notifications("tick");

    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move { client.call::<String>("slow", ()).await })
    };
    within("the call reached the server", held.recv()).await.unwrap();

    let closer = client.clone();
    let mut closing = Box::pin(async move { closer.close().await });
    assert!((&mut closing).now_or_never().is_none(), "close waits for the call in flight");
    assert!(client.is_closed());
    assert!(matches!(client.call::<String>("late", ()).await, Err(Error::Offline)), "no new calls while closing");

    release_tx.send(()).unwrap();
    assert_eq!(within("the call in flight", in_flight).await.unwrap().unwrap(), "done");
    within("close", closing).await;
    assert_eq!(within("the close frame", code.recv()).await.unwrap(), Some(1000));
    assert_eq!(client.state(), State::Closed);
    assert!(within("streams end", ticks.next()).await.is_none());
}

#[tokio::test]
async fn dropping_every_clone_of_the_client_closes_its_socket() {
    let (code_tx, mut code) = mpsc::unbounded_channel();
    let server = RawServer::start(move |mut conn| {
        let code_tx = code_tx.clone();
        async move {
            let _ = code_tx.send(conn.close_code().await);
        }
    })
    .await;
    let client = Client::connect(&server.url()).await.unwrap();
    let clone = client.clone();
    drop(client);
    drop(clone);
    assert_eq!(within("the close frame", code.recv()).await.unwrap(), Some(1000));
}

#[tokio::test]
async fn open_socket_hands_over_the_websocket_with_the_headers_and_the_same_errors() {
    use futures_util::{SinkExt, StreamExt};
    use switchboard_shared::tokio_tungstenite::tungstenite::Message;

    let (headers_tx, mut headers) = mpsc::unbounded_channel();
    let server = RawServer::start(move |mut conn| {
        let _ = headers_tx.send(conn.headers.clone());
        async move {
            // Echoes the first frame as it came, whatever it is.
            let text = conn.recv_text().await.expect("a frame");
            conn.send_text(text).await;
        }
    })
    .await;
    let down = format!("ws://{}/rpc", free_addr().await);
    // The first endpoint is down: the next one is tried.
    let mut ws = Client::builder().endpoints([down, server.url()]).token("s3cret").open_socket().await.unwrap();
    assert_eq!(within("the upgrade headers", headers.recv()).await.unwrap()["authorization"], "Bearer s3cret");
    ws.send(Message::text("not even JSON")).await.unwrap();
    let Some(Ok(Message::Text(echo))) = within("the echo", ws.next()).await else { panic!("a text frame") };
    assert_eq!(echo.as_str(), "not even JSON", "no engine in between");

    let refusing = RawServer::refusing(403).await;
    let err = Client::builder().endpoint(refusing.url()).open_socket().await.unwrap_err();
    assert_eq!(err.to_string(), format!("could not connect to {}: HTTP 403 Forbidden: refused", refusing.url()));
}
