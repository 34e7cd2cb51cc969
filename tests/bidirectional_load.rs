//! The contract's `callback` method between Switchboard's real server and
//! client: calls whose handlers call their caller back, far beyond the
//! server's in-flight bound, all complete; the caller's error comes back as
//! the error; a cancelled call frees the server's only slot at once.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};
use switchboard::client::{Client, Error};
use switchboard::demo::contract_methods;
use switchboard::server::{Server, ServerHandle};
use switchboard::shared::{Context, ErrorObject, Methods};

/// Hang guard: far longer than anything here should take on a busy machine.
const GUARD: Duration = Duration::from_secs(60);

async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(GUARD, future).await.unwrap_or_else(|_| panic!("hung for {GUARD:?}: {what}"))
}

async fn hub(max_in_flight: usize) -> ServerHandle {
    Server::builder().max_in_flight(max_in_flight).build(contract_methods()).listen("127.0.0.1:0").await.unwrap()
}

/// A client whose `client.name` answers after yielding, and `client.refuse` errs.
async fn client(server: &ServerHandle) -> Client {
    let mut methods = Methods::new();
    methods.register("client.name", |(who,): (String,), _cx: Context| async move {
        tokio::task::yield_now().await;
        Ok::<_, ErrorObject>(format!("hello {who}"))
    });
    methods.register_sync("client.refuse", |(): (), _cx: Context| {
        Err::<(), _>(ErrorObject::new(4001, "not today").with_data(json!({"retry": false})))
    });
    let url = format!("ws://{}/", server.local_addr().unwrap());
    within("connect", Client::builder().endpoint(url).methods(methods).connect()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_times_max_in_flight_callbacks_on_one_connection_all_succeed() {
    let server = hub(8).await;
    let client = client(&server).await;
    let calls = (0..80).map(|i| {
        let client = client.clone();
        async move { client.call::<String>("callback", json!(["client.name", [format!("#{i}")]])).await }
    });
    let results = within("80 callbacks", join_all(calls)).await;
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result.expect("no call waits for a timeout"), format!("hello #{i}"));
    }
}

#[tokio::test]
async fn a_callback_error_comes_back_as_the_calls_error_unchanged() {
    let server = hub(256).await;
    let client = client(&server).await;
    let err = within("callback", async { client.call::<Value>("callback", json!(["client.refuse", []])).await })
        .await
        .unwrap_err();
    let Error::Rpc(object) = err else { panic!("expected the client's own error, got {err}") };
    assert_eq!(object, ErrorObject::new(4001, "not today").with_data(json!({"retry": false})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleep_cancelled_after_100_ms_frees_the_only_slot_at_once() {
    let server = hub(1).await;
    let client = client(&server).await;
    let err = client.call::<u64>("sleep", [10_000]).timeout(Duration::from_millis(100)).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    // Far sooner than the 10 s sleep: the slot was freed by the cancellation.
    let quick = tokio::time::timeout(Duration::from_secs(5), client.call::<u64>("sleep", [1])).await;
    assert_eq!(quick.expect("the next call ran at once").unwrap(), 1);
}
