//! A server that breaks the protocol: replies with unknown ids, malformed
//! replies, replies with both result and error, a socket dropped mid-call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use switchboard_client::{Client, Error, StrayMessage};
use tokio::sync::mpsc;

use crate::support::{RawServer, within};

#[tokio::test]
async fn reply_with_unknown_id_is_counted_and_dropped() {
    let server = RawServer::start(|mut conn| async move {
        let a = conn.request().await;
        let b = conn.request().await;
        // Replies to calls nobody made, while two real calls wait.
        conn.send(json!({"jsonrpc": "2.0", "result": "stray", "id": 999})).await;
        conn.send(json!({"jsonrpc": "2.0", "error": {"code": 1, "message": "stray"}, "id": "nobody"})).await;
        conn.reply(&b, json!("b")).await;
        conn.reply(&a, json!("a")).await;
        conn.serve(|_| Ok(json!("later"))).await;
    })
    .await;
    let client = Client::connect(&server.url()).await.unwrap();

    let (a, b) = tokio::join!(client.call::<String>("first", ()), client.call::<String>("second", ()));
    assert_eq!((a.unwrap(), b.unwrap()), ("a".to_owned(), "b".to_owned()), "real calls are unaffected");
    assert_eq!(client.unknown_replies(), 2);
    let later: String = client.call("third", ()).await.unwrap();
    assert_eq!(later, "later", "the connection carries on");
}

#[tokio::test]
async fn malformed_replies_fail_only_the_call_they_name() {
    let (from_client_tx, mut from_client) = mpsc::unbounded_channel();
    let server = RawServer::start(move |mut conn| {
        let from_client_tx = from_client_tx.clone();
        async move {
            let mut calls = Vec::new();
            while calls.len() < 4 {
                calls.push(conn.request().await);
            }
            // Not JSON: the client must not answer it (an answer to an answer).
            conn.send_text("this is not JSON {").await;
            let id = |i: usize| calls[i]["id"].clone();
            conn.send(json!({"jsonrpc": "2.0", "error": "not an object", "id": id(0)})).await;
            conn.send(json!({"jsonrpc": "1.0", "result": 1, "id": id(1)})).await;
            conn.send(json!({"jsonrpc": "2.0", "id": id(2)})).await;
            conn.reply(&calls[3], json!("fine")).await;
            // The next frame from the client is its next call, not an error reply.
            let next = conn.recv().await.unwrap();
            conn.reply(&next, json!("still fine")).await;
            let _ = from_client_tx.send(next);
            conn.serve(|_| Ok(json!("still fine"))).await;
        }
    })
    .await;
    let client = Client::connect(&server.url()).await.unwrap();

    let (bad_error, bad_version, neither, good) = tokio::join!(
        client.call::<i64>("a", ()),
        client.call::<i64>("b", ()),
        client.call::<i64>("c", ()),
        client.call::<String>("d", ()),
    );
    for (what, outcome) in [("malformed error", bad_error), ("wrong version", bad_version), ("neither", neither)] {
        assert!(matches!(outcome, Err(Error::InvalidResponse(_))), "{what}: {outcome:?}");
    }
    assert_eq!(good.unwrap(), "fine");
    assert_eq!(client.call::<String>("e", ()).await.unwrap(), "still fine");
    let next = within("the client's next frame", from_client.recv()).await.unwrap();
    assert_eq!(next["method"], "e", "the client answered the garbage: {next}");
    assert_eq!(client.pending_calls(), 0);
}

#[tokio::test]
async fn a_reply_holding_both_result_and_error_is_an_invalid_response() {
    let server = RawServer::start(|mut conn| async move {
        let req = conn.request().await;
        conn.send(json!({"jsonrpc": "2.0", "result": 1, "error": {"code": 1, "message": "x"}, "id": req["id"]})).await;
        conn.serve(|_| Ok(json!(2))).await;
    })
    .await;
    let client = Client::connect(&server.url()).await.unwrap();

    let err = client.call::<i64>("both", ()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidResponse(ref why) if why.contains("exactly one")), "{err:?}");
    assert_eq!(client.call::<i64>("next", ()).await.unwrap(), 2);
}

#[tokio::test]
async fn a_server_that_drops_the_socket_mid_call_fails_it_at_once_with_disconnected_and_never_resends_it() {
    let requests = Arc::new(AtomicUsize::new(0));
    let connections = Arc::new(AtomicUsize::new(0));
    let (seen, count) = (Arc::clone(&requests), Arc::clone(&connections));
    let server = RawServer::start(move |mut conn| {
        let (seen, first_connection) = (Arc::clone(&seen), count.fetch_add(1, Ordering::SeqCst) == 0);
        async move {
            if first_connection {
                conn.request().await;
                seen.fetch_add(1, Ordering::SeqCst);
                return; // the socket is dropped with the call pending, no close frame
            }
            conn.serve(move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
                Ok(json!("on the new connection"))
            })
            .await;
        }
    })
    .await;
    // The default 10 s timeout: a Disconnected within the hang guard is not a timeout.
    let client = Client::connect(&server.url()).await.unwrap();

    let err = within("the dropped call", client.call::<String>("doomed", ())).await.unwrap_err();
    assert!(matches!(err, Error::Disconnected), "{err:?}");

    // The client reconnects; the failed call is not resent behind our back.
    let answer: String = within("a call after the reconnect", client.call("fresh", ()).wait_ready()).await.unwrap();
    assert_eq!(answer, "on the new connection");
    assert_eq!(requests.load(Ordering::SeqCst), 2, "the doomed call reached the server once, and only once");
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_error_with_a_null_id_fails_the_only_call_at_once_and_is_reported() {
    let server = RawServer::start(|mut conn| async move {
        conn.request().await;
        conn.send(json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request", "data": "too long"}, "id": null}))
            .await;
        conn.send_text("not json at all").await;
        conn.serve(|_| Ok(json!("fine"))).await;
    })
    .await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut strays = client.strays();
    // No timeout: without the null-id rule this call would never end.
    let err = within("the call", client.call::<String>("only", ()).no_timeout()).await.unwrap_err();
    let Error::Rpc(object) = err else { panic!("expected the server's own error, got {err:?}") };
    assert_eq!((object.code, object.data), (-32600, Some(json!("too long"))));
    let first = within("a stray", strays.next()).await.unwrap();
    assert!(matches!(first, StrayMessage::ErrorWithoutId { failed_calls: 1, .. }), "{first:?}");
    let second = within("a stray", strays.next()).await.unwrap();
    assert!(matches!(&second, StrayMessage::Malformed { error } if error.code == -32700), "{second:?}");
    assert_eq!((client.errors_without_id(), client.malformed_frames()), (1, 1));
    assert_eq!(client.call::<String>("next", ()).await.unwrap(), "fine", "the connection carries on");
}
