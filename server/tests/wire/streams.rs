//! Topic streams on the wire: positioned subscriptions, resume with
//! `since` (replay right after the result, then live, no gap, no
//! duplicate), epochs, history bounds and `rpc.history`.

use serde_json::{Value, json};
use switchboard_server::{Server, ServerHandle, SubscriptionDecision};
use switchboard_shared::code;

use crate::common::*;

/// A publication as a positioned subscriber receives it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    epoch: String,
    offset: u64,
    method: String,
    params: Value,
}

/// The next frame, which must be an `rpc.publication` of `topic`.
async fn next_publication(ws: &mut Ws, topic: &str) -> Seen {
    let frame = recv(ws).await;
    assert_eq!(frame["method"], "rpc.publication", "{frame}");
    assert!(frame.get("id").is_none(), "{frame}");
    let p = &frame["params"];
    assert_eq!(p["topic"], topic, "{frame}");
    Seen {
        epoch: p["epoch"].as_str().expect("an epoch").to_owned(),
        offset: p["offset"].as_u64().expect("an offset"),
        method: p["method"].as_str().expect("a method").to_owned(),
        params: p["params"].clone(),
    }
}

/// Subscribes with `params` and returns the result (the next frame must answer it).
async fn subscribe(ws: &mut Ws, id: i64, params: Value) -> Value {
    let reply = call(ws, id, "rpc.subscribe", params).await;
    assert!(reply.get("error").is_none(), "{reply}");
    reply["result"].clone()
}

fn since(epoch: &str, offset: u64) -> Value {
    json!({"epoch": epoch, "offset": offset})
}

fn publish(server: &ServerHandle, topic: &str, n: u64) {
    server.publish(topic, "tick", json!({"n": n})).expect("publish");
}

#[tokio::test]
async fn a_positioned_subscriber_gets_offsets_and_a_plain_one_the_notification() {
    let server = start(Server::builder()).await;
    let mut positioned = connect(&server).await;
    let mut plain = connect(&server).await;
    let result = subscribe(&mut positioned, 1, json!({"topic": "t", "positioned": true})).await;
    assert_eq!(result["topic"], "t");
    assert_eq!(result["offset"], 0, "nothing published yet: {result}");
    assert_eq!(result["recovered"], false, "no since, nothing recovered: {result}");
    let epoch = result["epoch"].as_str().unwrap().to_owned();
    assert_eq!(subscribe(&mut plain, 1, json!(["t"])).await, true);

    let position = server.publish("t", "tick", json!({"n": 1})).unwrap().await.unwrap();
    assert_eq!((position.epoch.as_str(), position.offset), (epoch.as_str(), 1), "the epoch the result announced");
    let seen = next_publication(&mut positioned, "t").await;
    assert_eq!(seen, Seen { epoch, offset: 1, method: "tick".into(), params: json!({"n": 1}) });
    assert_eq!(recv(&mut plain).await, json!({"jsonrpc": "2.0", "method": "tick", "params": {"n": 1}}));
    // Params-less publications have no params in the plain form, `null` in the positioned one.
    server.publish("t", "ping", ()).unwrap();
    assert_eq!(next_publication(&mut positioned, "t").await.params, Value::Null);
    assert_eq!(recv(&mut plain).await, json!({"jsonrpc": "2.0", "method": "ping"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_subscriber_gets_every_offset_exactly_once_in_order() {
    let (builder, mut events) = Events::install(Server::builder());
    let server = start(builder).await;
    let mut seen: Vec<u64> = Vec::new();

    // Session 1: subscribe, read up to offset 250 of the first 300, leave.
    let mut ws = connect(&server).await;
    events.next_connected().await;
    let first = subscribe(&mut ws, 1, json!({"topic": "feed", "positioned": true})).await;
    let epoch = first["epoch"].as_str().unwrap().to_owned();
    for n in 1..=300 {
        publish(&server, "feed", n);
    }
    while seen.last() != Some(&250) {
        let p = next_publication(&mut ws, "feed").await;
        assert_eq!((p.epoch.as_str(), &p.params), (epoch.as_str(), &json!({"n": p.offset})));
        seen.push(p.offset);
    }
    drop(ws);
    events.next_disconnected().await;

    // Published while it is away.
    for n in 301..=600 {
        publish(&server, "feed", n);
    }

    // Session 2: resume while the rest is being published.
    let publisher = server.clone();
    let rest = tokio::spawn(async move {
        for n in 601..=1000 {
            publish(&publisher, "feed", n);
            tokio::task::yield_now().await;
        }
    });
    let mut ws = connect(&server).await;
    let resumed = subscribe(&mut ws, 2, json!({"topic": "feed", "since": since(&epoch, 250)})).await;
    assert_eq!(resumed["recovered"], true, "{resumed}");
    assert_eq!(resumed["epoch"], epoch.as_str());
    let at = resumed["offset"].as_u64().unwrap();
    assert!((600..=1000).contains(&at), "the latest offset when it took effect: {resumed}");
    while seen.last() != Some(&1000) {
        let p = next_publication(&mut ws, "feed").await;
        assert_eq!((p.epoch.as_str(), &p.params), (epoch.as_str(), &json!({"n": p.offset})));
        seen.push(p.offset);
    }
    guard("the publisher", rest).await.unwrap();
    assert_eq!(seen, (1..=1000).collect::<Vec<_>>(), "every offset once, in order");
    // Nothing more: the next frame answers this call.
    call(&mut ws, 3, "add", json!([1, 2])).await;
}

#[tokio::test]
async fn a_new_epoch_means_not_recovered_and_no_replay() {
    // Another server (a restart): its streams have other epochs.
    let before = start(Server::builder()).await;
    let old = before.publish("t", "tick", json!({"n": 1})).unwrap().await.unwrap();
    let server = start(Server::builder()).await;
    publish(&server, "t", 1);
    let mut ws = connect(&server).await;
    let result = subscribe(&mut ws, 1, json!({"topic": "t", "since": since(&old.epoch, old.offset)})).await;
    assert_eq!(result["recovered"], false, "{result}");
    assert_ne!(result["epoch"], old.epoch.as_str());
    assert_eq!(result["offset"], 1);
    publish(&server, "t", 2);
    let next = next_publication(&mut ws, "t").await;
    assert_eq!((next.offset, next.epoch.as_str()), (2, result["epoch"].as_str().unwrap()), "live, nothing replayed");
}

#[tokio::test]
async fn a_topic_idle_past_its_ttl_starts_a_new_epoch() {
    // A TTL of a nanosecond: any round trip outlasts it.
    let server = start(Server::builder().history_ttl(std::time::Duration::from_nanos(1))).await;
    let first = server.publish("t", "tick", json!({"n": 1})).unwrap().await.unwrap();
    let mut ws = connect(&server).await;
    let result = subscribe(&mut ws, 1, json!({"topic": "t", "since": since(&first.epoch, 1)})).await;
    assert_eq!(result["recovered"], false, "{result}");
    assert_eq!(result["offset"], 0, "the history started afresh: {result}");
    let epoch = result["epoch"].as_str().unwrap().to_owned();
    assert_ne!(epoch, first.epoch);
    publish(&server, "t", 2);
    let next = next_publication(&mut ws, "t").await;
    assert_eq!((next.epoch, next.offset), (epoch, 1), "the epoch the result announced");
}

#[tokio::test]
async fn a_resume_past_the_history_or_the_replay_cap_is_not_recovered() {
    let server = start(Server::builder().history_entries(10).max_replay(8)).await;
    let mut epoch = String::new();
    for n in 1..=30 {
        epoch = server.publish("t", "tick", json!({"n": n})).unwrap().await.unwrap().epoch;
    }
    // 6..=20 are gone: nothing is replayed, not even what is left.
    let mut lost = connect(&server).await;
    let result = subscribe(&mut lost, 1, json!({"topic": "t", "since": since(&epoch, 5)})).await;
    assert_eq!((result["recovered"].clone(), result["offset"].clone()), (json!(false), json!(30)), "{result}");
    // 21..=30 are kept but are more than max_replay.
    let mut capped = connect(&server).await;
    let result = subscribe(&mut capped, 1, json!({"topic": "t", "since": since(&epoch, 20)})).await;
    assert_eq!(result["recovered"], false, "{result}");
    // 23..=30 are kept and within the cap.
    let mut resumed = connect(&server).await;
    let result = subscribe(&mut resumed, 1, json!({"topic": "t", "since": since(&epoch, 22)})).await;
    assert_eq!(result["recovered"], true, "{result}");
    for offset in 23..=30 {
        assert_eq!(next_publication(&mut resumed, "t").await.offset, offset);
    }
    // Up to date: recovered, nothing to replay. Ahead of the stream: not recovered.
    let mut current = connect(&server).await;
    assert_eq!(subscribe(&mut current, 1, json!({"topic": "t", "since": since(&epoch, 30)})).await["recovered"], true);
    let mut ahead = connect(&server).await;
    assert_eq!(subscribe(&mut ahead, 1, json!({"topic": "t", "since": since(&epoch, 31)})).await["recovered"], false);

    publish(&server, "t", 31);
    for ws in [&mut lost, &mut capped, &mut resumed, &mut current, &mut ahead] {
        assert_eq!(next_publication(ws, "t").await.offset, 31, "only live publications follow");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_give_every_subscriber_the_same_order() {
    const PUBLISHERS: u64 = 4;
    const EACH: u64 = 250;
    let server = start(Server::builder()).await;
    let mut positioned = Vec::new();
    for _ in 0..3 {
        let mut ws = connect(&server).await;
        subscribe(&mut ws, 1, json!({"topic": "t", "positioned": true})).await;
        positioned.push(ws);
    }
    let mut plain = connect(&server).await;
    subscribe(&mut plain, 1, json!({"topic": "t"})).await;

    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let server = server.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    server.publish("t", "tick", json!({"p": p, "i": i})).unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for publisher in publishers {
        guard("a publisher", publisher).await.unwrap();
    }

    let total = PUBLISHERS * EACH;
    let mut orders = Vec::new();
    for ws in &mut positioned {
        let mut order = Vec::new();
        for offset in 1..=total {
            let p = next_publication(ws, "t").await;
            assert_eq!(p.offset, offset, "consecutive offsets");
            order.push(p.params);
        }
        orders.push(order);
    }
    let mut plain_order = Vec::new();
    for _ in 0..total {
        plain_order.push(recv(&mut plain).await["params"].clone());
    }
    assert!(orders.iter().all(|order| *order == plain_order), "one order for every subscriber");
    for p in 0..PUBLISHERS {
        let mine: Vec<_> = plain_order.iter().filter(|v| v["p"] == p).map(|v| v["i"].as_u64().unwrap()).collect();
        assert_eq!(mine, (0..EACH).collect::<Vec<_>>(), "each publisher's own order is kept");
    }
}

#[tokio::test]
async fn history_reads_after_since_within_limit_and_the_server_maximum() {
    let server = start(Server::builder().history_entries(10).max_history_page(4)).await;
    let mut ws = connect(&server).await;
    // A topic never published to: its epoch is the one its first publication gets.
    let empty = call(&mut ws, 1, "rpc.history", json!({"topic": "t"})).await["result"].clone();
    assert_eq!((empty["offset"].clone(), empty["publications"].clone()), (json!(0), json!([])));
    let epoch = empty["epoch"].as_str().unwrap().to_owned();
    for n in 1..=20 {
        assert_eq!(server.publish("t", "tick", json!({"n": n})).unwrap().await.unwrap().epoch, epoch);
    }
    let offsets = |page: &Value| -> Vec<u64> {
        assert_eq!((page["epoch"].as_str(), page["offset"].as_u64()), (Some(epoch.as_str()), Some(20)), "{page}");
        let publications = page["publications"].as_array().unwrap();
        for p in publications {
            assert_eq!((p["topic"].as_str(), p["method"].as_str()), (Some("t"), Some("tick")));
            assert_eq!((p["epoch"].as_str(), &p["params"]), (Some(epoch.as_str()), &json!({"n": p["offset"]})));
        }
        publications.iter().map(|p| p["offset"].as_u64().unwrap()).collect()
    };
    let cases = [
        (json!({"topic": "t"}), vec![11, 12, 13, 14]), // the oldest retained, at most 4
        (json!({"topic": "t", "since": since(&epoch, 15)}), vec![16, 17, 18, 19]),
        (json!({"topic": "t", "since": since(&epoch, 15), "limit": 2}), vec![16, 17]),
        (json!({"topic": "t", "since": since(&epoch, 20)}), vec![]),
        (json!({"topic": "t", "since": since("other", 15)}), vec![11, 12, 13, 14]), // another epoch: from the start
    ];
    for (id, (params, expected)) in (2..).zip(cases) {
        let page = call(&mut ws, id, "rpc.history", params.clone()).await["result"].clone();
        assert_eq!(offsets(&page), expected, "{params}");
    }
    assert_eq!(call(&mut ws, 7, "rpc.history", json!({})).await["error"]["code"], -32602);
}

#[tokio::test]
async fn the_subscription_hook_decides_positioned_subscriptions_and_history_too() {
    let builder = Server::builder().on_subscribe(|_cx, topic| match topic {
        "secret" => SubscriptionDecision::Deny("not for you".into()),
        _ => SubscriptionDecision::Allow,
    });
    let server = start(builder).await;
    let mut ws = connect(&server).await;
    for (id, method, params) in [
        (1, "rpc.subscribe", json!({"topic": "secret", "positioned": true})),
        (2, "rpc.history", json!({"topic": "secret"})),
    ] {
        let reply = call(&mut ws, id, method, params).await;
        assert_eq!(reply["error"]["code"], code::SUBSCRIPTION_DENIED, "{reply}");
    }
    assert_eq!(server.subscribers("secret"), 0);
}

#[tokio::test]
async fn max_subscriptions_counts_positioned_subscriptions_and_a_resubscribe_repositions() {
    let server = start(Server::builder().max_subscriptions(1)).await;
    let mut ws = connect(&server).await;
    let first = subscribe(&mut ws, 1, json!({"topic": "a", "positioned": true})).await;
    let epoch = first["epoch"].as_str().unwrap().to_owned();
    let reply = call(&mut ws, 2, "rpc.subscribe", json!({"topic": "b", "positioned": true})).await;
    assert_eq!(reply["error"]["code"], code::SUBSCRIPTION_DENIED, "{reply}");
    publish(&server, "a", 1);
    publish(&server, "a", 2);
    assert_eq!(next_publication(&mut ws, "a").await.offset, 1);
    assert_eq!(next_publication(&mut ws, "a").await.offset, 2);
    // Subscribing again to the same topic is no new topic: it starts over from `since`.
    let again = subscribe(&mut ws, 3, json!({"topic": "a", "since": since(&epoch, 0)})).await;
    assert_eq!((again["recovered"].clone(), again["offset"].clone()), (json!(true), json!(2)));
    assert_eq!(next_publication(&mut ws, "a").await.offset, 1);
    assert_eq!(next_publication(&mut ws, "a").await.offset, 2);
    assert_eq!(server.subscribers("a"), 1);
    assert_eq!(call(&mut ws, 4, "rpc.unsubscribe", json!(["a"])).await["result"], true);
    publish(&server, "a", 3);
    call(&mut ws, 5, "add", json!([1, 2])).await;
}

#[tokio::test]
async fn a_positioned_subscribe_in_a_batch_is_answered_ahead_of_the_batch() {
    let server = start(Server::builder()).await;
    publish(&server, "t", 1);
    let mut ws = connect(&server).await;
    send_json(
        &mut ws,
        json!([
            {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1},
            {"jsonrpc": "2.0", "method": "rpc.subscribe", "params": {"topic": "t", "positioned": true}, "id": 2},
        ]),
    )
    .await;
    let result = recv(&mut ws).await;
    assert_eq!((result["id"].clone(), result["result"]["offset"].clone()), (json!(2), json!(1)), "{result}");
    assert_eq!(recv(&mut ws).await, json!([{"jsonrpc": "2.0", "result": 3, "id": 1}]));
}
