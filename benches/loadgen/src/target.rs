//! Where the load goes: a `ws://`, `wss://`, `http://` or `https://` URL on
//! the loopback interface, nowhere else.
//!
//! Terms: the **scheme** says the protocol (WebSocket or HTTP POST) and
//! whether TLS wraps it; the **host** is the URL's host as written (what a
//! TLS client checks the server's certificate against, and HTTP's `Host`).

use std::net::{SocketAddr, ToSocketAddrs};

/// The protocol of a target URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `ws://`: WebSocket on plain TCP.
    Ws,
    /// `wss://`: WebSocket in TLS.
    Wss,
    /// `http://`: JSON-RPC by HTTP/1.1 POST on plain TCP.
    Http,
    /// `https://`: JSON-RPC by HTTP/1.1 POST in TLS.
    Https,
}

impl Scheme {
    /// Whether the connection is wrapped in TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Wss | Scheme::Https)
    }

    /// Whether the calls go by HTTP POST (not over a WebSocket).
    pub fn is_http(self) -> bool {
        matches!(self, Scheme::Http | Scheme::Https)
    }
}

/// A parsed, resolved, loopback-only target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The protocol.
    pub scheme: Scheme,
    /// The address connected to.
    pub addr: SocketAddr,
    /// The host as the URL wrote it (no port).
    pub host: String,
    /// The path, `/` when the URL has none.
    pub path: String,
}

/// Parses `SCHEME://HOST[:PORT][/PATH]`, resolves it and checks that it is a
/// loopback address (127.0.0.0/8 or ::1).
pub fn parse(url: &str) -> Result<Target, String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("{url}: not a URL"))?;
    let (scheme, default_port) = match scheme {
        "ws" => (Scheme::Ws, 80),
        "wss" => (Scheme::Wss, 443),
        "http" => (Scheme::Http, 80),
        "https" => (Scheme::Https, 443),
        other => return Err(format!("{url}: the scheme {other:?} is not supported (ws, wss, http, https)")),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => {
            (host, port.parse::<u16>().map_err(|_| format!("{url}: {port:?} is not a port"))?)
        }
        _ => (authority, default_port),
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> =
        (bare, port).to_socket_addrs().map_err(|e| format!("{url}: cannot resolve {host}: {e}"))?.collect();
    let addr = addrs
        .into_iter()
        .find(|a| a.ip().is_loopback())
        .ok_or_else(|| format!("{url}: refusing a non-loopback target; benchmarks stay on 127.0.0.1"))?;
    Ok(Target { scheme, addr, host: bare.to_owned(), path: path.to_owned() })
}

/// Resolves `ws://HOST:PORT/PATH` (or `wss://`) to a loopback socket address.
pub fn loopback_addr(url: &str) -> Result<SocketAddr, String> {
    match parse(url)? {
        Target { scheme: Scheme::Ws | Scheme::Wss, addr, .. } => Ok(addr),
        _ => Err(format!("{url}: only ws:// and wss:// URLs are supported here")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only() {
        assert_eq!(loopback_addr("ws://127.0.0.1:9000/").unwrap().port(), 9000);
        assert!(loopback_addr("ws://localhost:9001").unwrap().ip().is_loopback());
        assert!(loopback_addr("ws://10.0.0.1:9000/").is_err());
        assert!(loopback_addr("http://127.0.0.1:9000/").is_err());
    }

    #[test]
    fn schemes_hosts_and_paths() {
        let t = parse("https://127.0.0.1:9443/rpc").unwrap();
        assert_eq!(
            (t.scheme, t.addr.port(), t.host.as_str(), t.path.as_str()),
            (Scheme::Https, 9443, "127.0.0.1", "/rpc")
        );
        let t = parse("wss://localhost:9443").unwrap();
        assert_eq!((t.scheme, t.host.as_str(), t.path.as_str()), (Scheme::Wss, "localhost", "/"));
        assert_eq!(parse("http://[::1]:8080/").unwrap().host, "::1");
        assert!(parse("tcp://127.0.0.1:9000").is_err());
        assert!(parse("http://192.0.2.1:80/").is_err());
    }
}
