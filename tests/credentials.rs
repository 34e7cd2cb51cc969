//! Expiring credentials with Switchboard's own client and server, on
//! loopback: tokens valid for one second, refreshed through the client's
//! token provider (`rpc.refresh`) without a reconnect; fetched afresh on
//! every reconnect; and a client without a provider closed (4401) once the
//! grace period is over. Every wait is on an event; timeouts are hang guards.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchboard::client::{AttemptError, Client, ConnectError, Reconnect, State};
use switchboard::server::{Identity, Rejection, Server, ServerBuilder, ServerHandle, UpgradeRequest};
use switchboard::shared::{CloseReason, Context, ErrorObject, Methods};
use tokio::sync::mpsc;

const GUARD: Duration = Duration::from_secs(30);
const TTL: Duration = Duration::from_secs(1);

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(GUARD, future).await.unwrap_or_else(|_| panic!("hung for {GUARD:?}: {what}"))
}

/// A check the authenticator made: the token, and the connection it
/// refreshes (`None` for an upgrade).
type Check = (String, Option<uuid::Uuid>);

/// Accepts tokens starting with `t-` for a second; reports every check.
fn expiring(builder: ServerBuilder) -> (ServerBuilder, mpsc::UnboundedReceiver<Check>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let builder = builder.authenticate(move |request: &UpgradeRequest| {
        let token = request.bearer_token().unwrap_or_default().to_owned();
        let _ = tx.send((token.clone(), request.refreshing()));
        if token.starts_with("t-") {
            Ok(Identity::new().expires_in(TTL))
        } else {
            Err(Rejection::Forbidden("unknown token".into()))
        }
    });
    (builder, rx)
}

fn methods() -> Methods {
    let mut methods = Methods::new();
    methods.register_sync("whoami", |(): (), cx: Context| Ok::<_, ErrorObject>(cx.connection_id().to_string()));
    methods.register_sync("kick", |(): (), cx: Context| {
        cx.peer().close(4000, "kicked");
        Ok::<_, ErrorObject>(())
    });
    methods
}

async fn serve(builder: ServerBuilder) -> (ServerHandle, String) {
    let server = builder.build(methods()).listen("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", server.local_addr().unwrap());
    (server, url)
}

/// A token provider giving `t-1`, `t-2`, ... and reporting each on a channel.
fn counting_provider()
-> (impl Fn() -> std::future::Ready<Result<String, String>> + Send + Sync + 'static, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let issued = Arc::new(AtomicU64::new(0));
    let provider = move || {
        let token = format!("t-{}", issued.fetch_add(1, Ordering::SeqCst) + 1);
        let _ = tx.send(token.clone());
        std::future::ready(Ok(token))
    };
    (provider, rx)
}

#[tokio::test]
async fn a_token_provider_keeps_the_connection_alive_across_expiries() {
    let (builder, mut checks) = expiring(Server::builder());
    let (_server, url) = serve(builder).await;
    let (provider, mut issued) = counting_provider();
    let client = within("connect", Client::builder().endpoint(&url).token_provider(provider).connect()).await.unwrap();
    let connection: String = client.call("whoami", ()).await.unwrap();
    assert_eq!(within("the token for the upgrade", issued.recv()).await.unwrap(), "t-1");

    assert_eq!(within("the upgrade's check", checks.recv()).await.unwrap(), ("t-1".to_owned(), None));
    // Each second the server asks for a fresh token, which the provider gives.
    let id: uuid::Uuid = connection.parse().unwrap();
    for fresh in ["t-2", "t-3"] {
        assert_eq!(within("the refresh check", checks.recv()).await.unwrap(), (fresh.to_owned(), Some(id)));
    }
    assert_eq!(issued.recv().await.unwrap(), "t-2");
    assert_eq!(issued.recv().await.unwrap(), "t-3");
    // Still the first and only connection.
    assert_eq!(client.call::<String>("whoami", ()).await.unwrap(), connection);
    assert_eq!(client.endpoints()[0].connections, 1);
}

#[tokio::test]
async fn the_client_fetches_a_fresh_token_for_every_reconnect() {
    let (builder, mut checks) = expiring(Server::builder());
    let (_server, url) = serve(builder).await;
    let (provider, _issued) = counting_provider();
    let client = within("connect", Client::builder().endpoint(&url).token_provider(provider).connect()).await.unwrap();
    assert_eq!(within("the first upgrade", checks.recv()).await.unwrap(), ("t-1".to_owned(), None));

    // The server drops the connection (the close may beat the answer).
    let _ = client.call::<()>("kick", ()).await;
    assert_eq!(within("the second upgrade", checks.recv()).await.unwrap(), ("t-2".to_owned(), None));
    within("the reconnect", client.watch_state().wait_for(|s| *s == State::Ready)).await.unwrap();
    assert_eq!(client.endpoints()[0].connections, 2);
}

#[tokio::test]
async fn a_client_without_a_token_provider_is_closed_with_4401_after_the_grace_period() {
    let grace = Duration::from_millis(500);
    let (builder, _checks) = expiring(Server::builder().refresh_grace(grace));
    let (disconnected_tx, mut disconnected) = mpsc::unbounded_channel();
    let builder = builder.on_disconnect(move |_peer, reason| {
        let _ = disconnected_tx.send(reason.clone());
    });
    let (_server, url) = serve(builder).await;
    let started = Instant::now();
    let client =
        within("connect", Client::builder().endpoint(&url).token("t-static").reconnect(Reconnect::Never).connect())
            .await
            .unwrap();
    let mut state = client.watch_state();
    within("the close", state.wait_for(|s| *s == State::Closed)).await.unwrap();
    assert!(started.elapsed() >= TTL + grace, "closed after {:?}", started.elapsed());
    assert_eq!(
        within("on_disconnect", disconnected.recv()).await.unwrap(),
        CloseReason::Local { code: 4401, reason: "credentials expired".into() }
    );
}

#[tokio::test]
async fn a_failing_token_provider_fails_the_attempt_with_its_own_error() {
    let (builder, _checks) = expiring(Server::builder());
    let (_server, url) = serve(builder).await;
    let failed = Client::builder()
        .endpoint(&url)
        .token_provider(|| async { Err::<String, _>("the vault is unreachable") })
        .reconnect(Reconnect::Never)
        .connect()
        .await
        .unwrap_err();
    match &failed {
        ConnectError::Unreachable { failures } => {
            assert!(
                matches!(&failures[..], [(_, AttemptError::TokenProvider(why))] if why == "the vault is unreachable"),
                "{failed}"
            );
        }
        other => panic!("expected Unreachable, got {other}"),
    }
    assert_eq!(
        failed.to_string(),
        format!("could not connect to {url}: the token provider failed: the vault is unreachable")
    );
}
