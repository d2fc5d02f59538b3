//! Java-style properties files (`meta.properties`, `server.properties`, topic
//! configs), as Kafka writes and reads them.

use std::collections::HashMap;

/// `key=value` or `key: value` lines of a Java-style properties file; `#` and `!`
/// start comments.
pub fn parse(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let at = l.find(['=', ':'])?;
            Some((l[..at].trim().to_string(), l[at + 1..].trim().to_string()))
        })
        .collect()
}
