//! Certificates made at run time with rcgen: a throwaway CA and a leaf
//! for `localhost` and 127.0.0.1 signed by it, so no key is checked in and
//! none expires under the tests.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// A CA and a server certificate it signed, as PEM.
pub(crate) struct TestCerts {
    /// The CA certificate: what a client trusts.
    pub(crate) ca: String,
    /// The server's certificate (leaf only).
    pub(crate) cert: String,
    /// The server's private key.
    pub(crate) key: String,
}

/// A new CA and a leaf for `localhost` / 127.0.0.1.
pub(crate) fn make() -> TestCerts {
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
    TestCerts { ca: ca.pem(), cert: leaf.pem(), key: key.serialize_pem() }
}
