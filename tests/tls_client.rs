//! The Rust client against a hub that serves TLS in the process: calls and
//! a subscription over `wss://`, one-off calls over `https://` with
//! `HttpClient`, and a certificate the client does not trust refused with
//! an error that says so. Certificates are made at run time (rcgen); every
//! wait is on an event, timeouts are only hang guards.

use std::time::Duration;

use serde_json::json;
use switchboard::client::{AttemptError, Client, ConnectError, HttpClient, HttpError};
use switchboard::server::{Server, ServerHandle, TlsConfig};
use switchboard::shared::{Context, ErrorObject, Methods};

mod support;

use support::certs::TestCerts;

const GUARD: Duration = Duration::from_secs(30);

async fn guard<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(GUARD, f).await.unwrap_or_else(|_| panic!("hang guard: {what}"))
}

async fn hub(certs: &TestCerts) -> (ServerHandle, u16) {
    let mut methods = Methods::new();
    methods.register_sync("add", |(a, b): (i64, i64), _cx: Context| Ok::<_, ErrorObject>(a + b));
    let tls = TlsConfig::from_pem_files(certs.cert_file(), certs.key_file()).expect("a valid pair");
    let server = Server::builder().tls(tls).build(methods).listen("127.0.0.1:0").await.expect("listen");
    let port = server.local_addr().expect("bound").port();
    (server, port)
}

#[tokio::test]
async fn a_call_and_a_subscription_over_wss() {
    let certs = TestCerts::make();
    let (server, port) = hub(&certs).await;
    let client = guard(
        "connect",
        Client::builder().endpoint(format!("wss://localhost:{port}/")).root_certificate(&certs.ca).connect(),
    )
    .await
    .expect("connects over wss with the CA");

    let sum: i64 = guard("a call", client.call("add", [2, 3])).await.unwrap();
    assert_eq!(sum, 5);

    let mut news = guard("subscribe", client.subscribe("news")).await.expect("subscribed");
    server.publish("news", "news", json!({"headline": "over TLS"})).unwrap();
    let update = guard("a publication", news.next()).await.expect("one publication").expect("not an error");
    assert_eq!(update.params::<serde_json::Value>().unwrap(), json!({"headline": "over TLS"}));
    client.close().await;
}

#[tokio::test]
async fn https_calls_and_batches_with_http_client() {
    let certs = TestCerts::make();
    let (_server, port) = hub(&certs).await;
    let hub = HttpClient::builder(format!("https://localhost:{port}/")).root_certificate(&certs.ca).build().unwrap();
    let sum: i64 = guard("a call", hub.call("add", [20, 22])).await.unwrap();
    assert_eq!(sum, 42);
    let answers = guard(
        "a batch",
        hub.batch().call("add", [1, 1]).notify("add", [0, 0]).call("missing", ()).call("add", [2, 2]).send(),
    )
    .await
    .unwrap();
    assert_eq!(answers.len(), 3, "one result per call, in order");
    assert_eq!(answers[0].as_ref().unwrap().get(), "2");
    assert_eq!(answers[1].as_ref().unwrap_err().rpc().unwrap().code, -32601);
    assert_eq!(answers[2].as_ref().unwrap().get(), "4");
    guard("a notification", hub.notify("add", [1, 2])).await.unwrap();
}

#[tokio::test]
async fn a_certificate_the_client_does_not_trust_is_refused_with_a_clear_error() {
    let certs = TestCerts::make();
    let (_server, port) = hub(&certs).await;

    let refused = guard("connect", Client::builder().endpoint(format!("wss://localhost:{port}/")).connect()).await;
    let Err(ConnectError::Unreachable { failures }) = refused else { panic!("expected a refusal, got {refused:?}") };
    let (_, why) = &failures[0];
    assert!(matches!(why, AttemptError::Tls(_)), "{why}");
    assert!(why.to_string().contains("invalid peer certificate"), "{why}");

    let http = HttpClient::new(format!("https://localhost:{port}/")).unwrap();
    let refused = guard("a call", http.call::<i64>("add", [1, 1])).await.unwrap_err();
    assert!(matches!(refused, HttpError::Tls(_)), "{refused:?}");
    assert!(refused.to_string().contains("invalid peer certificate: UnknownIssuer"), "{refused}");

    // Another CA's certificate is not the hub's either.
    let stranger = TestCerts::make();
    let http =
        HttpClient::builder(format!("https://localhost:{port}/")).root_certificate(&stranger.ca).build().unwrap();
    assert!(matches!(guard("a call", http.call::<i64>("add", [1, 1])).await, Err(HttpError::Tls(_))));

    let not_pem = Client::builder().endpoint(format!("wss://localhost:{port}/")).root_certificate("hello").build();
    assert!(matches!(not_pem, Err(ConnectError::InvalidCertificate { .. })));
}
