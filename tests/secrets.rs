//! Secrets stay secret: `Authorization` headers, `token` query parameters
//! and `rpc.refresh` answers never appear in logs, `Debug` output or error
//! messages. A whole scenario runs with every log record captured at
//! `trace` (the WebSocket library's `log` records included, through
//! `switchboard::logging`'s filter) over real loopback sockets: clients
//! accepted with a header token and with a query token, one refused for
//! each, a connection refreshed through a token provider; the authenticator
//! and a handler log the request and the connection as `Debug`. Every
//! secret contains `SECRET`, which must appear nowhere. The same scenario
//! without the filter's cap shows that the capture would catch a leak.

mod support;

use std::time::Duration;

use support::logs::Buffer;
use switchboard::client::{Client, Reconnect};
use switchboard::server::{Identity, Rejection, Server, UpgradeRequest};
use switchboard::shared::{Context, ErrorObject, Methods};
use tokio::sync::mpsc;
use tracing_subscriber::EnvFilter;

const GUARD: Duration = Duration::from_secs(30);

const HEADER_TOKEN: &str = "hdr-SECRET-1f9a";
const QUERY_TOKEN: &str = "qry-SECRET-2c7e";
const PROVIDED_TOKEN: &str = "prov-SECRET-4b8d";
const REFRESHED_TOKEN: &str = "ref-SECRET-3d1b";
const WRONG_HEADER_TOKEN: &str = "bad-SECRET-5e2f";
const WRONG_QUERY_TOKEN: &str = "bad-SECRET-6a0c";

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(GUARD, future).await.unwrap_or_else(|_| panic!("hung for {GUARD:?}: {what}"))
}

/// The scenario; returns the error messages and `Debug` output it made.
async fn scenario() -> Vec<String> {
    let mut texts = Vec::new();
    let (refreshed_tx, mut refreshed) = mpsc::unbounded_channel();
    let mut methods = Methods::new();
    methods.register_sync("whoami", |(): (), cx: Context| {
        tracing::info!(info = ?cx.info(), "whoami");
        Ok::<_, ErrorObject>(format!("{:?}", cx.info()))
    });
    let server = Server::builder()
        .authenticate(move |request: &UpgradeRequest| {
            tracing::info!(?request, "authenticating");
            let token = request
                .bearer_token()
                .map(str::to_owned)
                .or_else(|| request.query_param("token").map(|t| t.into_owned()))
                .unwrap_or_default();
            if request.refreshing().is_some() {
                let _ = refreshed_tx.send(());
            }
            match token.split('-').next() {
                Some("hdr" | "qry" | "ref") => Ok(Identity::new()),
                // Expires at once: the server asks for a fresh one.
                Some("prov") => Ok(Identity::new().expires_in(Duration::from_millis(100))),
                _ => Err(Rejection::Forbidden("unknown token".into())),
            }
        })
        .build(methods)
        .listen("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();

    // Accepted with a header token, and with a query token.
    let header = Client::builder().endpoint(format!("ws://{addr}/")).token(HEADER_TOKEN);
    texts.push(format!("{header:?}"));
    let header = within("connect", header.connect()).await.unwrap();
    texts.push(within("whoami", header.call::<String>("whoami", ())).await.unwrap());
    let query = Client::builder().endpoint(format!("ws://{addr}/rpc?token={QUERY_TOKEN}"));
    texts.push(format!("{query:?}"));
    let query = within("connect", query.connect()).await.unwrap();
    texts.push(within("whoami", query.call::<String>("whoami", ())).await.unwrap());
    texts.push(format!("{query:?} {:?}", query.endpoints()));

    // Refused with a wrong header token, and with a wrong query token.
    for builder in [
        Client::builder().endpoint(format!("ws://{addr}/")).token(WRONG_HEADER_TOKEN),
        Client::builder().endpoint(format!("ws://{addr}/?token={WRONG_QUERY_TOKEN}")),
    ] {
        let refused = within("refusal", builder.reconnect(Reconnect::Never).connect()).await.unwrap_err();
        texts.push(format!("{refused} / {refused:?}"));
    }

    // A connection whose token expires is refreshed through the provider.
    let refreshing = Client::builder().endpoint(format!("ws://{addr}/")).token_provider(|| {
        static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let first = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst).is_multiple_of(2);
        async move { Ok::<_, String>(if first { PROVIDED_TOKEN } else { REFRESHED_TOKEN }.to_owned()) }
    });
    let refreshing = within("connect", refreshing.connect()).await.unwrap();
    within("the refresh", refreshed.recv()).await.unwrap();
    texts.push(within("whoami", refreshing.call::<String>("whoami", ())).await.unwrap());

    for client in [header, query, refreshing] {
        client.close().await;
    }
    within("shutdown", server.shutdown(Duration::from_secs(1))).await;
    texts
}

/// Runs the scenario with every record `filter` lets through written to a
/// buffer (on one thread: the runtime's tasks, so their records, are all
/// here); returns the records and the scenario's texts.
fn run_captured(filter: EnvFilter) -> (String, Vec<String>) {
    let buffer = Buffer::default();
    let subscriber =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(buffer.clone()).with_ansi(false).finish();
    let texts = tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(scenario())
    });
    let logs = buffer.text();
    (logs, texts)
}

#[test]
fn secrets_never_appear_in_logs_debug_output_or_error_messages() {
    // The WebSocket library logs through the `log` crate: capture it too.
    tracing_log::LogTracer::init().expect("the only logger of this test binary");

    let (logs, texts) = run_captured(switchboard::logging::filter_from("trace"));
    if let Some(leak) = logs.lines().find(|line| line.contains("SECRET")) {
        panic!("a secret in the logs: {leak}");
    }
    for text in &texts {
        assert!(!text.contains("SECRET"), "a secret in Debug output or an error message: {text}");
    }
    // The records were captured, secrets redacted where they would have been.
    for expected in ["authenticating", "connection rejected", "credentials refreshed", "token=[redacted]", "Sensitive"]
    {
        assert!(logs.contains(expected), "no {expected:?} in the logs:\n{logs}");
    }
    assert!(texts.iter().any(|t| t.contains("token=[redacted]")), "{texts:#?}");

    // Without the cap, the WebSocket library's trace records (frames, the
    // client's upgrade request) would have printed them: the capture works.
    let (uncapped, _) = run_captured(EnvFilter::new("trace"));
    assert!(uncapped.contains("SECRET"), "the uncapped capture should show what the cap prevents");
}
