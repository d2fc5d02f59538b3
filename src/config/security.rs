//! Each listener's security settings under Kafka's keys: TLS (`ssl.*`) for SSL and
//! SASL_SSL listeners, SASL (`sasl.*` and the JAAS line) for SASL_* ones. Every
//! key may be given for one listener as `listener.name.<name>.<key>` (the name
//! lower-cased, as Kafka's `ListenerName.configPrefix` makes it), which wins over
//! the plain key; SASL's JAAS line is per listener and mechanism
//! (`listener.name.sasl_ssl.plain.sasl.jaas.config`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use super::{ConfigError, Listener, SecurityProtocol};

/// How a listener's connections are secured and authenticated.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerSecurity {
    pub protocol: SecurityProtocol,
    /// SSL and SASL_SSL listeners.
    pub tls: Option<TlsSettings>,
    /// SASL_PLAINTEXT and SASL_SSL listeners.
    pub sasl: Option<SaslSettings>,
}

impl ListenerSecurity {
    pub fn plaintext() -> ListenerSecurity {
        ListenerSecurity {
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
        }
    }
}

/// Where the broker's key and certificate chain come from (`ssl.keystore.type=PEM`).
#[derive(Debug, Clone, PartialEq)]
pub enum KeyStore {
    /// `ssl.keystore.location`: one PEM file with the private key and the chain,
    /// leaf first.
    File(PathBuf),
    /// `ssl.keystore.key` + `ssl.keystore.certificate.chain`, PEM text inline.
    Inline { key: String, chain: String },
}

/// Where trusted CA certificates come from (`ssl.truststore.type=PEM`).
#[derive(Debug, Clone, PartialEq)]
pub enum TrustStore {
    /// `ssl.truststore.location`: every certificate in the PEM file.
    File(PathBuf),
    /// `ssl.truststore.certificates`: PEM text inline.
    Inline(String),
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    /// A certificate is asked for; a client without one is `User:ANONYMOUS`.
    Requested,
    /// The handshake fails without a trusted client certificate.
    Required,
}

/// A TLS listener's `ssl.*` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    pub keystore: KeyStore,
    pub truststore: Option<TrustStore>,
    pub client_auth: ClientAuth,
    /// `ssl.principal.mapping.rules`, as written (parsed by `security::principal`).
    pub principal_mapping_rules: String,
    /// `ssl.enabled.protocols`: TLSv1.2 and/or TLSv1.3.
    pub enabled_protocols: Vec<String>,
    /// `ssl.cipher.suites`: IANA names; empty for the library's defaults.
    pub cipher_suites: Vec<String>,
}

/// A SASL listener's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SaslSettings {
    /// `sasl.enabled.mechanisms`, upper-cased, in the order given.
    pub mechanisms: Vec<String>,
    /// PLAIN's users and passwords, from the `user_NAME="password"` options of
    /// the listener's PLAIN JAAS line.
    pub plain_users: BTreeMap<String, String>,
    /// `connections.max.reauth.ms` (KIP-368): 0 = sessions never expire.
    pub max_reauth_ms: u64,
    /// How OAUTHBEARER tokens are validated.
    pub oauth: OAuthSettings,
}

/// How a listener validates OAUTHBEARER tokens: signed ones against a JWKS file
/// (`sasl.oauthbearer.jwks.endpoint.url=file://…`), or else Kafka's unsecured
/// (development) validator with its JAAS options.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OAuthSettings {
    pub jwks_file: Option<PathBuf>,
    /// `sasl.oauthbearer.expected.issuer`
    pub expected_issuer: Option<String>,
    /// `sasl.oauthbearer.expected.audience`
    pub expected_audience: Vec<String>,
    /// `sasl.oauthbearer.clock.skew.seconds` (30 s) for signed tokens,
    /// `unsecuredValidatorAllowableClockSkewMs` (0) for unsecured ones.
    pub clock_skew_ms: i64,
    /// `sasl.oauthbearer.sub.claim.name` / `unsecuredValidatorPrincipalClaimName` (sub).
    pub principal_claim: String,
    /// `sasl.oauthbearer.scope.claim.name` / `unsecuredValidatorScopeClaimName` (scope).
    pub scope_claim: String,
    /// `unsecuredValidatorRequiredScope`
    pub required_scope: Vec<String>,
}

/// `authorizer.class.name` values that turn the authorizer on.
pub const AUTHORIZER_CLASSES: [&str; 2] = [
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
];

/// The mechanisms strom implements.
pub const MECHANISMS: [&str; 4] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Security {
        key: key.into(),
        reason: reason.into(),
    }
}

/// A key looked up for one listener: `listener.name.<name>.<key>` over `<key>`.
struct ForListener<'a> {
    props: &'a HashMap<String, String>,
    prefix: String,
}

impl ForListener<'_> {
    /// The value and the key it was found under.
    fn get(&self, key: &str) -> Option<(String, &str)> {
        let prefixed = format!("{}{key}", self.prefix);
        if let Some(v) = self.props.get(&prefixed) {
            return Some((prefixed, v.as_str()));
        }
        self.props.get(key).map(|v| (key.to_string(), v.as_str()))
    }

    fn value(&self, key: &str) -> Option<&str> {
        self.get(key).map(|(_, v)| v).filter(|v| !v.trim().is_empty())
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.value(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The security of every listener, from the properties.
pub fn resolve(
    listeners: &[Listener],
    map: &BTreeMap<String, SecurityProtocol>,
    props: &HashMap<String, String>,
) -> Result<BTreeMap<String, ListenerSecurity>, ConfigError> {
    let mut out = BTreeMap::new();
    for l in listeners {
        let protocol = map.get(&l.name).copied().unwrap_or(SecurityProtocol::Plaintext);
        let keys = ForListener {
            props,
            prefix: format!("listener.name.{}.", l.name.to_ascii_lowercase()),
        };
        let tls = match protocol {
            SecurityProtocol::Ssl | SecurityProtocol::SaslSsl => Some(tls_settings(&keys, protocol)?),
            _ => None,
        };
        let sasl = match protocol {
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => Some(sasl_settings(&keys)?),
            _ => None,
        };
        out.insert(l.name.clone(), ListenerSecurity { protocol, tls, sasl });
    }
    Ok(out)
}

/// Kafka's PEM rules (DefaultSslEngineFactory): a keystore file holding key and
/// chain, or the key and chain inline; never a keystore password with PEM.
fn tls_settings(keys: &ForListener, protocol: SecurityProtocol) -> Result<TlsSettings, ConfigError> {
    let store_type = |key: &str| -> Result<(), ConfigError> {
        match keys.get(key) {
            Some((_, v)) if !v.eq_ignore_ascii_case("PEM") => Err(invalid(
                key,
                format!("strom reads PEM stores only ({key}=PEM), not {v}: convert JKS/PKCS12 with keytool or openssl"),
            )),
            _ => Ok(()),
        }
    };
    store_type("ssl.keystore.type")?;
    store_type("ssl.truststore.type")?;
    if let Some((key, _)) = keys.get("ssl.keystore.password").filter(|(_, v)| !v.is_empty()) {
        return Err(invalid(
            key,
            "SSL key store password cannot be specified with PEM format, only key password may be specified.",
        ));
    }
    if let Some((key, _)) = keys.get("ssl.truststore.password").filter(|(_, v)| !v.is_empty()) {
        return Err(invalid(
            key,
            "SSL trust store password cannot be specified for PEM format.",
        ));
    }
    if let Some((key, _)) = keys.get("ssl.key.password").filter(|(_, v)| !v.is_empty()) {
        return Err(invalid(
            key,
            "encrypted private keys are not supported: give an unencrypted PKCS#8 key (openssl pkcs8 -topk8 -nocrypt)",
        ));
    }
    let keystore = match (
        keys.value("ssl.keystore.location"),
        keys.value("ssl.keystore.key"),
        keys.value("ssl.keystore.certificate.chain"),
    ) {
        (Some(_), Some(_), _) => {
            return Err(invalid(
                "ssl.keystore.key",
                "Both SSL key store location and separate private key are specified.",
            ))
        }
        (Some(path), None, _) => KeyStore::File(PathBuf::from(path)),
        (None, Some(key), Some(chain)) => KeyStore::Inline {
            key: key.to_string(),
            chain: chain.to_string(),
        },
        (None, Some(_), None) => {
            return Err(invalid(
                "ssl.keystore.certificate.chain",
                "SSL private key is specified, but certificate chain is not specified.",
            ))
        }
        (None, None, Some(_)) => {
            return Err(invalid(
                "ssl.keystore.key",
                "SSL certificate chain is specified, but private key is not specified",
            ))
        }
        (None, None, None) => {
            return Err(invalid(
                format!("{}ssl.keystore.location", keys.prefix),
                format!(
                    "a {} listener needs a key and certificate (ssl.keystore.location, or ssl.keystore.key and ssl.keystore.certificate.chain)",
                    protocol.name()
                ),
            ))
        }
    };
    let truststore = match (
        keys.value("ssl.truststore.location"),
        keys.value("ssl.truststore.certificates"),
    ) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "ssl.truststore.certificates",
                "give ssl.truststore.location or ssl.truststore.certificates, not both",
            ))
        }
        (Some(path), None) => Some(TrustStore::File(PathBuf::from(path))),
        (None, Some(pem)) => Some(TrustStore::Inline(pem.to_string())),
        (None, None) => None,
    };
    // KIP-684: on SASL_SSL only the listener's own ssl.client.auth asks for
    // client certificates; the broker-wide key applies to SSL listeners.
    let client_auth = match protocol {
        SecurityProtocol::SaslSsl => keys.props.get(&format!("{}ssl.client.auth", keys.prefix)).cloned(),
        _ => keys.value("ssl.client.auth").map(String::from),
    };
    let client_auth = match client_auth.as_deref().map(str::trim) {
        None | Some("none") | Some("") => ClientAuth::None,
        Some("requested") => ClientAuth::Requested,
        Some("required") => ClientAuth::Required,
        Some(other) => {
            return Err(invalid(
                "ssl.client.auth",
                format!("{other:?} is not one of required, requested, none"),
            ))
        }
    };
    if client_auth != ClientAuth::None && truststore.is_none() {
        return Err(invalid(
            "ssl.truststore.location",
            "ssl.client.auth asks for client certificates: give the CAs that sign them (ssl.truststore.location)",
        ));
    }
    let enabled_protocols = match keys.list("ssl.enabled.protocols") {
        l if l.is_empty() => vec!["TLSv1.2".to_string(), "TLSv1.3".to_string()],
        l => l,
    };
    if let Some(p) = enabled_protocols
        .iter()
        .find(|p| !["TLSv1.2", "TLSv1.3"].contains(&p.as_str()))
    {
        return Err(invalid(
            "ssl.enabled.protocols",
            format!("{p} is not served: strom speaks TLSv1.2 and TLSv1.3"),
        ));
    }
    Ok(TlsSettings {
        keystore,
        truststore,
        client_auth,
        principal_mapping_rules: keys
            .value("ssl.principal.mapping.rules")
            .unwrap_or("DEFAULT")
            .to_string(),
        enabled_protocols,
        cipher_suites: keys.list("ssl.cipher.suites"),
    })
}

fn sasl_settings(keys: &ForListener) -> Result<SaslSettings, ConfigError> {
    let mechanisms: Vec<String> = match keys.list("sasl.enabled.mechanisms") {
        // Kafka's default is GSSAPI, which strom does not have.
        l if l.is_empty() => {
            return Err(invalid(
                format!("{}sasl.enabled.mechanisms", keys.prefix),
                "a SASL listener needs sasl.enabled.mechanisms (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER); Kafka's default GSSAPI is not supported",
            ))
        }
        l => l.into_iter().map(|m| m.to_ascii_uppercase()).collect(),
    };
    if let Some(m) = mechanisms.iter().find(|m| !MECHANISMS.contains(&m.as_str())) {
        return Err(invalid(
            "sasl.enabled.mechanisms",
            format!("{m} is not supported; strom has {}", MECHANISMS.join(", ")),
        ));
    }
    // The JAAS line of a mechanism: listener.name.<l>.<mechanism>.sasl.jaas.config.
    let jaas = |mechanism: &str| -> Result<Option<Jaas>, ConfigError> {
        let key = format!("{}{}.sasl.jaas.config", keys.prefix, mechanism.to_ascii_lowercase());
        match keys.props.get(&key) {
            None => Ok(None),
            Some(text) => parse_jaas(text).map(Some).map_err(|reason| invalid(key, reason)),
        }
    };
    let mut plain_users = BTreeMap::new();
    if mechanisms.iter().any(|m| m == "PLAIN") {
        let Some(plain) = jaas("PLAIN")? else {
            return Err(invalid(
                format!("{}plain.sasl.jaas.config", keys.prefix),
                "PLAIN is enabled but no JAAS line lists its users (user_NAME=\"password\")",
            ));
        };
        for (option, value) in plain.options {
            if let Some(user) = option.strip_prefix("user_") {
                plain_users.insert(user.to_string(), value);
            }
        }
    }
    let oauth = oauth_settings(keys, &jaas)?;
    let max_reauth_ms = match keys.value("connections.max.reauth.ms") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map_err(|_| invalid("connections.max.reauth.ms", format!("{v:?} is not a number")))?
            .max(0) as u64,
    };
    Ok(SaslSettings {
        mechanisms,
        plain_users,
        max_reauth_ms,
        oauth,
    })
}

fn oauth_settings(
    keys: &ForListener,
    jaas: &dyn Fn(&str) -> Result<Option<Jaas>, ConfigError>,
) -> Result<OAuthSettings, ConfigError> {
    let mut oauth = OAuthSettings {
        principal_claim: keys
            .value("sasl.oauthbearer.sub.claim.name")
            .unwrap_or("sub")
            .to_string(),
        scope_claim: keys
            .value("sasl.oauthbearer.scope.claim.name")
            .unwrap_or("scope")
            .to_string(),
        ..OAuthSettings::default()
    };
    if let Some(url) = keys.value("sasl.oauthbearer.jwks.endpoint.url") {
        let path = url.strip_prefix("file://").ok_or_else(|| {
            invalid(
                "sasl.oauthbearer.jwks.endpoint.url",
                "strom reads JWKS from a file (file://…); fetch the provider's keys into one",
            )
        })?;
        oauth.jwks_file = Some(PathBuf::from(path));
        oauth.expected_issuer = keys.value("sasl.oauthbearer.expected.issuer").map(String::from);
        oauth.expected_audience = keys.list("sasl.oauthbearer.expected.audience");
        let skew = keys.value("sasl.oauthbearer.clock.skew.seconds").unwrap_or("30");
        let skew: i64 = skew.trim().parse().map_err(|_| {
            invalid(
                "sasl.oauthbearer.clock.skew.seconds",
                format!("{skew:?} is not a number"),
            )
        })?;
        oauth.clock_skew_ms = skew.saturating_mul(1000);
        return Ok(oauth);
    }
    let Some(j) = jaas("OAUTHBEARER")? else {
        return Ok(oauth);
    };
    let option = |name: &str| j.options.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if let Some(claim) = option("unsecuredValidatorPrincipalClaimName") {
        oauth.principal_claim = claim;
    }
    if let Some(claim) = option("unsecuredValidatorScopeClaimName") {
        oauth.scope_claim = claim;
    }
    if let Some(scope) = option("unsecuredValidatorRequiredScope") {
        oauth.required_scope = scope
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    if let Some(skew) = option("unsecuredValidatorAllowableClockSkewMs") {
        oauth.clock_skew_ms = skew.trim().parse().map_err(|_| {
            invalid(
                "unsecuredValidatorAllowableClockSkewMs",
                format!("{skew:?} is not a number"),
            )
        })?;
    }
    Ok(oauth)
}

/// One JAAS login-module entry: `Class flag key="value" key=value … ;`.
#[derive(Debug, Clone, PartialEq)]
pub struct Jaas {
    pub login_module: String,
    pub options: Vec<(String, String)>,
}

/// Parse a JAAS line as Kafka's `sasl.jaas.config` holds it (one module).
pub fn parse_jaas(text: &str) -> Result<Jaas, String> {
    let mut chars = text.trim().chars().peekable();
    let word = |chars: &mut std::iter::Peekable<std::str::Chars>| -> String {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '=' || c == ';' {
                break;
            }
            w.push(c);
            chars.next();
        }
        w
    };
    let login_module = word(&mut chars);
    let flag = word(&mut chars);
    if login_module.is_empty() || !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str()) {
        return Err("expected `LoginModuleClass required key=\"value\" … ;`".into());
    }
    let mut options = Vec::new();
    loop {
        let key = word(&mut chars);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if key.is_empty() {
            match chars.next() {
                Some(';') | None => break,
                Some(c) => return Err(format!("unexpected {c:?}")),
            }
        }
        if chars.next() != Some('=') {
            return Err(format!("option {key} has no value"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next() {
                    Some('\\') => v.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => v.push(c),
                    None => return Err(format!("the value of {key} has no closing quote")),
                }
            }
            v
        } else {
            word(&mut chars)
        };
        options.push((key, value));
    }
    Ok(Jaas { login_module, options })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn jaas_lines_parse_as_kafka_writes_them() {
        let j = parse_jaas(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="a s\"x" user_admin="admin-secret" user_alice=alice-secret;"#,
        )
        .unwrap();
        assert_eq!(
            j.login_module,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(j.options[1], ("password".into(), "a s\"x".into()));
        assert_eq!(j.options[3], ("user_alice".into(), "alice-secret".into()));
        let scram = parse_jaas("org.apache.kafka.common.security.scram.ScramLoginModule required;").unwrap();
        assert!(scram.options.is_empty());
        assert!(parse_jaas("Module maybe;").is_err());
        assert!(parse_jaas(r#"M required a="unclosed;"#).is_err());
    }

    #[test]
    fn listener_keys_win_over_plain_keys_and_pem_rules_hold() {
        let listeners = crate::config::parse_listeners("listeners", "SSL://:9093,SASL_SSL://:9094").unwrap();
        let map = super::super::listeners::default_protocol_map();
        let p = props(&[
            ("ssl.keystore.location", "/broad.pem"),
            ("listener.name.sasl_ssl.ssl.keystore.location", "/narrow.pem"),
            ("ssl.client.auth", "required"),
            ("ssl.truststore.location", "/ca.pem"),
            ("listener.name.sasl_ssl.sasl.enabled.mechanisms", "plain,SCRAM-SHA-512"),
            (
                "listener.name.sasl_ssl.plain.sasl.jaas.config",
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="pw";"#,
            ),
        ]);
        let s = resolve(&listeners, &map, &p).unwrap();
        let ssl = s["SSL"].tls.as_ref().unwrap();
        assert_eq!(ssl.keystore, KeyStore::File("/broad.pem".into()));
        assert_eq!(ssl.client_auth, ClientAuth::Required);
        let sasl_ssl = &s["SASL_SSL"];
        assert_eq!(
            sasl_ssl.tls.as_ref().unwrap().keystore,
            KeyStore::File("/narrow.pem".into())
        );
        // KIP-684: the broker-wide ssl.client.auth does not apply to SASL_SSL.
        assert_eq!(sasl_ssl.tls.as_ref().unwrap().client_auth, ClientAuth::None);
        let sasl = sasl_ssl.sasl.as_ref().unwrap();
        assert_eq!(sasl.mechanisms, ["PLAIN", "SCRAM-SHA-512"]);
        assert_eq!(sasl.plain_users["alice"], "pw");

        let bad = |pairs: &[(&str, &str)]| resolve(&listeners, &map, &props(pairs)).unwrap_err().to_string();
        assert!(bad(&[]).contains("needs a key and certificate"));
        assert!(bad(&[("ssl.keystore.location", "/k"), ("ssl.keystore.password", "x")]).contains("password"));
        assert!(bad(&[("ssl.keystore.key", "K")]).contains("certificate chain is not specified"));
        assert!(bad(&[("ssl.keystore.location", "/k"), ("ssl.keystore.type", "JKS")]).contains("PEM"));
        assert!(bad(&[("ssl.keystore.location", "/k"), ("ssl.client.auth", "required")]).contains("truststore"));
        let no_mechanism = bad(&[("ssl.keystore.location", "/k")]);
        assert!(no_mechanism.contains("sasl.enabled.mechanisms"), "{no_mechanism}");
        let gssapi = bad(&[("ssl.keystore.location", "/k"), ("sasl.enabled.mechanisms", "GSSAPI")]);
        assert!(gssapi.contains("not supported"), "{gssapi}");
    }
}
