//! The topics a consumer group's subscriptions resolve against, and its regular
//! expressions.
//!
//! Kafka compiles subscription patterns with RE2/J; the `regex` crate has the
//! same RE2 semantics (no backreferences or lookaround, linear-time matching).
//! Like RE2/J's `matches()`, a pattern must match the whole topic name, and it
//! never matches an internal topic.

use std::collections::HashMap;

use regex::{Regex, RegexBuilder};
use uuid::Uuid;

use crate::error::{Error, Result};

/// The longest pattern and the most memory its program may take.
const REGEX_MAX_LEN: usize = 4096;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compile a subscription pattern, anchored at both ends.
pub fn compile(pattern: &str) -> Result<Regex> {
    if pattern.len() > REGEX_MAX_LEN {
        return Err(Error::InvalidRegularExpression(format!(
            "patterns are at most {REGEX_MAX_LEN} bytes"
        )));
    }
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| Error::InvalidRegularExpression(e.to_string()))
}

/// Compile a pattern as a member sent it: errors name the member's pattern.
pub fn check(pattern: &str) -> Result<()> {
    if let Err(e) = RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).build() {
        return Err(Error::InvalidRegularExpression(format!(
            "SubscribedTopicRegex `{pattern}` is not a valid regular expression: {e}"
        )));
    }
    compile(pattern).map(|_| ())
}

/// The topics as they are now: name → (id, partition count), and by id.
#[derive(Debug, Clone, Default)]
pub struct TopicsView {
    topics: HashMap<String, (Uuid, i32, bool)>,
    names: HashMap<Uuid, String>,
    /// Changes when a topic is created, deleted or grows (order-independent).
    fingerprint: u64,
}

impl TopicsView {
    /// `(name, id, partitions, internal)` of every topic.
    pub fn new(topics: impl IntoIterator<Item = (String, Uuid, i32, bool)>) -> TopicsView {
        use std::hash::{Hash, Hasher};
        let topics: HashMap<String, (Uuid, i32, bool)> = topics
            .into_iter()
            .map(|(n, id, p, internal)| (n, (id, p, internal)))
            .collect();
        let names = topics.iter().map(|(n, t)| (t.0, n.clone())).collect();
        let fingerprint = topics.iter().fold(0u64, |sum, t| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            t.hash(&mut h);
            sum.wrapping_add(h.finish())
        });
        TopicsView {
            topics,
            names,
            fingerprint,
        }
    }

    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    pub fn get(&self, name: &str) -> Option<(Uuid, i32)> {
        self.topics.get(name).map(|&(id, p, _)| (id, p))
    }

    pub fn name_of(&self, id: &Uuid) -> Option<&str> {
        self.names.get(id).map(String::as_str)
    }

    /// Names of the non-internal topics `pattern` matches (none if it does not
    /// compile: it was checked when the member sent it).
    pub fn matching(&self, pattern: &str) -> Vec<String> {
        let Ok(re) = compile(pattern) else {
            return Vec::new();
        };
        self.matching_compiled(&re)
    }

    pub fn matching_compiled(&self, re: &Regex) -> Vec<String> {
        self.topics
            .iter()
            .filter(|(name, t)| !t.2 && re.is_match(name))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_names_and_skip_internal_topics() {
        let id = Uuid::nil();
        let view = TopicsView::new([
            ("orders".to_string(), id, 1, false),
            ("orders-eu".to_string(), id, 1, false),
            ("my-orders".to_string(), id, 1, false),
            ("__consumer_offsets".to_string(), id, 1, true),
        ]);
        let mut m = view.matching("orders.*");
        m.sort();
        assert_eq!(m, ["orders", "orders-eu"]);
        assert!(view.matching(".*offsets").is_empty());
        assert_eq!(view.matching("orders|my-orders").len(), 2);
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(matches!(compile("(a"), Err(Error::InvalidRegularExpression(_))));
        // RE2 has no backreferences or lookaround.
        assert!(compile("(a)\\1").is_err());
        assert!(compile("a(?=b)").is_err());
        assert!(compile(&"a".repeat(5000)).is_err());
    }
}
