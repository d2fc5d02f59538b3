//! Who a connection is: Kafka's `KafkaPrincipal` (`User:alice`), and how an SSL
//! connection's principal is made from its client certificate: the subject as
//! an RFC 2253 string (what Java's `X500Principal.getName()` prints), mapped by
//! `ssl.principal.mapping.rules` (Kafka's `SslPrincipalMapper`).

use std::fmt;

use regex::Regex;

/// A principal as ACLs name it: `User:alice`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// Always "User" for principals strom builds.
    pub kind: String,
    pub name: String,
}

impl Principal {
    pub fn user(name: impl Into<String>) -> Principal {
        Principal {
            kind: "User".into(),
            name: name.into(),
        }
    }

    /// strom's own in-process tools (the web console): they act as the broker
    /// itself, as Kafka's inter-broker principal does. No login or certificate
    /// can produce this kind.
    pub fn internal(name: impl Into<String>) -> Principal {
        Principal {
            kind: "Internal".into(),
            name: name.into(),
        }
    }

    pub fn is_internal(&self) -> bool {
        self.kind == "Internal"
    }

    /// Who PLAINTEXT connections, and SSL ones without a client certificate, are.
    pub fn anonymous() -> Principal {
        Principal::user("ANONYMOUS")
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// The subject of a DER certificate in RFC 2253 form: most specific RDN first,
/// no space after commas, CN/L/ST/O/OU/C/STREET/DC/UID by name and other
/// attributes as `OID=#hex` of their DER value.
pub fn subject_dn(cert_der: &[u8]) -> Result<String, String> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|e| format!("unreadable certificate: {e}"))?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        let mut parts = Vec::new();
        for atv in rdn.iter() {
            let oid = atv.attr_type().to_id_string();
            let value = atv.attr_value();
            let part = match keyword(&oid) {
                Some(name) => match atv.as_str() {
                    Ok(text) => format!("{name}={}", escape(text)),
                    Err(_) => format!("{name}=#{}", hex_der(value)),
                },
                None => format!("{oid}=#{}", hex_der(value)),
            };
            parts.push(part);
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// The value's whole DER encoding (tag, length, content) in lower-case hex.
fn hex_der(value: &x509_parser::der_parser::asn1_rs::Any) -> String {
    let data = value.data;
    let mut der = vec![value.header.tag().0 as u8];
    match data.len() {
        n if n < 0x80 => der.push(n as u8),
        n if n < 0x100 => der.extend([0x81, n as u8]),
        n => der.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    der.extend_from_slice(data);
    der.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 2253 escaping: `, + " \ < > ;` always, `#` or space at the start, space
/// at the end.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One of `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        /// The pattern, anchored: a rule applies only when it matches the whole DN.
        pattern: Regex,
        replacement: String,
        case: Option<char>,
    },
}

/// `ssl.principal.mapping.rules`: the first rule whose pattern matches the whole
/// DN makes the name; `DEFAULT` keeps the DN; no rule matching fails the login.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
    text: String,
}

impl PrincipalMapper {
    /// Parse Kafka's rule list: `DEFAULT` or `RULE:pattern/replacement/[LU]`,
    /// comma separated (a comma inside a rule's pattern belongs to it).
    pub fn parse(text: &str) -> Result<PrincipalMapper, String> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after.trim_start();
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after).ok_or_else(|| format!("bad rule in {text:?}"))?;
                let (replacement, after) = until_slash(after).ok_or_else(|| format!("bad rule in {text:?}"))?;
                let (case, after) = match after.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &after[1..]),
                    _ => (None, after),
                };
                let pattern = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("bad pattern {pattern:?} in {text:?}: {e}"))?;
                rules.push(Rule::Replace {
                    pattern,
                    replacement,
                    case,
                });
                rest = after.trim_start();
            } else {
                return Err(format!("invalid rule in {text:?} at {rest:?}"));
            }
            rest = match rest.strip_prefix(',') {
                Some(after) => after.trim_start(),
                None if rest.is_empty() => rest,
                None => return Err(format!("invalid rule in {text:?} at {rest:?}")),
            };
        }
        Ok(PrincipalMapper {
            rules,
            text: text.to_string(),
        })
    }

    /// The principal name for `dn`.
    pub fn name(&self, dn: &str) -> Result<String, String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Ok(dn.to_string()),
                Rule::Replace {
                    pattern,
                    replacement,
                    case,
                } => {
                    let Some(caps) = pattern.captures(dn) else {
                        continue;
                    };
                    let name = expand(replacement, &caps);
                    return Ok(match case {
                        Some('L') => name.to_lowercase(),
                        Some('U') => name.to_uppercase(),
                        _ => name,
                    });
                }
            }
        }
        Err(format!(
            "Failed to map name for '{dn}' based on SSL principal mapping rules: no rule applies (rules [{}])",
            self.text
        ))
    }
}

/// The text up to the next unescaped `/` (`\/` is a slash of the text), and
/// what follows that slash.
fn until_slash(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => return None,
            },
            '/' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// Java's replacement syntax: `$n` is group n (kept as written when there is
/// no such group, as Kafka does), `\x` is x.
fn expand(replacement: &str, caps: &regex::Captures) -> String {
    let mut out = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                match digits.parse::<usize>().ok().and_then(|n| caps.get(n)) {
                    Some(m) => out.push_str(m.as_str()),
                    None => {
                        out.push('$');
                        out.push_str(&digits);
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_documented_rules_map_as_documented() {
        let m = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
        )
        .unwrap();
        assert_eq!(
            m.name("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .unwrap(),
            "serviceuser"
        );
        assert_eq!(
            m.name("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .unwrap(),
            "adminuser@admin"
        );
        assert_eq!(m.name("O=x,CN=Some.Thing").unwrap(), "some.thing");
        assert_eq!(
            PrincipalMapper::parse("DEFAULT").unwrap().name("CN=a,O=b").unwrap(),
            "CN=a,O=b"
        );
        // A rule must match the whole DN; none matching fails.
        let strict = PrincipalMapper::parse("RULE:CN=(.*)/$1/U").unwrap();
        assert_eq!(strict.name("CN=x").unwrap(), "X");
        assert!(strict.name("CN=x,O=y,").is_ok());
        assert!(strict.name("O=y").is_err());
        // $n past the groups stays as written.
        assert_eq!(
            PrincipalMapper::parse("RULE:CN=(.*)/$1-$2/")
                .unwrap()
                .name("CN=a")
                .unwrap(),
            "a-$2"
        );
    }

    #[test]
    fn invalid_rules_are_refused() {
        for bad in [
            "default",
            "DEFAULT/L",
            "rule:CN=(.*)/$1/",
            "RULE:CN=(.*)/$1",
            "RULE:CN=(.*)/$1/LU",
            "RULE:(/x/",
        ] {
            assert!(PrincipalMapper::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc2253_escapes() {
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape("#x "), "\\#x\\ ");
        assert_eq!(escape("plain"), "plain");
    }
}
