//! Where the load goes: a `ws://` URL on the loopback interface, nowhere else.

use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves `ws://HOST:PORT/PATH` to a socket address and checks that it is a
/// loopback address (127.0.0.0/8 or ::1). Returns the address and the URL.
pub fn loopback_addr(url: &str) -> Result<SocketAddr, String> {
    let rest = url.strip_prefix("ws://").ok_or_else(|| format!("{url}: only ws:// URLs are supported"))?;
    let host_port = rest.split('/').next().unwrap_or(rest);
    let host_port = if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:80") };
    let addrs: Vec<SocketAddr> =
        host_port.to_socket_addrs().map_err(|e| format!("{url}: cannot resolve {host_port}: {e}"))?.collect();
    addrs
        .into_iter()
        .find(|a| a.ip().is_loopback())
        .ok_or_else(|| format!("{url}: refusing a non-loopback target; benchmarks stay on 127.0.0.1"))
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
}
