//! The basics every server test binary shares: the plain client socket type
//! and the hang guard.

#[cfg(feature = "tls")]
#[allow(dead_code, reason = "each test binary uses its own share of the helpers")]
pub(crate) mod certs;
#[cfg(feature = "web")]
#[allow(dead_code, reason = "each test binary uses its own share of the helpers")]
pub(crate) mod http;
#[cfg(feature = "http")]
#[allow(dead_code, reason = "each test binary uses its own share of the helpers")]
pub(crate) mod post;

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A plain client socket.
#[allow(dead_code, reason = "each test binary uses its own share of the helpers")]
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The hang guard: generous, so a busy machine never trips it.
pub(crate) const GUARD: Duration = Duration::from_secs(20);

/// Awaits `f`, failing the test if it takes longer than the hang guard.
pub(crate) async fn guard<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(GUARD, f).await {
        Ok(out) => out,
        Err(_) => panic!("hang guard: {what} did not happen within {GUARD:?}"),
    }
}
