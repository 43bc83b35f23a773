//! Certificates made at run time for the transport-security tests: a CA per
//! test, server certificates for loopback names, client certificates, and a
//! second, unrelated CA. Files live in a directory removed when dropped.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// A directory of PEM files, removed when dropped.
pub struct Dir(PathBuf);

impl Dir {
    pub fn new() -> Dir {
        let path = std::env::temp_dir().join(format!(
            "baraza-tls-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).expect("certificate directory");
        Dir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write PEM");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A certificate authority that signs server and client certificates.
pub struct Authority {
    name: String,
    certificate: rcgen::Certificate,
    key: KeyPair,
    /// The CA certificate as a PEM file.
    pub pem_path: PathBuf,
}

/// An issued certificate and its key, as PEM text and files.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl Issued {
    /// Certificate and key in one PEM, as reqwest's `Identity` wants them.
    pub fn identity(&self) -> reqwest::Identity {
        let both = format!("{}{}", self.cert_pem, self.key_pem);
        reqwest::Identity::from_pem(both.as_bytes()).expect("client identity")
    }
}

impl Authority {
    pub fn new(dir: &Dir, name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let certificate = params.self_signed(&key).expect("CA certificate");
        let pem_path = dir.write(&format!("{name}.ca.pem"), &certificate.pem());
        Authority {
            name: name.to_owned(),
            certificate,
            key,
            pem_path,
        }
    }

    /// The CA certificate, for a client's trust store.
    pub fn reqwest_root(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(self.certificate.pem().as_bytes()).expect("CA PEM")
    }

    /// The CA certificate, for a rustls trust store.
    pub fn root_store(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.certificate.der().clone())
            .expect("CA certificate");
        roots
    }

    /// A server certificate for `names` (host names or IP addresses).
    pub fn server(&self, dir: &Dir, names: &[&str]) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("server params");
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.issue(dir, &format!("server-{}", names[0]), params)
    }

    /// A client certificate whose subject CN is `common_name`.
    pub fn client(&self, dir: &Dir, common_name: &str) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Baraza test integrators");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.issue(dir, &format!("client-{common_name}"), params)
    }

    fn issue(&self, dir: &Dir, stem: &str, params: CertificateParams) -> Issued {
        let key = KeyPair::generate().expect("key");
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .expect("sign certificate");
        let (cert_pem, key_pem) = (certificate.pem(), key.serialize_pem());
        let stem = format!("{}-{stem}", self.name);
        Issued {
            cert_path: dir.write(&format!("{stem}.pem"), &cert_pem),
            key_path: dir.write(&format!("{stem}.key"), &key_pem),
            cert_pem,
            key_pem,
        }
    }
}
