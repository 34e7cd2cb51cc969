//! Positioned subscriptions against a scripted server that plays the
//! server's side of the topic-stream wire exactly: `rpc.subscribe` with
//! named params, `rpc.publication` notifications, `rpc.history`.
//!
//! The test drives each accepted connection itself (the server hands it
//! over), so every frame the client sends is asserted and every frame it
//! receives is chosen, in order. Dropping a connection is a crash (no
//! close frame).

use std::future::IntoFuture;

use serde_json::{Value, json};
use switchboard_client::{
    Cause, Client, Error, Lost, PositionedSubscription, Recovered, State, StreamItem, StreamPosition,
};
use tokio::sync::mpsc;

use crate::support::{Conn, RawServer, within};

/// A server that hands every accepted connection to the test.
async fn scripted() -> (RawServer, mpsc::UnboundedReceiver<Conn>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let server = RawServer::start(move |conn| {
        let _ = tx.send(conn);
        async {}
    })
    .await;
    (server, rx)
}

async fn accepted(conns: &mut mpsc::UnboundedReceiver<Conn>) -> Conn {
    within("a connection", conns.recv()).await.expect("the server accepts")
}

fn at(epoch: &str, offset: u64) -> StreamPosition {
    StreamPosition::new(epoch, offset)
}

/// The `rpc.publication` notification of `t`'s publication `epoch:offset`
/// (method `tick`, params `[offset]`).
fn publication(epoch: &str, offset: u64) -> Value {
    json!({"jsonrpc": "2.0", "method": "rpc.publication",
           "params": {"topic": "t", "epoch": epoch, "offset": offset, "method": "tick", "params": [offset]}})
}

/// A history entry, as `rpc.history` answers it.
fn entry(epoch: &str, offset: u64) -> Value {
    publication(epoch, offset)["params"].clone()
}

fn subscribed(epoch: &str, offset: u64, recovered: bool) -> Value {
    json!({"topic": "t", "epoch": epoch, "offset": offset, "recovered": recovered})
}

/// The next frame, which must be a call of `method` with exactly `params`.
async fn expect_call(conn: &mut Conn, method: &str, params: Value) -> Value {
    let request = within(method, conn.request()).await;
    assert_eq!(request["method"], method, "{request}");
    assert_eq!(request["params"], params, "the params of {method}");
    assert!(request.get("id").is_some(), "a call, not a notification: {request}");
    request
}

/// Subscribes `client` to `t` (from `since`, if given) while `conn` checks
/// the subscribe's params and answers it with `answer`.
async fn subscribe(
    client: &Client,
    conn: &mut Conn,
    since: Option<StreamPosition>,
    answer: Value,
) -> PositionedSubscription {
    let expected = match &since {
        None => json!({"topic": "t", "positioned": true}),
        Some(since) => json!({"topic": "t", "since": {"epoch": since.epoch, "offset": since.offset}}),
    };
    let (subscription, ()) = tokio::join!(client.subscribe_positioned("t").since(since).into_future(), async {
        let request = expect_call(conn, "rpc.subscribe", expected).await;
        conn.reply(&request, answer).await;
    });
    subscription.expect("subscribed")
}

async fn next_item(subscription: &mut PositionedSubscription) -> StreamItem {
    within("the next item", subscription.next()).await.expect("the subscription goes on").expect("not an error")
}

/// The next item, which must be publication `epoch:offset` of `t`.
async fn expect_publication(subscription: &mut PositionedSubscription, epoch: &str, offset: u64) {
    match next_item(subscription).await {
        StreamItem::Publication(p) => {
            assert_eq!((p.topic.as_str(), p.position()), ("t", at(epoch, offset)), "{p:?}");
            assert_eq!((p.method.as_str(), p.params.get()), ("tick", format!("[{offset}]").as_str()));
            assert_eq!(subscription.position(), &at(epoch, offset));
        }
        other => panic!("expected publication {epoch}:{offset}, got {other:?}"),
    }
}

async fn expect_recovered(subscription: &mut PositionedSubscription) -> Recovered {
    match next_item(subscription).await {
        StreamItem::Recovered(recovered) => recovered,
        other => panic!("expected Recovered, got {other:?}"),
    }
}

async fn expect_lost(subscription: &mut PositionedSubscription) -> Lost {
    match next_item(subscription).await {
        StreamItem::Lost(lost) => {
            assert_eq!(subscription.position(), &lost.position);
            lost
        }
        other => panic!("expected Lost, got {other:?}"),
    }
}

#[tokio::test]
async fn a_positioned_subscription_yields_the_topics_publications_with_their_positions() {
    let (server, mut conns) = scripted().await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut conn = accepted(&mut conns).await;
    let mut ticks = subscribe(&client, &mut conn, None, subscribed("e1", 5, false)).await;
    assert_eq!(ticks.position(), &at("e1", 5), "where it subscribed");
    assert_eq!(ticks.endpoint(), Some(server.url()));

    // Not its own: another topic's, an old one, a plain notification.
    let other = json!({"jsonrpc": "2.0", "method": "rpc.publication",
                       "params": {"topic": "other", "epoch": "e1", "offset": 6, "method": "tick", "params": [0]}});
    conn.send(other).await;
    conn.send(publication("e1", 5)).await;
    conn.send(json!({"jsonrpc": "2.0", "method": "t", "params": [0]})).await;
    conn.send(publication("e1", 6)).await;
    conn.send(publication("e1", 7)).await;
    expect_publication(&mut ticks, "e1", 6).await;
    expect_publication(&mut ticks, "e1", 7).await;

    // Dropping it unsubscribes.
    drop(ticks);
    expect_call(&mut conn, "rpc.unsubscribe", json!(["t"])).await;
}

#[tokio::test]
async fn resuming_with_since_replays_what_was_missed_first() {
    let (server, mut conns) = scripted().await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut conn = accepted(&mut conns).await;
    let mut ticks = subscribe(&client, &mut conn, Some(at("e1", 41)), subscribed("e1", 43, true)).await;
    assert_eq!(ticks.position(), &at("e1", 41));
    // The replay overlaps what the application has: 41 is dropped.
    for offset in [41, 42, 43, 44] {
        conn.send(publication("e1", offset)).await;
    }
    let recovered = expect_recovered(&mut ticks).await;
    assert_eq!(recovered.since, at("e1", 41));
    assert_eq!(recovered.missed, 2);
    assert_eq!(recovered.cause, Cause::Subscribe { endpoint: server.url() });
    expect_publication(&mut ticks, "e1", 42).await;
    expect_publication(&mut ticks, "e1", 43).await;
    expect_publication(&mut ticks, "e1", 44).await;

    // Not recoverable: Lost first, then it carries on from the server's offset.
    let mut again = subscribe(&client, &mut conn, Some(at("e0", 9)), subscribed("e1", 44, false)).await;
    let lost = expect_lost(&mut again).await;
    assert_eq!((&lost.last, &lost.position), (&at("e0", 9), &at("e1", 44)));
    assert!(lost.epoch_changed());
    conn.send(publication("e1", 45)).await;
    expect_publication(&mut again, "e1", 45).await;
    expect_publication(&mut ticks, "e1", 45).await;
}

#[tokio::test]
async fn after_a_reconnect_it_subscribes_again_since_its_last_position_and_the_replay_carries_on_without_duplicates() {
    let (server, mut conns) = scripted().await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut first = accepted(&mut conns).await;
    let mut ticks = subscribe(&client, &mut first, None, subscribed("e1", 5, false)).await;
    first.send(publication("e1", 6)).await;
    first.send(publication("e1", 7)).await;
    expect_publication(&mut ticks, "e1", 6).await;
    expect_publication(&mut ticks, "e1", 7).await;

    drop(first);
    let mut second = accepted(&mut conns).await;
    let request =
        expect_call(&mut second, "rpc.subscribe", json!({"topic": "t", "since": {"epoch": "e1", "offset": 7}})).await;
    second.reply(&request, subscribed("e1", 9, true)).await;
    // The replay starts with one the client has already: it is dropped.
    for offset in [7, 8, 9, 10] {
        second.send(publication("e1", offset)).await;
    }
    let recovered = expect_recovered(&mut ticks).await;
    assert_eq!(
        recovered,
        Recovered {
            topic: "t".into(),
            since: at("e1", 7),
            missed: 2,
            cause: Cause::Reconnect { endpoint: server.url() }
        }
    );
    assert_eq!(
        recovered.to_string(),
        format!("reconnected to {}; recovered 2 missed publications of \"t\" after e1:7", server.url())
    );
    for offset in [8, 9, 10] {
        expect_publication(&mut ticks, "e1", offset).await;
    }
}

#[tokio::test]
async fn a_reconnect_the_server_cannot_recover_yields_lost_and_carries_on_from_the_new_position() {
    let (server, mut conns) = scripted().await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut first = accepted(&mut conns).await;
    let mut ticks = subscribe(&client, &mut first, None, subscribed("e1", 5, false)).await;
    first.send(publication("e1", 6)).await;
    expect_publication(&mut ticks, "e1", 6).await;

    drop(first);
    let mut second = accepted(&mut conns).await;
    let request =
        expect_call(&mut second, "rpc.subscribe", json!({"topic": "t", "since": {"epoch": "e1", "offset": 6}})).await;
    second.reply(&request, subscribed("e2", 3, false)).await;
    second.send(publication("e2", 4)).await;
    let lost = expect_lost(&mut ticks).await;
    assert_eq!((&lost.last, &lost.position), (&at("e1", 6), &at("e2", 3)));
    assert_eq!(lost.cause, Cause::Reconnect { endpoint: server.url() });
    assert_eq!(
        lost.to_string(),
        format!(
            "reconnected to {}; missed publications of \"t\" are lost (new epoch e2); continuing after e2:3",
            server.url()
        )
    );
    expect_publication(&mut ticks, "e2", 4).await;
}

#[tokio::test]
async fn a_gap_in_live_offsets_is_filled_from_history_in_order() {
    let (server, mut conns) = scripted().await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut conn = accepted(&mut conns).await;
    let mut ticks = subscribe(&client, &mut conn, None, subscribed("e1", 5, false)).await;
    conn.send(publication("e1", 6)).await;
    conn.send(publication("e1", 9)).await; // 7 and 8 were dropped for a slow consumer
    expect_publication(&mut ticks, "e1", 6).await;

    let request =
        expect_call(&mut conn, "rpc.history", json!({"topic": "t", "since": {"epoch": "e1", "offset": 6}})).await;
    let history = json!({"epoch": "e1", "offset": 9, "publications": [entry("e1", 7), entry("e1", 8), entry("e1", 9)]});
    conn.reply(&request, history).await;
    conn.send(publication("e1", 10)).await;

    let recovered = expect_recovered(&mut ticks).await;
    assert_eq!((recovered.since, recovered.missed), (at("e1", 6), 2));
    assert_eq!(recovered.cause, Cause::Gap { history_error: None });
    for offset in [7, 8, 9, 10] {
        expect_publication(&mut ticks, "e1", offset).await;
    }
}

#[tokio::test]
async fn a_gap_whose_publications_are_gone_from_history_yields_lost_and_none_of_them() {
    let (server, mut conns) = scripted().await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut conn = accepted(&mut conns).await;
    let mut ticks = subscribe(&client, &mut conn, None, subscribed("e1", 5, false)).await;
    conn.send(publication("e1", 6)).await;
    conn.send(publication("e1", 9)).await;
    expect_publication(&mut ticks, "e1", 6).await;

    let request =
        expect_call(&mut conn, "rpc.history", json!({"topic": "t", "since": {"epoch": "e1", "offset": 6}})).await;
    // 7 is gone: 8 alone would be a partial replay.
    conn.reply(&request, json!({"epoch": "e1", "offset": 9, "publications": [entry("e1", 8), entry("e1", 9)]})).await;

    let lost = expect_lost(&mut ticks).await;
    assert_eq!((&lost.last, &lost.position), (&at("e1", 6), &at("e1", 8)));
    assert_eq!(lost.cause, Cause::Gap { history_error: None });
    assert_eq!(lost.missed(), Some(2));
    expect_publication(&mut ticks, "e1", 9).await;

    // A history that fails is a loss too, saying why.
    conn.send(publication("e1", 12)).await;
    let request =
        expect_call(&mut conn, "rpc.history", json!({"topic": "t", "since": {"epoch": "e1", "offset": 9}})).await;
    let error = json!({"code": -32601, "message": "Method not found"});
    conn.send(json!({"jsonrpc": "2.0", "error": error, "id": request["id"]})).await;
    let lost = expect_lost(&mut ticks).await;
    assert_eq!((&lost.last, &lost.position), (&at("e1", 9), &at("e1", 11)));
    assert!(
        lost.to_string().contains("rpc.history failed: the peer answered with an error: Method not found (-32601))"),
        "{lost}"
    );
    expect_publication(&mut ticks, "e1", 12).await;
}

#[tokio::test]
async fn a_live_publication_in_a_new_epoch_yields_lost_then_that_publication() {
    let (server, mut conns) = scripted().await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut conn = accepted(&mut conns).await;
    let mut ticks = subscribe(&client, &mut conn, None, subscribed("e1", 5, false)).await;
    conn.send(publication("e1", 6)).await;
    conn.send(publication("e2", 1)).await;
    conn.send(publication("e2", 2)).await;
    expect_publication(&mut ticks, "e1", 6).await;
    let lost = expect_lost(&mut ticks).await;
    assert_eq!((&lost.last, &lost.position, &lost.cause), (&at("e1", 6), &at("e2", 0), &Cause::EpochChanged));
    expect_publication(&mut ticks, "e2", 1).await;
    expect_publication(&mut ticks, "e2", 2).await;

    // No rpc.history was asked for: the next frame is the unsubscribe.
    drop(ticks);
    expect_call(&mut conn, "rpc.unsubscribe", json!(["t"])).await;
}

#[tokio::test]
async fn a_reader_too_slow_for_its_buffer_loses_nothing_the_dropped_publications_are_read_from_history() {
    const LAST: u64 = 20;
    let (server, mut conns) = scripted().await;
    let client = Client::builder().endpoint(server.url()).notification_buffer(2).connect().await.unwrap();
    let mut conn = accepted(&mut conns).await;
    let mut ticks = subscribe(&client, &mut conn, None, subscribed("e1", 0, false)).await;

    let (synced_tx, synced) = tokio::sync::oneshot::channel();
    let server_side = tokio::spawn(async move {
        for offset in 1..=LAST {
            conn.send(publication("e1", offset)).await;
        }
        // Its answer (-32601) means the client has handled every publication
        // before it: with buffers of 2 and nobody reading, most were dropped.
        conn.send(json!({"jsonrpc": "2.0", "method": "sync", "id": "sync"})).await;
        let answer = conn.recv().await.expect("the answer to sync");
        assert_eq!(answer["id"], "sync", "{answer}");
        let _ = synced_tx.send(());
        let mut histories = 0;
        while let Some(frame) = conn.recv().await {
            if frame["method"] == "rpc.history" {
                histories += 1;
                let since = frame["params"]["since"]["offset"].as_u64().unwrap();
                // At most 3 an answer, as a server's limit would.
                let entries: Vec<Value> = (since + 1..=LAST.min(since + 3)).map(|o| entry("e1", o)).collect();
                conn.reply(&frame, json!({"epoch": "e1", "offset": LAST, "publications": entries})).await;
            }
        }
        histories
    });

    within("the client handled every publication", synced).await.unwrap();
    let mut offsets = Vec::new();
    let mut recoveries = 0;
    while offsets.last() != Some(&LAST) {
        match next_item(&mut ticks).await {
            StreamItem::Publication(p) => offsets.push(p.offset),
            StreamItem::Recovered(Recovered { cause: Cause::Gap { history_error: None }, .. }) => recoveries += 1,
            other => panic!("only publications and gaps recovered: {other:?}"),
        }
    }
    assert_eq!(offsets, (1..=LAST).collect::<Vec<_>>(), "every one, in order, once");
    assert!(recoveries >= 1, "some were dropped and recovered");
    drop(ticks);
    client.close().await;
    assert!(within("the server side", server_side).await.unwrap() >= 1);
}

#[tokio::test]
async fn a_refused_resubscribe_is_an_error_item_and_is_retried() {
    let (server, mut conns) = scripted().await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut first = accepted(&mut conns).await;
    let mut ticks = subscribe(&client, &mut first, None, subscribed("e1", 5, false)).await;
    drop(first);

    let mut second = accepted(&mut conns).await;
    let since = json!({"topic": "t", "since": {"epoch": "e1", "offset": 5}});
    let request = expect_call(&mut second, "rpc.subscribe", since.clone()).await;
    let error = json!({"code": -32001, "message": "not now"});
    second.send(json!({"jsonrpc": "2.0", "error": error, "id": request["id"]})).await;
    let err = within("the refusal", ticks.next()).await.unwrap().unwrap_err();
    assert_eq!(err.cause().rpc().map(|e| e.code), Some(-32001), "{err}");
    assert_eq!(err.retry_in(), Some(std::time::Duration::ZERO), "the first retry is immediate: {err}");

    let request = expect_call(&mut second, "rpc.subscribe", since).await;
    second.reply(&request, subscribed("e1", 5, true)).await;
    second.send(publication("e1", 6)).await;
    assert_eq!(expect_recovered(&mut ticks).await.missed, 0);
    expect_publication(&mut ticks, "e1", 6).await;
}

#[tokio::test]
async fn a_server_without_positioned_subscriptions_is_told_apart_and_its_plain_subscription_undone() {
    let (server, mut conns) = scripted().await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut conn = accepted(&mut conns).await;
    let (outcome, ()) = tokio::join!(client.subscribe_positioned("t").into_future(), async {
        let request = expect_call(&mut conn, "rpc.subscribe", json!({"topic": "t", "positioned": true})).await;
        conn.reply(&request, json!(true)).await;
    });
    let err = outcome.unwrap_err();
    assert!(matches!(&err, Error::Decode(why) if why.contains("does not do positioned subscriptions")), "{err}");
    expect_call(&mut conn, "rpc.unsubscribe", json!(["t"])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_positioned_subscription_lives_on_one_endpoint_and_fails_over_to_another_with_since() {
    let (a, a_conns) = scripted().await;
    let (b, b_conns) = scripted().await;
    let urls = [a.url(), b.url()];
    let client = Client::builder().endpoints(&urls).connect().await.unwrap();
    let mut each = client.watch_endpoints();
    within("both up", each.wait_for(|s| s.iter().all(|s| *s == State::Ready))).await.unwrap();
    let (mut servers, mut conns) = (vec![a, b], [a_conns, b_conns]);
    let (mut a_conn, mut b_conn) = (accepted(&mut conns[0]).await, accepted(&mut conns[1]).await);

    // Subscribed on exactly one of them: whichever it asks.
    let subscribing = client.subscribe_positioned("t").into_future();
    let answering = async {
        let (home, request) = tokio::select! {
            request = a_conn.request() => (0, request),
            request = b_conn.request() => (1, request),
        };
        assert_eq!(request["params"], json!({"topic": "t", "positioned": true}));
        let conn = if home == 0 { &mut a_conn } else { &mut b_conn };
        conn.reply(&request, subscribed("e1", 5, false)).await;
        conn.send(publication("e1", 6)).await;
        home
    };
    let (ticks, home) = tokio::join!(subscribing, answering);
    let mut ticks = ticks.unwrap();
    expect_publication(&mut ticks, "e1", 6).await;
    assert_eq!(ticks.endpoint().as_ref(), Some(&urls[home]));
    let (home_conn, mut other) = if home == 0 { (a_conn, b_conn) } else { (b_conn, a_conn) };

    // Its endpoint dies and stays down: it moves to the other one, with since.
    servers.remove(home).kill().await;
    drop(home_conn);
    let request =
        expect_call(&mut other, "rpc.subscribe", json!({"topic": "t", "since": {"epoch": "e1", "offset": 6}})).await;
    other.reply(&request, subscribed("e1", 7, true)).await;
    other.send(publication("e1", 7)).await;
    let recovered = expect_recovered(&mut ticks).await;
    assert_eq!((recovered.missed, recovered.cause), (1, Cause::Reconnect { endpoint: urls[1 - home].clone() }));
    expect_publication(&mut ticks, "e1", 7).await;
    assert_eq!(ticks.endpoint().as_ref(), Some(&urls[1 - home]));
}

#[tokio::test]
async fn rpc_unsubscribe_goes_out_only_when_no_subscription_of_the_topic_needs_the_connection() {
    let (server, mut conns) = scripted().await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut conn = accepted(&mut conns).await;
    let first = subscribe(&client, &mut conn, None, subscribed("e1", 5, false)).await;
    let second = subscribe(&client, &mut conn, None, subscribed("e1", 5, false)).await;
    let (plain, ()) = tokio::join!(client.subscribe("t"), async {
        let request = expect_call(&mut conn, "rpc.subscribe", json!(["t"])).await;
        conn.reply(&request, json!(true)).await;
    });
    let plain = plain.unwrap();

    // The plain one and one positioned one go: the other positioned one still
    // needs the connection subscribed. Then it goes too: one unsubscribe.
    drop(plain);
    drop(first);
    drop(second);
    let (done, ()) = tokio::join!(client.call::<String>("sync", ()), async {
        expect_call(&mut conn, "rpc.unsubscribe", json!(["t"])).await;
        let sync = expect_call(&mut conn, "sync", Value::Null).await;
        conn.reply(&sync, json!("synced")).await;
    });
    assert_eq!(done.unwrap(), "synced");
}
