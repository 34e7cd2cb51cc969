//! Several endpoints: round-robin over those that are up, failover when one
//! dies, load back on it when it returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::json;
use switchboard_client::{Client, Error, State};

use crate::support::{Conn, RawServer, within};

/// A server answering every call with its name, counting the calls it got.
fn named(
    name: &'static str,
    calls: Arc<AtomicU64>,
) -> impl Fn(Conn) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    move |conn| {
        let calls = Arc::clone(&calls);
        Box::pin(conn.serve(move |req| {
            if req.get("id").is_some() {
                calls.fetch_add(1, Ordering::SeqCst);
            }
            Ok(json!(name))
        }))
    }
}

fn counts(a: &AtomicU64, b: &AtomicU64) -> (u64, u64) {
    (a.load(Ordering::SeqCst), b.load(Ordering::SeqCst))
}

async fn calls(client: &Client, n: usize) -> Vec<String> {
    let mut answers = Vec::with_capacity(n);
    for _ in 0..n {
        answers.push(within("a call", client.call::<String>("who", ())).await.expect("every call succeeds"));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_endpoints_share_calls_survive_one_being_killed_and_the_returning_one_takes_load_again() {
    let (a_calls, b_calls) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let a = RawServer::start(named("a", Arc::clone(&a_calls))).await;
    let b = RawServer::start(named("b", Arc::clone(&b_calls))).await;
    let b_addr = b.addr();
    let client = Client::builder().endpoints([a.url(), b.url()]).connect().await.unwrap();
    let mut each = client.watch_endpoints();
    within("both up", each.wait_for(|s| s.iter().all(|s| *s == State::Ready))).await.unwrap();

    // Both up: calls alternate.
    calls(&client, 100).await;
    assert_eq!(counts(&a_calls, &b_calls), (50, 50));

    // Calls keep running while B is killed.
    let stop = Arc::new(AtomicBool::new(false));
    let (running_tx, running) = tokio::sync::oneshot::channel();
    let background = {
        let (client, stop) = (client.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut running_tx = Some(running_tx);
            while !stop.load(Ordering::SeqCst) {
                outcomes.push(client.call::<String>("who", ()).await);
                if let Some(tx) = running_tx.take() {
                    let _ = tx.send(());
                }
            }
            outcomes
        })
    };
    // On a busy machine the task may not have run yet: B dies while it calls.
    within("the background calls started", running).await.unwrap();
    b.kill().await;
    within("B seen down", each.wait_for(|s| s[1] != State::Ready)).await.unwrap();
    assert_eq!(client.state(), State::Ready, "the client stays ready while A is up");

    stop.store(true, Ordering::SeqCst);
    let outcomes = within("the background calls", background).await.unwrap();
    for outcome in &outcomes {
        // Only a call caught in flight on B when it died may fail, and only as Disconnected.
        assert!(matches!(outcome, Ok(_) | Err(Error::Disconnected)), "{outcome:?}");
    }
    assert!(outcomes.iter().any(Result::is_ok));

    let before = counts(&a_calls, &b_calls);
    assert!(calls(&client, 100).await.iter().all(|who| who == "a"));
    assert_eq!(counts(&a_calls, &b_calls), (before.0 + 100, before.1), "everything goes to A");

    // B comes back and takes its share again.
    let _b = RawServer::start_on(b_addr, named("b", Arc::clone(&b_calls))).await;
    within("B back", each.wait_for(|s| s[1] == State::Ready)).await.unwrap();
    let before = counts(&a_calls, &b_calls);
    calls(&client, 100).await;
    let after = counts(&a_calls, &b_calls);
    assert_eq!((after.0 - before.0, after.1 - before.1), (50, 50));
    assert_eq!(client.endpoints()[1].connections, 2);
    assert_eq!(client.endpoints()[0].connections, 1);
}

#[tokio::test]
async fn a_client_with_one_endpoint_down_from_the_start_works_on_the_others() {
    let a_calls = Arc::new(AtomicU64::new(0));
    let a = RawServer::start(named("a", Arc::clone(&a_calls))).await;
    let down = crate::support::free_addr().await;
    let client = Client::builder().endpoints([format!("ws://{down}/rpc"), a.url()]).connect().await.unwrap();

    assert!(calls(&client, 10).await.iter().all(|who| who == "a"));
    assert_eq!(a_calls.load(Ordering::SeqCst), 10);
    assert_ne!(client.endpoints()[0].state, State::Ready);
}
