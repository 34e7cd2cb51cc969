//! Typed topics (`#[rpc(topic)] fn prices() -> Topic<Price>;`) over a real
//! server and client on loopback: the server's typed publisher, the client's
//! plain and positioned typed subscriptions (resumed after a saved
//! position), a publication that does not fit the type (an error item, and
//! the subscription goes on), and a publication type that is no JSON-RPC
//! params (refused at once).
//!
//! Every wait is on an event (a reply, the next item), bounded by a hang
//! guard; nothing sleeps.

use std::future::IntoFuture;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard::client::{Client, StreamPosition};
use switchboard::server::{DeliveryError, Server, ServerHandle};
use switchboard::shared::discover::ServiceInfo;
use switchboard::topic::{PositionedTopicSubscription, Topic, TopicError, TopicItem, TopicSubscription};

/// Hang guard: far longer than anything here should take on a busy machine.
const GUARD: Duration = Duration::from_secs(60);

async fn within<F: IntoFuture>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(GUARD, future.into_future()).await {
        Ok(out) => out,
        Err(_) => panic!("hung for {GUARD:?}: {what}"),
    }
}

/// One trade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Price {
    /// The instrument.
    pub symbol: String,
    /// The price it traded at.
    pub price: f64,
}

/// A market: a method and two topics.
#[switchboard::rpc(namespace = "market")]
pub trait Market {
    /// The symbols traded.
    async fn symbols(&self) -> Vec<String>;

    /// Every trade's price, as it happens.
    #[rpc(topic)]
    fn prices(&self) -> Topic<Price>;

    /// The symbols opened for trading (named `opened` on the wire).
    #[rpc(topic, name = "opened")]
    fn openings() -> Topic<Vec<String>>;
}

struct Exchange;

impl Market for Exchange {
    async fn symbols(&self) -> Vec<String> {
        vec!["ACME".into()]
    }
}

async fn serve() -> (ServerHandle, String) {
    let server = Server::builder()
        .discovery(ServiceInfo::new("market", "1.0.0").topics(MarketApi::topics()))
        .build(Exchange.into_methods())
        .listen("127.0.0.1:0")
        .await
        .expect("listen on loopback");
    let url = format!("ws://{}/", server.local_addr().expect("bound"));
    (server, url)
}

fn price(symbol: &str, price: f64) -> Price {
    Price { symbol: symbol.into(), price }
}

async fn next<T: serde::de::DeserializeOwned + 'static>(stream: &mut TopicSubscription<T>) -> Result<T, TopicError> {
    within("the next publication", stream.next()).await.expect("the subscription is open")
}

async fn next_item<T: serde::de::DeserializeOwned + 'static>(
    stream: &mut PositionedTopicSubscription<T>,
) -> Result<TopicItem<T>, TopicError> {
    within("the next item", stream.next()).await.expect("the subscription is open")
}

#[tokio::test]
async fn a_typed_subscription_gets_each_publication_as_its_type() {
    let (server, url) = serve().await;
    let client = within("connect", Client::connect(&url)).await.expect("connect");
    let mut prices = within("subscribe", client.prices().subscribe()).await.expect("subscribed");
    let mut openings = within("subscribe", client.openings().subscribe()).await.expect("subscribed");
    assert_eq!(prices.topic(), "market.prices");
    assert_eq!(openings.topic(), "market.opened");

    let sent = [price("ACME", 9.5), price("ACME", 9.75), price("INIT", 101.0)];
    let mut offsets = Vec::new();
    for p in &sent {
        let position = within("published", server.prices().publish(p).expect("publishable")).await.unwrap();
        offsets.push(position.offset);
    }
    assert_eq!(offsets, [1, 2, 3]);
    for p in &sent {
        assert_eq!(&next(&mut prices).await.expect("a price"), p);
    }
    server.openings().publish(&vec!["ACME".to_owned(), "INIT".to_owned()]).expect("publishable");
    assert_eq!(next(&mut openings).await.expect("symbols"), ["ACME", "INIT"]);
    assert_eq!(within("a method beside", client.symbols()).await.unwrap(), ["ACME"]);
    client.close().await;
}

#[tokio::test]
async fn a_positioned_typed_subscription_resumes_after_a_saved_position() {
    let (server, url) = serve().await;
    let client = within("connect", Client::connect(&url)).await.expect("connect");
    let mut prices = within("subscribe", client.prices().subscribe_positioned()).await.expect("subscribed");

    let sent = [price("ACME", 1.0), price("ACME", 2.0), price("ACME", 3.0)];
    let mut positions = Vec::new();
    for p in &sent {
        positions.push(within("published", server.prices().publish(p).expect("publishable")).await.unwrap());
    }
    for (p, position) in sent.iter().zip(&positions) {
        match next_item(&mut prices).await.expect("a publication") {
            TopicItem::Publication { value, position: at } => assert_eq!((&value, &at), (p, position)),
            other => panic!("expected a publication, got {other:?}"),
        }
    }
    assert_eq!(prices.position(), &positions[2]);
    drop(prices);

    // Back after the first: the two after it are replayed, typed.
    let saved: StreamPosition = positions[0].to_string().parse().expect("a position reads back");
    let resumed = client.prices().subscribe_positioned().since(saved);
    let mut resumed = within("resubscribe", resumed).await.expect("subscribed");
    match next_item(&mut resumed).await.expect("recovered") {
        TopicItem::Recovered(recovered) => assert_eq!(recovered.missed, 2, "{recovered}"),
        other => panic!("expected Recovered, got {other:?}"),
    }
    for (p, position) in sent.iter().zip(&positions).skip(1) {
        match next_item(&mut resumed).await.expect("a replayed publication") {
            TopicItem::Publication { value, position: at } => assert_eq!((&value, &at), (p, position)),
            other => panic!("expected a publication, got {other:?}"),
        }
    }
    client.close().await;
}

#[tokio::test]
async fn a_publication_that_does_not_fit_is_an_error_item_and_the_subscription_goes_on() {
    let (server, url) = serve().await;
    // One client each: a connection is in a topic one way, plain or positioned.
    let client = within("connect", Client::connect(&url)).await.expect("connect");
    let second = within("connect", Client::connect(&url)).await.expect("connect");
    let mut plain = within("subscribe", client.prices().subscribe()).await.expect("subscribed");
    let mut positioned = within("subscribe", second.prices().subscribe_positioned()).await.expect("subscribed");

    // Published untyped, as another program might: `price` is a string.
    let wrong = json!({"symbol": "ACME", "price": "cheap"});
    let bad = within("published", server.publish("market.prices", "market.prices", wrong).unwrap()).await.unwrap();
    let good = within("published", server.prices().publish(&price("ACME", 4.0)).unwrap()).await.unwrap();

    match next(&mut plain).await {
        Err(TopicError::Decode { topic, position: None, detail }) => {
            assert_eq!(topic, "market.prices");
            assert!(detail.contains("invalid type: string \"cheap\", expected f64"), "{detail}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert_eq!(next(&mut plain).await.expect("the next one fits"), price("ACME", 4.0));

    let error = next_item(&mut positioned).await.expect_err("a decode error");
    match &error {
        TopicError::Decode { position: Some(at), .. } => assert_eq!(at, &bad),
        other => panic!("expected a decode error with a position, got {other:?}"),
    }
    assert!(
        error.to_string().starts_with(&format!("a publication of \"market.prices\" at {bad} did not decode")),
        "{error}"
    );
    match next_item(&mut positioned).await.expect("the next one fits") {
        TopicItem::Publication { value, position } => assert_eq!((value, position), (price("ACME", 4.0), good)),
        other => panic!("expected a publication, got {other:?}"),
    }
    client.close().await;
    second.close().await;
}

#[tokio::test]
async fn a_publication_that_is_no_params_is_refused_at_once() {
    let (server, _url) = serve().await;
    // JSON-RPC params are an object or an array: a bare number is neither.
    let numbers: Topic<i64> = Topic::new("numbers");
    match numbers.publisher(&server).publish(&5) {
        Err(DeliveryError::Encode(e)) => assert!(e.to_string().contains('5'), "{e}"),
        other => panic!("expected an encode error, got {other:?}"),
    }
    assert!(server.publish("numbers", "numbers", [5]).is_ok(), "an array is params");
}

#[test]
fn the_topics_are_described_with_their_publication_schema() {
    let docs = MarketApi::topics();
    let names: Vec<(&str, Option<&str>)> = docs.iter().map(|t| (t.name.as_str(), t.method.as_deref())).collect();
    assert_eq!(names, [("market.prices", Some("market.prices")), ("market.opened", Some("market.opened"))]);
    assert_eq!(docs[0].summary.as_deref(), Some("Every trade's price, as it happens."));
    let schema = docs[0].schema.as_ref().expect("a schema");
    assert_eq!(schema["title"], "Price");
    assert_eq!(schema["required"], json!(["symbol", "price"]));
    assert_eq!(docs[1].schema.as_ref().expect("a schema")["items"]["type"], "string");
    assert_eq!(MarketApi::openings().name(), "market.opened");
}
