//! An HTTP/1.1 client connection for the tests of JSON-RPC over HTTP: one
//! TCP (or TLS) connection kept alive across requests, so a test sees
//! exactly what one client on one connection gets.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::guard;

/// What the server answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// A header's value as text ("" when absent).
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// One HTTP/1.1 connection; requests go out one after another on it.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
    /// The connection's task: it ends when the connection does.
    task: tokio::task::JoinHandle<()>,
}

impl Conn {
    /// A plain TCP connection to `addr`.
    pub(crate) async fn open(addr: SocketAddr) -> Conn {
        let tcp = guard("connect", TcpStream::connect(addr)).await.expect("connect");
        Conn::over(tcp, addr.to_string()).await
    }

    /// A TLS connection to `addr`, trusting `root` (PEM), for server name `localhost`.
    pub(crate) async fn open_tls(addr: SocketAddr, root: &str) -> Conn {
        let tcp = guard("connect", TcpStream::connect(addr)).await.expect("connect");
        let tls = guard("TLS handshake", tls_connector(root).connect("localhost".try_into().unwrap(), tcp))
            .await
            .expect("TLS handshake");
        Conn::over(tls, format!("localhost:{}", addr.port())).await
    }

    async fn over<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: S, authority: String) -> Conn {
        let (sender, connection) =
            guard("HTTP handshake", http1::handshake(TokioIo::new(io))).await.expect("handshake");
        let task = tokio::spawn(async move {
            let _ = connection.with_upgrades().await;
        });
        Conn { sender, authority, task }
    }

    /// POSTs `body` to `/` with `Content-Type: application/json`.
    pub(crate) async fn post(&mut self, body: &str) -> Answer {
        self.send(Method::POST, &[("content-type", "application/json")], body).await
    }

    /// Sends a request to `/` with these headers and body.
    pub(crate) async fn send(&mut self, method: Method, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut request = Request::builder().method(method).uri("/").header("host", &self.authority);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        guard("ready to send", self.sender.ready()).await.expect("the connection is still open");
        let response = guard("the answer", self.sender.send_request(request)).await.expect("an answer");
        let (parts, body) = response.into_parts();
        let body = guard("the body", body.collect()).await.expect("the body").to_bytes();
        Answer { status: parts.status, headers: parts.headers, body: String::from_utf8(body.to_vec()).unwrap() }
    }

    /// Whether the server has closed the connection.
    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Waits (within the hang guard) until the server has ended the
    /// connection (the sender is kept meanwhile: dropping it would end it
    /// from this side).
    pub(crate) async fn ended(self) {
        let Conn { sender, task, .. } = self;
        guard("the connection to end", task).await.expect("the connection task");
        drop(sender);
    }
}

/// A TLS client trusting only `root` (PEM).
pub(crate) fn tls_connector(root: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(root.as_bytes()) {
        roots.add(cert.expect("a PEM certificate")).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}
