//! The settings the broker gives its internal topics (as Kafka's).

use std::collections::BTreeMap;

/// Kafka's settings for `__transaction_state`.
pub fn transaction_state_configs() -> BTreeMap<String, String> {
    [
        ("cleanup.policy", "compact"),
        ("compression.type", "uncompressed"),
        ("segment.bytes", "104857600"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Kafka's settings for the offsets topic: compacted, 100 MiB segments.
pub fn offsets_topic_configs() -> BTreeMap<String, String> {
    [("cleanup.policy", "compact"), ("segment.bytes", "104857600")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
