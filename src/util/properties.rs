//! Java-style properties files (`meta.properties`, `server.properties`, topic
//! configs), as Kafka writes and reads them.

use std::collections::HashMap;

/// `key=value` or `key: value` lines of a Java-style properties file; `#` and `!`
/// start comments; a line ending in `\` goes on on the next (long values such
/// as a JAAS line are written that way).
pub fn parse(text: &str) -> HashMap<String, String> {
    let mut logical = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = if pending.is_empty() {
            line.trim()
        } else {
            line.trim_start()
        };
        if pending.is_empty() && (line.starts_with('#') || line.starts_with('!')) {
            continue;
        }
        let trailing = line.len() - line.trim_end_matches('\\').len();
        if trailing % 2 == 1 {
            pending.push_str(&line[..line.len() - 1]);
            continue;
        }
        pending.push_str(line);
        logical.push(std::mem::take(&mut pending));
    }
    if !pending.is_empty() {
        logical.push(pending);
    }
    logical
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let at = l.find(['=', ':'])?;
            Some((l[..at].trim().to_string(), l[at + 1..].trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn continued_lines_are_joined() {
        let p = super::parse("# c\na=1\njaas=Module required \\\n    user_a=\"x\";\nb: 2\n");
        assert_eq!(p["a"], "1");
        assert_eq!(p["jaas"], "Module required user_a=\"x\";");
        assert_eq!(p["b"], "2");
    }
}
