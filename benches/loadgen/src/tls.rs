//! TLS for `wss://` and `https://` targets: a rustls client that trusts
//! exactly the CA given (`--ca FILE`; verification is never turned off), and
//! a throwaway CA and server certificate for a benchmark run (`gen-cert`).
//!
//! rustls with the *ring* provider, as the server uses.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// A TLS client that trusts the CA certificates of one PEM file.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
}

impl Tls {
    /// Reads the trusted CA certificates (PEM) from `ca`.
    pub fn trusting(ca: &Path) -> Result<Tls, String> {
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca).map_err(|e| format!("--ca {}: {e}", ca.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("--ca {}: {e}", ca.display()))?;
            roots.add(cert).map_err(|e| format!("--ca {}: {e}", ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("--ca {}: no certificate in it", ca.display()));
        }
        let config =
            ClientConfig::builder_with_provider(Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS versions: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
        Ok(Tls { connector: TlsConnector::from(Arc::new(config)) })
    }

    /// The TLS handshake on `tcp`, checking the certificate against `host`.
    pub async fn connect(&self, host: &str, tcp: TcpStream) -> Result<TlsStream<TcpStream>, String> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("{host}: not a TLS server name: {e}"))?;
        self.connector.connect(name, tcp).await.map_err(|e| format!("TLS handshake with {host}: {e}"))
    }
}

/// The files [`generate`] writes.
#[derive(Debug)]
pub struct CertFiles {
    /// The CA certificate: what `--ca` takes.
    pub ca: PathBuf,
    /// The server's certificate (for 127.0.0.1, ::1 and localhost).
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

/// Makes a throwaway CA and a server certificate it signs, for 127.0.0.1,
/// ::1 and localhost, and writes `ca.pem`, `cert.pem` and `key.pem` to `dir`
/// (created if missing; existing files are replaced).
pub fn generate(dir: &Path) -> Result<CertFiles, String> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let fail = |what: &str, e: rcgen::Error| format!("{what}: {e}");
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("CA parameters", e))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "switchboard benchmark CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(|e| fail("CA key", e))?;
    let ca = CertifiedIssuer::self_signed(ca, ca_key).map_err(|e| fail("CA certificate", e))?;
    let key = KeyPair::generate().map_err(|e| fail("server key", e))?;
    let names = vec!["127.0.0.1".to_owned(), "::1".to_owned(), "localhost".to_owned()];
    let leaf = CertificateParams::new(names)
        .map_err(|e| fail("server parameters", e))?
        .signed_by(&key, &ca)
        .map_err(|e| fail("server certificate", e))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let files = CertFiles { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") };
    for (path, pem) in [(&files.ca, ca.pem()), (&files.cert, leaf.pem()), (&files.key, key.serialize_pem())] {
        std::fs::write(path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(files)
}
