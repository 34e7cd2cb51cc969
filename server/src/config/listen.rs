//! Where a server listens: [`Listen`] (what to bind, parsed from a URL),
//! [`Listening`] (what was bound, as a URL again), and [`RawSockets`] (whether
//! listeners that carry no credentials may start beside an authenticator).
//!
//! Terms:
//! - a **WebSocket** listener (`ws://HOST:PORT`, or a bare `HOST:PORT`) runs
//!   the HTTP upgrade with every admission check;
//! - a **raw socket** listener (`tcp://HOST:PORT`, `unix:/path`) carries
//!   newline-delimited JSON-RPC: one JSON text per line, both ways, on the
//!   same engine. It has no request head, so no origin, no headers, no
//!   token: an authenticator cannot run on it (see [`RawSockets`]).

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// What a server listens on; parsed from a URL (`ws://HOST:PORT`,
/// `tcp://HOST:PORT`, `unix:/path`, or a bare `HOST:PORT` for WebSocket).
///
/// ```
/// use switchboard_server::Listen;
/// assert_eq!("127.0.0.1:9000".parse::<Listen>().unwrap(), Listen::WebSocket("127.0.0.1:9000".into()));
/// assert_eq!("tcp://[::1]:9001".parse::<Listen>().unwrap(), Listen::Tcp("[::1]:9001".into()));
/// assert_eq!("unix:/run/hub.sock".parse::<Listen>().unwrap(), Listen::Unix("/run/hub.sock".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Listen {
    /// WebSocket (the upgrade on any path) on `HOST:PORT`; port 0 picks a free one.
    WebSocket(String),
    /// Newline-delimited JSON-RPC on raw TCP, `HOST:PORT`.
    Tcp(String),
    /// Newline-delimited JSON-RPC on a Unix socket at this path. A stale
    /// socket file (nobody answers on it) is replaced; the file is removed
    /// when the server stops.
    Unix(PathBuf),
}

/// A listen address that is not one of the forms [`Listen`] takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot listen on {given:?}: {reason} (expected ws://HOST:PORT, tcp://HOST:PORT, unix:/PATH or HOST:PORT)")]
pub struct InvalidListen {
    /// The address as given.
    pub given: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for Listen {
    type Err = InvalidListen;

    fn from_str(given: &str) -> Result<Self, InvalidListen> {
        let invalid = |reason: &str| InvalidListen { given: given.to_owned(), reason: reason.to_owned() };
        if let Some(path) = given.strip_prefix("unix:") {
            // `unix:///run/hub.sock` is `/run/hub.sock` too.
            let path = path.strip_prefix("//").filter(|p| p.starts_with('/')).unwrap_or(path);
            if path.is_empty() {
                return Err(invalid("a Unix socket needs a path"));
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        let (scheme, rest) = match given.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, given),
        };
        let host_port = rest.strip_suffix('/').unwrap_or(rest);
        if host_port.is_empty() {
            return Err(invalid("it names no host and port"));
        }
        if host_port.contains('/') {
            return Err(invalid("a listen address has no path (the WebSocket upgrade is answered on every path)"));
        }
        if host_port.rsplit_once(':').is_none_or(|(_, port)| port.parse::<u16>().is_err()) {
            return Err(invalid("it needs a port (0 picks a free one)"));
        }
        match scheme {
            None | Some("ws") => Ok(Listen::WebSocket(host_port.to_owned())),
            Some("tcp") => Ok(Listen::Tcp(host_port.to_owned())),
            Some(other) => Err(invalid(&format!("the scheme {other:?} is not served here"))),
        }
    }
}

impl TryFrom<&str> for Listen {
    type Error = InvalidListen;
    fn try_from(given: &str) -> Result<Self, InvalidListen> {
        given.parse()
    }
}

impl TryFrom<String> for Listen {
    type Error = InvalidListen;
    fn try_from(given: String) -> Result<Self, InvalidListen> {
        given.parse()
    }
}

impl TryFrom<&String> for Listen {
    type Error = InvalidListen;
    fn try_from(given: &String) -> Result<Self, InvalidListen> {
        given.parse()
    }
}

impl From<SocketAddr> for Listen {
    /// WebSocket on `addr`.
    fn from(addr: SocketAddr) -> Self {
        Listen::WebSocket(addr.to_string())
    }
}

impl From<Infallible> for InvalidListen {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::WebSocket(addr) => write!(f, "ws://{addr}/"),
            Listen::Tcp(addr) => write!(f, "tcp://{addr}"),
            Listen::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A listener the server has bound, as [`ServerHandle::listening`](crate::ServerHandle::listening)
/// reports it; its `Display` is the URL a client connects to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Listening {
    /// `ws://ADDR/`.
    WebSocket(SocketAddr),
    /// `tcp://ADDR`.
    Tcp(SocketAddr),
    /// `unix:PATH`.
    Unix(PathBuf),
}

impl Listening {
    /// The TCP address, for `ws://` and `tcp://`.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            Listening::WebSocket(addr) | Listening::Tcp(addr) => Some(*addr),
            Listening::Unix(_) => None,
        }
    }
}

impl fmt::Display for Listening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listening::WebSocket(addr) => write!(f, "ws://{addr}/"),
            Listening::Tcp(addr) => write!(f, "tcp://{addr}"),
            Listening::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Whether raw socket listeners (`tcp://`, `unix:`) may start on a server
/// with an authenticator. A raw socket carries no request head (no
/// `Authorization`, no query, no cookies), so the authenticator cannot run
/// on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RawSockets {
    /// The default: with an authenticator set, listening on a raw socket
    /// fails with `ListenError::NoCredentials` (serving it would let anyone
    /// who reaches it past the authenticator). Without an authenticator raw
    /// sockets are served like WebSocket connections.
    #[default]
    RefuseWithAuthenticator,
    /// Serve raw sockets without authentication even when an authenticator
    /// is set: their connections have no identity (`Context::auth()` is
    /// `None`). For a Unix socket guarded by its file permissions, or a
    /// network you trust.
    AllowUnauthenticated,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_and_prints_back_as_a_url() {
        for (given, shown) in [
            ("ws://0.0.0.0:9000", "ws://0.0.0.0:9000/"),
            ("ws://localhost:9000/", "ws://localhost:9000/"),
            ("127.0.0.1:0", "ws://127.0.0.1:0/"),
            ("tcp://127.0.0.1:7000", "tcp://127.0.0.1:7000"),
            ("unix:/run/hub.sock", "unix:/run/hub.sock"),
            ("unix:///run/hub.sock", "unix:/run/hub.sock"),
            ("unix:hub.sock", "unix:hub.sock"),
        ] {
            assert_eq!(given.parse::<Listen>().unwrap().to_string(), shown, "{given}");
        }
    }

    #[test]
    fn a_bad_address_says_what_is_wrong() {
        for (given, why) in [
            ("unix:", "needs a path"),
            ("tcp://", "no host"),
            ("tcp://127.0.0.1", "needs a port"),
            ("ws://127.0.0.1:9000/rpc", "no path"),
            ("udp://127.0.0.1:9", "not served"),
        ] {
            let err = given.parse::<Listen>().unwrap_err();
            assert!(err.to_string().contains(why), "{given}: {err}");
        }
    }
}
