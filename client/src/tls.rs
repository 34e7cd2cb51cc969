//! TLS for `wss://` endpoints: rustls with the *ring* crypto provider and
//! the Mozilla root certificates of `webpki-roots` (compiled in: no system
//! store is read, and nothing needs cmake or nasm to build).
//!
//! A private CA is added to those roots with
//! [`ClientBuilder::root_certificate`](crate::ClientBuilder::root_certificate);
//! a custom [`rustls::ClientConfig`] (client certificates) is given with
//! [`ClientBuilder::tls_config`](crate::ClientBuilder::tls_config).

use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
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
    Arc::clone(CONFIG.get_or_init(|| config_with(webpki())))
}

/// The TLS config for `roots` (the client's choice of settings), or the
/// default when none are given: the webpki roots plus the CA certificates
/// in `pems`; `Err` says what is wrong with a PEM.
pub(crate) fn with_roots(pems: &[Vec<u8>]) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    if pems.is_empty() {
        return Ok(None);
    }
    let mut roots = webpki();
    for pem in pems {
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("not a PEM certificate: {e}"))?;
            roots.add(cert).map_err(|e| format!("not a usable CA certificate: {e}"))?;
            found += 1;
        }
        if found == 0 {
            return Err("no -----BEGIN CERTIFICATE----- block found".into());
        }
    }
    Ok(Some(config_with(roots)))
}

/// The rustls error behind a failed connection, if TLS is what failed: I/O
/// errors wrap it (their `source` skips the wrapped error), so they are
/// opened too.
pub(crate) fn rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(inner) = error.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref)
        && let Some(tls) = rustls_error(inner)
    {
        return Some(tls);
    }
    error.source().and_then(rustls_error)
}

fn webpki() -> rustls::RootCertStore {
    rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }
}

fn config_with(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
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

    #[test]
    fn a_root_that_is_not_a_pem_certificate_is_refused_with_a_reason() {
        assert!(with_roots(&[]).unwrap().is_none());
        let error = with_roots(&[b"hello".to_vec()]).unwrap_err();
        assert!(error.contains("no -----BEGIN CERTIFICATE-----"), "{error}");
    }
}
