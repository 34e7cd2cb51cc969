//! Certificates made at run time with rcgen (a throwaway CA and a leaf for
//! `localhost` and 127.0.0.1 signed by it), written to a temporary
//! directory for the processes that read files.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// A CA and a server certificate it signed, as PEM and as files.
pub struct TestCerts {
    /// The CA certificate: what a client trusts.
    pub ca: String,
    /// The server's certificate (leaf only).
    pub cert: String,
    /// The server's private key.
    pub key: String,
    dir: PathBuf,
}

impl TestCerts {
    /// A new CA and a leaf for `localhost` / 127.0.0.1.
    pub fn make() -> TestCerts {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "switchboard test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let dir = std::env::temp_dir().join(format!("switchboard-certs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let certs = TestCerts { ca: ca.pem(), cert: leaf.pem(), key: key.serialize_pem(), dir };
        std::fs::write(certs.ca_file(), &certs.ca).unwrap();
        std::fs::write(certs.cert_file(), &certs.cert).unwrap();
        std::fs::write(certs.key_file(), &certs.key).unwrap();
        certs
    }

    /// The CA certificate's file.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The server certificate's file.
    pub fn cert_file(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// The server key's file.
    pub fn key_file(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
