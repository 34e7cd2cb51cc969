//! TLS in the process (cargo feature `tls`): the certificate chain and key
//! the server proves itself with, so that every listener of the server
//! serves `wss://` and `https://` on its port instead of `ws://` and `http://`.
//!
//! rustls with the *ring* provider (no cmake or nasm to build; aws-lc-rs
//! stays off), TLS 1.2 and 1.3, ALPN `http/1.1` (what browsers offer for
//! WebSocket and what hyper speaks here).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The server's TLS identity; give it to [`ServerBuilder::tls`](crate::ServerBuilder::tls).
///
/// ```no_run
/// use switchboard_server::{Server, TlsConfig};
/// use switchboard_shared::Methods;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let tls = TlsConfig::from_pem_files("/etc/hub/cert.pem", "/etc/hub/key.pem")?;
/// let hub = Server::builder().tls(tls).build(Methods::new()).listen("0.0.0.0:9443").await?;
/// // wss://HOST:9443/ and https://HOST:9443/
/// # drop(hub); Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) server: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").field("alpn", &self.server.alpn_protocols.len()).finish_non_exhaustive()
    }
}

/// Why a [`TlsConfig`] could not be made. Each says which file (or PEM
/// text) and what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read (missing, no permission).
    #[error("could not read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The certificate PEM holds no `CERTIFICATE` block, or a broken one.
    #[error(
        "{what} holds no usable certificate (expected PEM `-----BEGIN CERTIFICATE-----` blocks, leaf first): {reason}"
    )]
    NoCertificate {
        /// The file, or "the certificate PEM".
        what: String,
        /// What the PEM parser said.
        reason: String,
    },
    /// The key PEM holds no private key, or a broken one.
    #[error("{what} holds no usable private key (expected a PKCS#8, PKCS#1 or SEC1 PEM block): {reason}")]
    NoKey {
        /// The file, or "the key PEM".
        what: String,
        /// What the PEM parser said.
        reason: String,
    },
    /// rustls refused the pair: an unsupported key type, or a key that does
    /// not belong to the certificate.
    #[error("the certificate and key were refused: {0}")]
    Refused(#[source] rustls::Error),
}

impl TlsConfig {
    /// Reads the certificate chain (PEM, leaf first, then intermediates) and
    /// the private key (PEM: PKCS#8, PKCS#1 or SEC1) from files.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, TlsError> {
        let read = |path: &Path| std::fs::read(path).map_err(|source| TlsError::Read { path: path.into(), source });
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let chain = certificates(&read(cert)?, &cert.display().to_string())?;
        let key = private_key(&read(key)?, &key.display().to_string())?;
        Self::from_parts(chain, key)
    }

    /// The same from PEM text in memory.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let chain = certificates(cert, "the certificate PEM")?;
        let key = private_key(key, "the key PEM")?;
        Self::from_parts(chain, key)
    }

    /// A rustls server configuration of your own (client certificates,
    /// other protocol versions). Its ALPN list should offer `http/1.1`
    /// (or be empty).
    pub fn from_rustls(config: Arc<rustls::ServerConfig>) -> Self {
        TlsConfig { server: config }
    }

    fn from_parts(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Refused)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(TlsError::Refused)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig { server: Arc::new(config) })
    }
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let no = |reason: String| TlsError::NoCertificate { what: what.to_owned(), reason };
    let chain = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| no(e.to_string()))?;
    if chain.is_empty() {
        return Err(no("no certificate block found".into()));
    }
    Ok(chain)
}

fn private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::NoKey { what: what.to_owned(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_pair_is_accepted_and_offers_http1() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let tls = TlsConfig::from_pem(cert.cert.pem().as_bytes(), cert.signing_key.serialize_pem().as_bytes()).unwrap();
        assert_eq!(tls.server.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let refused = TlsConfig::from_pem(cert.cert.pem().as_bytes(), other.signing_key.serialize_pem().as_bytes());
        assert!(matches!(refused, Err(TlsError::Refused(_))), "{refused:?}");
    }

    #[test]
    fn swapped_files_say_which_is_wrong() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
        let swapped = TlsConfig::from_pem(key_pem.as_bytes(), cert_pem.as_bytes()).unwrap_err();
        assert!(matches!(swapped, TlsError::NoCertificate { .. }), "{swapped}");
        let missing = TlsConfig::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/cert.pem"), "{missing}");
    }
}
