//! How strom's tools reach a secured broker: Kafka's client properties, as the
//! file given with `--command-config` holds them (Kafka's admin tools take the
//! same flag and keys):
//!
//! ```properties
//! security.protocol=SASL_SSL
//! sasl.mechanism=SCRAM-SHA-512
//! sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="admin-secret";
//! ssl.truststore.type=PEM
//! ssl.truststore.location=/etc/strom/ca.pem
//! ```
//!
//! librdkafka's names are read too (`sasl.mechanisms`, `sasl.username`,
//! `sasl.password`, `ssl.ca.location`, `ssl.certificate.location`,
//! `ssl.key.location`). Certificates are PEM.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::ClientError;
use crate::config::SecurityProtocol;

/// A client's security settings.
#[derive(Clone, Default)]
pub struct ClientSecurity {
    /// TLS: the CAs to trust, and a client key + certificate chain for mTLS.
    pub tls: Option<ClientTls>,
    /// SASL: mechanism, user, password.
    pub sasl: Option<(String, String, String)>,
}

/// The password stays out of logs.
impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecurity")
            .field("tls", &self.tls)
            .field("sasl", &self.sasl.as_ref().map(|(m, user, _)| (m, user, "[hidden]")))
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct ClientTls {
    pub ca: Option<PathBuf>,
    /// One PEM file with key and chain, or a certificate and a key file.
    pub identity: Option<(PathBuf, PathBuf)>,
}

fn usage(message: impl Into<String>) -> ClientError {
    ClientError::Usage(message.into())
}

impl ClientSecurity {
    /// The settings in a properties file.
    pub fn from_file(path: &Path) -> Result<ClientSecurity, ClientError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read --command-config {}: {e}", path.display())))?;
        ClientSecurity::from_properties(&crate::util::properties::parse(&text))
    }

    pub fn from_properties(p: &HashMap<String, String>) -> Result<ClientSecurity, ClientError> {
        let get = |k: &str| p.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let protocol = match get("security.protocol") {
            None => SecurityProtocol::Plaintext,
            Some(name) => crate::config::parse_protocol_map(&format!("X:{name}"))
                .ok()
                .and_then(|m| m.into_values().next())
                .ok_or_else(|| {
                    usage(format!(
                        "security.protocol={name}: one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
                    ))
                })?,
        };
        let tls = matches!(protocol, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl).then(|| ClientTls {
            ca: get("ssl.truststore.location")
                .or(get("ssl.ca.location"))
                .map(PathBuf::from),
            identity: match (
                get("ssl.keystore.location"),
                get("ssl.certificate.location"),
                get("ssl.key.location"),
            ) {
                (Some(both), _, _) => Some((PathBuf::from(both), PathBuf::from(both))),
                (None, Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
                _ => None,
            },
        });
        if let Some(t) = get("ssl.truststore.type").filter(|t| !t.eq_ignore_ascii_case("PEM")) {
            return Err(usage(format!("ssl.truststore.type={t}: strom's tools read PEM")));
        }
        let sasl = match protocol {
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => {
                let mechanism = get("sasl.mechanism")
                    .or(get("sasl.mechanisms"))
                    .unwrap_or("GSSAPI")
                    .to_ascii_uppercase();
                let jaas = get("sasl.jaas.config")
                    .map(crate::config::security::parse_jaas)
                    .transpose()
                    .map_err(|e| usage(format!("sasl.jaas.config: {e}")))?;
                let option = |name: &str| {
                    jaas.as_ref()
                        .and_then(|j| j.options.iter().find(|(k, _)| k == name))
                        .map(|(_, v)| v.clone())
                };
                let user = option("username").or(get("sasl.username").map(String::from));
                let password = option("password").or(get("sasl.password").map(String::from));
                let (Some(user), Some(password)) = (user, password) else {
                    return Err(usage(
                        "SASL needs a user and password: sasl.jaas.config=… username=\"…\" password=\"…\";",
                    ));
                };
                Some((mechanism, user, password))
            }
            _ => None,
        };
        Ok(ClientSecurity { tls, sasl })
    }

    /// The rustls client configuration (TLS listeners).
    pub fn tls_config(tls: &ClientTls) -> Result<Arc<rustls::ClientConfig>, ClientError> {
        let read =
            |path: &PathBuf| std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())));
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &tls.ca {
            for cert in CertificateDer::pem_slice_iter(&read(ca)?) {
                let cert = cert.map_err(|e| usage(format!("{}: {e}", ca.display())))?;
                roots.add(cert).map_err(|e| usage(format!("{}: {e}", ca.display())))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| usage(e.to_string()))?
            .with_root_certificates(roots);
        let config = match &tls.identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
                    .collect::<Result<_, _>>()
                    .map_err(|e| usage(format!("{}: {e}", cert.display())))?;
                let key =
                    PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| usage(format!("{}: {e}", key.display())))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| usage(e.to_string()))?
            }
        };
        Ok(Arc::new(config))
    }

    /// The name the broker's certificate must carry for `addr` (`host:port`).
    pub fn server_name(addr: &str) -> Result<ServerName<'static>, ClientError> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_string()).map_err(|e| usage(format!("{host}: {e}")))
    }
}
