//! TLS in the process (features `tls` and `http`): one port serves `wss://`
//! and `https://`, with certificates made at run time (rcgen). A rustls
//! client over loopback; every wait is on an event, timeouts are only hang
//! guards.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use serde_json::{Value, json};
use switchboard_server::{Server, ServerBuilder, ServerHandle, TlsConfig};
use switchboard_shared::{Context, ErrorObject, Methods};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

mod support;

use support::certs::{self, TestCerts};
use support::guard;
use support::post::{Conn, tls_connector};

fn methods() -> Methods {
    let mut methods = Methods::new();
    methods.register_sync("add", |(a, b): (i64, i64), _cx: Context| Ok::<_, ErrorObject>(a + b));
    methods
}

async fn serve(builder: ServerBuilder, certs: &TestCerts) -> (ServerHandle, SocketAddr) {
    let tls = TlsConfig::from_pem(certs.cert.as_bytes(), certs.key.as_bytes()).expect("a valid pair");
    let hub = builder.tls(tls).build(methods()).listen("127.0.0.1:0").await.expect("listen on port 0");
    let addr = hub.local_addr().expect("bound");
    (hub, addr)
}

#[tokio::test]
async fn one_port_serves_wss_and_https() {
    let certs = certs::make();
    let (hub, addr) = serve(Server::builder(), &certs).await;

    let mut https = Conn::open_tls(addr, &certs.ca).await;
    let answer = https.post(r#"{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"#).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["result"], 5);
    let again = https.post(r#"{"jsonrpc":"2.0","method":"add","params":[4,4],"id":2}"#).await;
    assert_eq!(again.json()["result"], 8, "kept alive over TLS");

    let tcp = guard("connect", TcpStream::connect(addr)).await.unwrap();
    let tls = guard("TLS", tls_connector(&certs.ca).connect("localhost".try_into().unwrap(), tcp)).await.unwrap();
    let url = format!("wss://localhost:{}/", addr.port());
    let (mut ws, _) = guard("upgrade", tokio_tungstenite::client_async(url, tls)).await.expect("upgrade over TLS");
    ws.send(Message::text(json!({"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 7}).to_string()))
        .await
        .unwrap();
    let reply = loop {
        match guard("a reply", ws.next()).await {
            Some(Ok(Message::Text(text))) => break serde_json::from_str::<Value>(&text).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("no reply: {other:?}"),
        }
    };
    assert_eq!(reply, json!({"jsonrpc": "2.0", "result": 3, "id": 7}));
    assert_eq!(hub.connections().len(), 1);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_refused_and_others_are_not_hurt() {
    let certs = certs::make();
    let (_hub, addr) = serve(Server::builder(), &certs).await;

    let stranger = certs::make();
    let tcp = guard("connect", TcpStream::connect(addr)).await.unwrap();
    let refused = guard("TLS", tls_connector(&stranger.ca).connect("localhost".try_into().unwrap(), tcp)).await;
    let error = refused.expect_err("another CA's client refuses the server");
    assert!(error.to_string().contains("invalid peer certificate"), "{error}");

    // Plain HTTP to the TLS port: not served, the connection is closed.
    let mut plain = guard("connect", TcpStream::connect(addr)).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut plain, b"POST / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut rest = Vec::new();
    let _ = guard("the close", plain.read_to_end(&mut rest)).await;
    assert!(!String::from_utf8_lossy(&rest).contains("200 OK"));

    let mut https = Conn::open_tls(addr, &certs.ca).await;
    assert_eq!(https.post(r#"{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1}"#).await.json()["result"], 2);
}

#[tokio::test]
async fn a_client_that_never_starts_the_tls_handshake_is_dropped_after_the_handshake_timeout() {
    let certs = certs::make();
    let (_hub, addr) = serve(Server::builder().handshake_timeout(Duration::from_millis(200)), &certs).await;
    let mut silent = guard("connect", TcpStream::connect(addr)).await.unwrap();
    let mut rest = Vec::new();
    // Without the bound this read would wait forever (and trip the hang guard).
    let _ = guard("the server to drop it", silent.read_to_end(&mut rest)).await;
    assert!(rest.is_empty(), "closed without an answer: {rest:?}");
}

#[cfg(feature = "web")]
#[tokio::test]
async fn the_web_server_serves_https_with_the_hubs_tls_identity() {
    let certs = certs::make();
    let tls = TlsConfig::from_pem(certs.cert.as_bytes(), certs.key.as_bytes()).unwrap();
    let hub = Server::builder().tls(tls).build(methods()).handle();
    let addr = switchboard_server::web::WebServer::new(hub.clone()).hub_path("/").listen("127.0.0.1:0").await.unwrap();
    let mut https = Conn::open_tls(addr, &certs.ca).await;
    let answer = https.post(r#"{"jsonrpc":"2.0","method":"add","params":[20,22],"id":1}"#).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["result"], 42);
}
