//! Throwaway certificate authorities for TLS tests: a CA, and server or client certificates it
//! signs, written as PEM files into a temporary directory that lives as long as the CA.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    SanType,
};

/// A certificate authority made for one test, with its certificate in [`TestCa::ca_file`].
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: tempfile::TempDir,
    ca_file: PathBuf,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").field("ca_file", &self.ca_file).finish()
    }
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key (PKCS#8).
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA named `name`.
    ///
    /// # Errors
    /// When the key cannot be made or the file written.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        let dir = tempfile::tempdir()?;
        let ca_file = dir.path().join(format!("{name}.pem"));
        std::fs::write(&ca_file, issuer.pem())?;
        Ok(Self { issuer, dir, ca_file })
    }

    /// The CA's certificate (PEM), what a client trusts.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    ///
    /// # Errors
    /// When it cannot be made or written.
    pub fn server(&self, name: &str) -> anyhow::Result<CertFiles> {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
        params.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
        self.issue(name, params)
    }

    /// A client certificate, for mutual TLS.
    ///
    /// # Errors
    /// When it cannot be made or written.
    pub fn client(&self, name: &str) -> anyhow::Result<CertFiles> {
        let mut params = CertificateParams::new(Vec::new())?;
        params.extended_key_usages.push(ExtendedKeyUsagePurpose::ClientAuth);
        self.issue(name, params)
    }

    fn issue(&self, name: &str, mut params: CertificateParams) -> anyhow::Result<CertFiles> {
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let files = CertFiles {
            cert: self.dir.path().join(format!("{name}.crt")),
            key: self.dir.path().join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, cert.pem())?;
        std::fs::write(&files.key, key.serialize_pem())?;
        Ok(files)
    }
}
