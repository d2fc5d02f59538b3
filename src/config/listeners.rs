//! Listeners as Kafka names them: `listeners` / `advertised.listeners` entries
//! `NAME://host:port`, and `listener.security.protocol.map`, which gives each
//! listener name its security protocol.

use std::collections::BTreeMap;

use super::ConfigError;

/// One listener: Kafka's `NAME://host:port`; a bare `host:port` is named PLAINTEXT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Listener {
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parse Kafka's comma-separated listener list.
pub fn parse_listeners(key: &'static str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        key,
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, hostport) = match item.split_once("://") {
            Some((name, rest)) => (name.to_ascii_uppercase(), rest),
            None => ("PLAINTEXT".to_string(), item),
        };
        let (host, port) = hostport.rsplit_once(':').ok_or_else(|| invalid("expected HOST:PORT"))?;
        let port: u16 = port.parse().map_err(|_| invalid("port is not a number"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        if out.iter().any(|l: &Listener| l.name == name) {
            return Err(invalid("listener names must be unique"));
        }
        out.push(Listener { name, host, port });
    }
    if out.is_empty() {
        return Err(invalid("no listener given"));
    }
    Ok(out)
}

/// How a listener's connections are secured (Kafka's SecurityProtocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    fn parse(name: &str) -> Option<SecurityProtocol> {
        Self::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

/// Kafka's default `listener.security.protocol.map`: each protocol under its own
/// name (PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL).
pub fn default_protocol_map() -> BTreeMap<String, SecurityProtocol> {
    SecurityProtocol::ALL
        .into_iter()
        .map(|p| (p.name().to_string(), p))
        .collect()
}

/// Parse `listener.security.protocol.map` (`NAME:PROTOCOL,…`; names upper-cased
/// as Kafka normalises them).
pub fn parse_protocol_map(value: &str) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    let key = "listener.security.protocol.map";
    let pairs = super::parse_pairs(key, value, |name, protocol| {
        let protocol = SecurityProtocol::parse(protocol)
            .ok_or_else(|| format!("Invalid security protocol `{protocol}` defined in {key}"))?;
        Ok((name.to_ascii_uppercase(), protocol))
    })?;
    Ok(pairs.into_iter().collect())
}

/// Kafka's checks of listeners against the protocol map: every listener, and
/// every advertised one, has a protocol, and advertised names are listener
/// names.
pub fn check_listeners(
    listeners: &[Listener],
    advertised: &[Listener],
    map: &BTreeMap<String, SecurityProtocol>,
) -> Result<(), ConfigError> {
    let invalid = |key: &'static str, value: &str, reason: String| ConfigError::Invalid {
        key,
        value: value.to_string(),
        reason,
    };
    if let Some(l) = listeners.iter().find(|l| !map.contains_key(&l.name)) {
        return Err(invalid(
            "listeners",
            &l.name,
            format!("No security protocol defined for listener {}", l.name),
        ));
    }
    if let Some(a) = advertised.iter().find(|a| !listeners.iter().any(|l| l.name == a.name)) {
        let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
        return Err(invalid(
            "advertised.listeners",
            &a.name,
            format!(
                "advertised.listeners listener names must be equal to or a subset of the ones defined in listeners; the valid options are {}",
                names.join(",")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_map_is_checked_as_kafka_does() {
        let map = default_protocol_map();
        let plain = parse_listeners("listeners", "PLAINTEXT://:9092").unwrap();
        check_listeners(&plain, &plain, &map).unwrap();
        // A name the map does not know.
        let named = parse_listeners("listeners", "INTERNAL://:29092").unwrap();
        let e = check_listeners(&named, &[], &map).unwrap_err().to_string();
        assert!(e.contains("No security protocol defined for listener INTERNAL"), "{e}");
        let map = parse_protocol_map("internal:plaintext, EXTERNAL:PLAINTEXT").unwrap();
        check_listeners(&named, &named, &map).unwrap();
        // Advertised names must be listener names.
        let other = parse_listeners("advertised.listeners", "EXTERNAL://h:1").unwrap();
        assert!(check_listeners(&named, &other, &map).is_err());
        assert!(parse_protocol_map("A:TLS").is_err());
        assert!(parse_protocol_map("A").is_err());
    }
}
