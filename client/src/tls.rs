//! TLS for `wss://` endpoints: rustls with the *ring* crypto provider and
//! the Mozilla root certificates of `webpki-roots` (compiled in: no system
//! store is read, and nothing needs cmake or nasm to build).
//!
//! A custom [`rustls::ClientConfig`] (a private CA, client certificates)
//! is given with [`ClientBuilder::tls_config`](crate::ClientBuilder::tls_config).

use std::sync::{Arc, OnceLock};

use tokio_tungstenite::Connector;

/// The connector for one endpoint: plain for `ws://`, rustls for `wss://`.
pub(crate) fn connector(secure: bool, custom: Option<&Arc<rustls::ClientConfig>>) -> Connector {
    if !secure {
        return Connector::Plain;
    }
    Connector::Rustls(custom.cloned().unwrap_or_else(default_config))
}

/// The default client config, built once per process.
pub(crate) fn default_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_builds_without_a_process_wide_provider() {
        let config = default_config();
        assert!(!config.alpn_protocols.iter().any(|p| p == b"h2"), "WebSocket needs HTTP/1.1");
        assert!(matches!(connector(true, None), Connector::Rustls(_)));
        assert!(matches!(connector(false, None), Connector::Plain));
    }
}
