//! TLS for SSL and SASL_SSL listeners (rustls): the server configuration built
//! from Kafka's PEM keys, rebuilt when its files change, and the principal of an
//! SSL connection from its client certificate.
//!
//! Kafka reads PKCS#8 keys only; rustls also reads PKCS#1 (`BEGIN RSA PRIVATE
//! KEY`) and SEC1 (`BEGIN EC PRIVATE KEY`) ones, so strom accepts those too.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use super::principal::{subject_dn, Principal, PrincipalMapper};
use crate::config::security::{ClientAuth, KeyStore, TlsSettings, TrustStore};

/// How often the key and trust files are looked at for changes (at most; a
/// look happens when a connection arrives).
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// A listener's TLS side: what accepts connections, and the files it came from.
pub struct TlsListener {
    settings: TlsSettings,
    mapper: PrincipalMapper,
    current: RwLock<Arc<ServerConfig>>,
    /// What the files were when `current` was built, and when they were last
    /// looked at.
    files: Mutex<(Vec<Option<FileStamp>>, Instant)>,
}

impl TlsListener {
    /// Build the listener's TLS configuration; any error names the key at fault.
    pub fn new(settings: &TlsSettings) -> Result<TlsListener, String> {
        let mapper = PrincipalMapper::parse(&settings.principal_mapping_rules)
            .map_err(|e| format!("ssl.principal.mapping.rules: {e}"))?;
        let config = server_config(settings)?;
        Ok(TlsListener {
            mapper,
            current: RwLock::new(Arc::new(config)),
            files: Mutex::new((modified(&files_of(settings)), Instant::now())),
            settings: settings.clone(),
        })
    }

    /// The configuration for a new connection: rebuilt first if a key or trust
    /// file changed since (a bad new file is logged and the old one kept).
    pub fn config(&self) -> Arc<ServerConfig> {
        self.reload_if_changed();
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn reload_if_changed(&self) {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if files.1.elapsed() < RELOAD_CHECK {
            return;
        }
        files.1 = Instant::now();
        let now = modified(&files_of(&self.settings));
        if now == files.0 {
            return;
        }
        match server_config(&self.settings) {
            Ok(config) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
                files.0 = now;
                tracing::info!("TLS key store or trust store changed: reloaded");
            }
            Err(e) => {
                files.0 = now;
                tracing::error!(error = %e, "TLS key store or trust store changed but cannot be used; keeping the previous one");
            }
        }
    }

    /// The principal of a connection whose handshake is done: from its client
    /// certificate's subject, or ANONYMOUS without one.
    pub fn principal(&self, peer_certificates: Option<&[CertificateDer<'_>]>) -> Result<Principal, String> {
        let Some(leaf) = peer_certificates.and_then(|c| c.first()) else {
            return Ok(Principal::anonymous());
        };
        let dn = subject_dn(leaf)?;
        self.mapper.name(&dn).map(Principal::user)
    }
}

fn files_of(settings: &TlsSettings) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let KeyStore::File(p) = &settings.keystore {
        files.push(p.clone());
    }
    if let Some(TrustStore::File(p)) = &settings.truststore {
        files.push(p.clone());
    }
    files
}

/// What tells a file's versions apart: modification time, size and inode (a
/// new file moved in place with an old time is still another file).
type FileStamp = (SystemTime, u64, u64);

fn modified(files: &[PathBuf]) -> Vec<Option<FileStamp>> {
    use std::os::unix::fs::MetadataExt;
    files
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).ok()?;
            Some((m.modified().ok()?, m.len(), m.ino()))
        })
        .collect()
}

fn read(path: &PathBuf, key: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{key}: cannot read {}: {e}", path.display()))
}

fn certificates(pem: &[u8], key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{key}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{key}: At least one certificate expected, but none found"));
    }
    Ok(certs)
}

fn private_key(pem: &[u8], key: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!("{key}: Private key not provided"),
        e => format!("{key}: {e}"),
    })
}

/// The rustls server configuration for `settings`.
fn server_config(settings: &TlsSettings) -> Result<ServerConfig, String> {
    let (chain, key) = match &settings.keystore {
        KeyStore::File(path) => {
            let pem = read(path, "ssl.keystore.location")?;
            (
                certificates(&pem, "ssl.keystore.location")?,
                private_key(&pem, "ssl.keystore.location")?,
            )
        }
        KeyStore::Inline { key, chain } => (
            certificates(chain.as_bytes(), "ssl.keystore.certificate.chain")?,
            private_key(key.as_bytes(), "ssl.keystore.key")?,
        ),
    };
    let mut provider = rustls::crypto::ring::default_provider();
    if !settings.cipher_suites.is_empty() {
        provider.cipher_suites.retain(|suite| {
            let name = format!("{:?}", suite.suite());
            // rustls names TLS 1.3 suites TLS13_…, IANA (and Java) TLS_….
            let iana = name.replacen("TLS13_", "TLS_", 1);
            settings.cipher_suites.iter().any(|s| *s == name || *s == iana)
        });
        if provider.cipher_suites.is_empty() {
            return Err(format!(
                "ssl.cipher.suites: none of {:?} is available",
                settings.cipher_suites
            ));
        }
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = settings
        .enabled_protocols
        .iter()
        .filter_map(|p| match p.as_str() {
            "TLSv1.2" => Some(&rustls::version::TLS12),
            "TLSv1.3" => Some(&rustls::version::TLS13),
            _ => None,
        })
        .collect();
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("ssl.enabled.protocols / ssl.cipher.suites: {e}"))?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let mut roots = RootCertStore::empty();
            let (pem, key) = match &settings.truststore {
                Some(TrustStore::File(path)) => (read(path, "ssl.truststore.location")?, "ssl.truststore.location"),
                Some(TrustStore::Inline(pem)) => (pem.as_bytes().to_vec(), "ssl.truststore.certificates"),
                None => return Err("ssl.client.auth needs ssl.truststore.location".into()),
            };
            for cert in certificates(&pem, key)? {
                roots.add(cert).map_err(|e| format!("{key}: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match auth {
                ClientAuth::Requested => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| format!("ssl.truststore: {e}"))?)
        }
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("ssl.keystore: the key does not fit the certificate or cannot be used: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_certificate_names_its_principal_in_rfc_2253_order() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CountryName, "NL");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "strom, inc");
        params.distinguished_name.push(rcgen::DnType::CommonName, "Alice");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(subject_dn(cert.der()).unwrap(), "CN=Alice,O=strom\\, inc,C=NL");
        let pem = format!("{}{}", key.serialize_pem(), cert.pem());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.pem");
        std::fs::write(&file, pem).unwrap();
        let settings = TlsSettings {
            keystore: KeyStore::File(file),
            truststore: None,
            client_auth: ClientAuth::None,
            principal_mapping_rules: "RULE:^CN=([^,]*),.*$/$1/L".into(),
            enabled_protocols: vec!["TLSv1.3".into()],
            cipher_suites: vec!["TLS_AES_256_GCM_SHA384".into()],
        };
        let listener = TlsListener::new(&settings).unwrap();
        assert_eq!(
            listener.principal(Some(&[cert.der().clone()])).unwrap(),
            Principal::user("alice")
        );
        assert_eq!(listener.principal(None).unwrap(), Principal::anonymous());
        let bad = TlsSettings {
            cipher_suites: vec!["TLS_NOPE".into()],
            ..settings.clone()
        };
        assert!(TlsListener::new(&bad).is_err());
        let no_key = TlsSettings {
            keystore: KeyStore::Inline {
                key: String::new(),
                chain: cert.pem(),
            },
            ..settings
        };
        let Err(e) = TlsListener::new(&no_key) else {
            panic!("a keystore without a key")
        };
        assert!(e.contains("Private key not provided"), "{e}");
    }
}
