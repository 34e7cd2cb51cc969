//! Topic streams end to end: Switchboard's real server (the contract's
//! `publish`, the built-in positioned `rpc.subscribe`) and real client, the
//! subscriber behind a TCP proxy the test cuts and restores, so it is
//! offline exactly while the test publishes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::client::StreamItem;
use switchboard::client::{Client, PositionedSubscription, StreamPosition};
use switchboard::demo::contract_methods;
use switchboard::server::{Server, ServerHandle};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Hang guard: far longer than anything here should take on a busy machine.
const GUARD: Duration = Duration::from_secs(60);

async fn within<F: std::future::IntoFuture>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(GUARD, future.into_future()).await.unwrap_or_else(|_| panic!("hung for {GUARD:?}: {what}"))
}

async fn hub() -> ServerHandle {
    hub_with(Server::builder()).await
}

async fn hub_with(builder: switchboard::server::ServerBuilder) -> ServerHandle {
    builder.build(contract_methods()).listen("127.0.0.1:0").await.unwrap()
}

/// The next item of a positioned subscription (an error fails the test).
async fn next(stream: &mut PositionedSubscription) -> StreamItem {
    match within("a stream item", stream.next()).await.expect("the stream goes on") {
        Ok(item) => item,
        Err(e) => panic!("subscription error: {e}"),
    }
}

/// A TCP proxy to `upstream` that can be cut (live connections dropped,
/// new ones refused) and restored.
struct Proxy {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    cut: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, cut) = (Arc::new(AtomicBool::new(true)), Arc::new(Notify::new()));
        let task = tokio::spawn({
            let (open, cut) = (open.clone(), cut.clone());
            async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else { return };
                    if !open.load(Ordering::SeqCst) {
                        continue; // dropped: the client sees the connection fail
                    }
                    let cut = cut.clone();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(upstream).await else { return };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            () = cut.notified() => {}
                        }
                    });
                }
            }
        });
        Proxy { addr, open, cut, task }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn publish(publisher: &Client, topic: &str, n: u64) -> StreamPosition {
    let position: Value = publisher.call("publish", json!([topic, "tick", {"n": n}])).await.unwrap();
    serde_json::from_value(position).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_offline_for_part_of_1000_publications_gets_every_offset_once_in_order() {
    let server = hub().await;
    let addr = server.local_addr().unwrap();
    let proxy = Proxy::start(addr).await;
    let publisher = within("publisher", Client::connect(&format!("ws://{addr}/"))).await.unwrap();
    let subscriber = within("subscriber", Client::connect(&format!("ws://{}/", proxy.addr))).await.unwrap();
    let mut stream = within("subscribe", subscriber.subscribe_positioned("t")).await.unwrap();

    let mut seen = Vec::new();
    let mut recovered = 0;
    for n in 1..=300 {
        publish(&publisher, "t", n).await;
    }
    while seen.len() < 300 {
        if let StreamItem::Publication(p) = next(&mut stream).await {
            seen.push(p.offset);
        }
    }
    proxy.cut();
    within("the subscriber to notice", async {
        let mut states = subscriber.watch_state();
        states.wait_for(|s| *s != switchboard::client::State::Ready).await.unwrap();
    })
    .await;
    for n in 301..=700 {
        publish(&publisher, "t", n).await;
    }
    proxy.restore();
    while seen.len() < 700 {
        match next(&mut stream).await {
            StreamItem::Publication(p) => seen.push(p.offset),
            StreamItem::Recovered(r) => recovered += r.missed,
            StreamItem::Lost(lost) => panic!("nothing should be lost: {lost}"),
            other => panic!("unexpected {other}"),
        }
    }
    for n in 701..=1000 {
        publish(&publisher, "t", n).await;
    }
    while seen.len() < 1000 {
        if let StreamItem::Publication(p) = next(&mut stream).await {
            seen.push(p.offset);
        }
    }
    assert_eq!(seen, (1..=1000).collect::<Vec<u64>>(), "every offset exactly once, in order");
    assert_eq!(recovered, 400, "the 400 published while offline were recovered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_missed_more_than_the_history_holds_is_told_it_lost_them() {
    let server = hub_with(Server::builder().history_entries(50)).await;
    let addr = server.local_addr().unwrap();
    let proxy = Proxy::start(addr).await;
    let publisher = within("publisher", Client::connect(&format!("ws://{addr}/"))).await.unwrap();
    let subscriber = within("subscriber", Client::connect(&format!("ws://{}/", proxy.addr))).await.unwrap();
    let mut stream = within("subscribe", subscriber.subscribe_positioned("t")).await.unwrap();
    publish(&publisher, "t", 1).await;
    assert!(matches!(next(&mut stream).await, StreamItem::Publication(p) if p.offset == 1));

    proxy.cut();
    within("the subscriber to notice", async {
        let mut states = subscriber.watch_state();
        states.wait_for(|s| *s != switchboard::client::State::Ready).await.unwrap();
    })
    .await;
    let mut last = None;
    for n in 2..=200 {
        last = Some(publish(&publisher, "t", n).await);
    }
    proxy.restore();
    // 199 missed, 50 kept: none is replayed, and the stream says so.
    let StreamItem::Lost(lost) = next(&mut stream).await else { panic!("expected Lost") };
    assert_eq!(lost.position, last.unwrap(), "it carries on from the latest position");
    assert!(!lost.epoch_changed());
    publish(&publisher, "t", 201).await;
    assert!(matches!(next(&mut stream).await, StreamItem::Publication(p) if p.offset == 201));
}
