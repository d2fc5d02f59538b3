//! Test certificates: a CA, a server certificate for localhost and 127.0.0.1,
//! and client certificates, as PEM files in a temporary directory.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

pub struct Pki {
    pub dir: tempfile::TempDir,
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate (trust store for clients and for mTLS).
    pub ca: PathBuf,
    /// The server's key and chain in one file (ssl.keystore.location).
    pub server: PathBuf,
}

impl Pki {
    pub fn new() -> Pki {
        Pki::named("strom test CA")
    }

    pub fn named(ca_name: &str) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, ca_name);
        let ca_cert = params.self_signed(&ca_key).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        let issuer = Issuer::new(params, ca_key);
        let mut pki = Pki {
            server: dir.path().join("server.pem"),
            dir,
            issuer,
            ca,
        };
        pki.write_server();
        pki
    }

    /// (Re)write the server's key and certificate.
    pub fn write_server(&mut self) {
        let (cert, key) = self.issue(&[("CN", "localhost")], &["localhost", "127.0.0.1"]);
        std::fs::write(&self.server, format!("{key}{cert}")).unwrap();
    }

    /// A certificate with subject `dn` (in the order given, most general first,
    /// as openssl shows it) signed by the CA: (certificate PEM, key PEM).
    pub fn issue(&self, dn: &[(&str, &str)], names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in dn {
            let kind = match *kind {
                "CN" => DnType::CommonName,
                "O" => DnType::OrganizationName,
                "OU" => DnType::OrganizationalUnitName,
                "C" => DnType::CountryName,
                other => panic!("no DN type {other}"),
            };
            params.distinguished_name.push(kind, *value);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A client certificate and key as files: (certificate, key).
    pub fn client(&self, name: &str, dn: &[(&str, &str)]) -> (PathBuf, PathBuf) {
        let (cert, key) = self.issue(dn, &[]);
        let (c, k) = (
            self.dir.path().join(format!("{name}.crt")),
            self.dir.path().join(format!("{name}.key")),
        );
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        (c, k)
    }
}
