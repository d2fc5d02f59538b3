//! Topic configs: Kafka's names, defaults and validation, in one table.
//!
//! Every topic-level config has a broker-level key that sets its default (Kafka's
//! `log.*` synonyms). A topic's effective [`LogConfig`] is the broker's, with the
//! topic's overrides applied on top.

use std::collections::BTreeMap;

/// The effective log settings of a topic (or the broker's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// segment.bytes
    pub segment_bytes: u64,
    /// segment.ms: roll the active segment once it is this old.
    pub roll_ms: u64,
    /// max.message.bytes: the largest record batch accepted.
    pub message_max_bytes: usize,
    /// flush.messages (i64::MAX: never).
    pub flush_interval_messages: i64,
    /// flush.ms (i64::MAX: never).
    pub flush_interval_ms: i64,
    /// index.interval.bytes
    pub index_interval_bytes: u64,
    /// retention.ms (−1: forever)
    pub retention_ms: i64,
    /// retention.bytes (−1: unlimited)
    pub retention_bytes: i64,
    /// cleanup.policy contains "delete"
    pub cleanup_delete: bool,
    /// cleanup.policy contains "compact"
    pub cleanup_compact: bool,
    /// message.timestamp.type = LogAppendTime
    pub log_append_time: bool,
    /// min.compaction.lag.ms
    pub min_compaction_lag_ms: i64,
    /// delete.retention.ms: how long tombstones survive compaction.
    pub delete_retention_ms: i64,
    /// min.cleanable.dirty.ratio
    pub min_cleanable_dirty_ratio: f64,
    /// compression.type: `producer` keeps the producer's codec.
    pub compression_type: String,
    pub compression_gzip_level: i32,
    pub compression_lz4_level: i32,
    pub compression_zstd_level: i32,
    /// file.delete.delay.ms
    pub file_delete_delay_ms: i64,
    pub follower_replication_throttled_replicas: String,
    pub leader_replication_throttled_replicas: String,
    /// local.retention.bytes / .ms (−2: as retention.*), for tiered storage.
    pub local_retention_bytes: i64,
    pub local_retention_ms: i64,
    /// max.compaction.lag.ms
    pub max_compaction_lag_ms: i64,
    /// message.timestamp.after.max.ms / before.max.ms
    pub message_timestamp_after_max_ms: i64,
    pub message_timestamp_before_max_ms: i64,
    /// min.insync.replicas
    pub min_insync_replicas: i32,
    pub preallocate: bool,
    pub remote_log_copy_disable: bool,
    pub remote_log_delete_on_disable: bool,
    pub remote_storage_enable: bool,
    /// segment.index.bytes
    pub segment_index_bytes: i32,
    /// segment.jitter.ms
    pub segment_jitter_ms: i64,
    pub unclean_leader_election_enable: bool,
    /// Kafka 3.9's, accepted and reported as deprecated.
    pub message_format_version: String,
    pub message_downconversion_enable: bool,
    pub message_timestamp_difference_max_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            roll_ms: 7 * 24 * 60 * 60 * 1000,
            message_max_bytes: 1_048_588,
            flush_interval_messages: i64::MAX,
            flush_interval_ms: i64::MAX,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            cleanup_delete: true,
            cleanup_compact: false,
            log_append_time: false,
            min_compaction_lag_ms: 0,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_cleanable_dirty_ratio: 0.5,
            compression_type: "producer".into(),
            compression_gzip_level: -1,
            compression_lz4_level: 9,
            compression_zstd_level: 3,
            file_delete_delay_ms: 60_000,
            follower_replication_throttled_replicas: String::new(),
            leader_replication_throttled_replicas: String::new(),
            local_retention_bytes: -2,
            local_retention_ms: -2,
            max_compaction_lag_ms: i64::MAX,
            message_timestamp_after_max_ms: 3_600_000,
            message_timestamp_before_max_ms: i64::MAX,
            min_insync_replicas: 1,
            preallocate: false,
            remote_log_copy_disable: false,
            remote_log_delete_on_disable: false,
            remote_storage_enable: false,
            segment_index_bytes: 10 * 1024 * 1024,
            segment_jitter_ms: 0,
            unclean_leader_election_enable: false,
            message_format_version: "3.0-IV1".into(),
            message_downconversion_enable: true,
            message_timestamp_difference_max_ms: i64::MAX,
        }
    }
}

/// The type DescribeConfigs reports (Kafka's ConfigType codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// One topic config: its name, its broker synonym, how to read and set it.
pub struct ConfigDef {
    pub name: &'static str,
    /// The broker config that sets its default; empty for the few (replication
    /// throttles, tiered storage switches) that only exist per topic.
    pub broker_name: &'static str,
    pub kind: ConfigType,
    pub doc: &'static str,
    get: fn(&LogConfig) -> String,
    set: fn(&mut LogConfig, &str) -> Result<(), String>,
}

impl ConfigDef {
    pub fn value(&self, config: &LogConfig) -> String {
        (self.get)(config)
    }
}

pub(super) fn long(v: &str, min: i64) -> Result<i64, String> {
    let n: i64 = v.trim().parse().map_err(|_| format!("{v:?} is not a number"))?;
    if n < min {
        return Err(format!("{n} is below the minimum {min}"));
    }
    Ok(n)
}

fn policy(v: &str) -> Result<(bool, bool), String> {
    let mut delete = false;
    let mut compact = false;
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item {
            "delete" => delete = true,
            "compact" => compact = true,
            other => return Err(format!("{other:?} is not a cleanup policy (delete, compact)")),
        }
    }
    if !delete && !compact {
        return Err("cleanup.policy must name delete, compact or both".into());
    }
    Ok((delete, compact))
}

fn render_policy(c: &LogConfig) -> String {
    match (c.cleanup_delete, c.cleanup_compact) {
        (true, true) => "compact,delete".into(),
        (false, true) => "compact".into(),
        _ => "delete".into(),
    }
}

mod describe;
mod table;
pub use describe::{describe_broker, describe_topic, is_dynamic, BrokerLayers, ConfigEntry, ConfigSource};
pub use table::TOPIC_CONFIGS;

pub fn topic_config(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

pub fn broker_config(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS
        .iter()
        .find(|d| !d.broker_name.is_empty() && d.broker_name == name)
}

impl LogConfig {
    /// The codec (and level, where the codec has one) batches are stored with,
    /// or `None` for `producer`: as the producer sent them.
    pub fn target_codec(&self) -> Option<(i16, Option<i32>)> {
        use crate::record::compression as c;
        Some(match self.compression_type.as_str() {
            "uncompressed" => (c::NONE, None),
            "gzip" => (c::GZIP, Some(self.compression_gzip_level)),
            "snappy" => (c::SNAPPY, None),
            "lz4" => (c::LZ4, Some(self.compression_lz4_level)),
            "zstd" => (c::ZSTD, Some(self.compression_zstd_level)),
            _ => return None,
        })
    }

    /// Set one topic config by its Kafka name, validating the value.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let def = topic_config(name).ok_or_else(|| format!("Unknown topic config name: {name}"))?;
        (def.set)(self, value).map_err(|e| invalid_value(name, value, &e))
    }

    /// Set one broker default by its Kafka broker key.
    pub fn set_broker(&mut self, name: &str, value: &str) -> Result<(), String> {
        let def = broker_config(name).ok_or_else(|| format!("Unknown broker config name: {name}"))?;
        (def.set)(self, value).map_err(|e| invalid_value(name, value, &e))
    }

    /// The checks across configs Kafka makes (LogConfig.validateValues).
    pub fn check(&self) -> Result<(), String> {
        if self.min_compaction_lag_ms > self.max_compaction_lag_ms {
            return Err(format!(
                "conflict topic config setting min.compaction.lag.ms ({}) > max.compaction.lag.ms ({})",
                self.min_compaction_lag_ms, self.max_compaction_lag_ms
            ));
        }
        Ok(())
    }

    /// This config with a topic's overrides applied.
    pub fn with_overrides(&self, overrides: &BTreeMap<String, String>) -> Result<LogConfig, String> {
        let mut c = self.clone();
        for (k, v) in overrides {
            c.set(k, v)?;
        }
        Ok(c)
    }
}

/// Kafka's text for a value its validator refuses (ConfigException).
fn invalid_value(name: &str, value: &str, reason: &str) -> String {
    format!("Invalid value {value} for configuration {name}: {reason}")
}

/// Validate a set of topic overrides and return them normalised (as DescribeConfigs
/// will show them).
pub fn validate_overrides(
    base: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let effective = base.with_overrides(overrides)?;
    effective.check()?;
    Ok(overrides
        .keys()
        .map(|k| {
            let def = topic_config(k).expect("validated above");
            (k.clone(), def.value(&effective))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_render_as_kafka_shows_them() {
        let c = LogConfig::default();
        let value = |n: &str| topic_config(n).unwrap().value(&c);
        assert_eq!(value("cleanup.policy"), "delete");
        assert_eq!(value("retention.ms"), "604800000");
        assert_eq!(value("segment.bytes"), "1073741824");
        assert_eq!(value("max.message.bytes"), "1048588");
        assert_eq!(value("message.timestamp.type"), "CreateTime");
        assert_eq!(value("flush.messages"), "9223372036854775807");
    }

    #[test]
    fn overrides_are_validated_and_normalised() {
        let base = LogConfig::default();
        let mut o = BTreeMap::new();
        o.insert("cleanup.policy".to_string(), "delete, compact".to_string());
        o.insert("retention.ms".to_string(), "1000".to_string());
        let n = validate_overrides(&base, &o).unwrap();
        assert_eq!(n["cleanup.policy"], "compact,delete");
        let eff = base.with_overrides(&n).unwrap();
        assert!(eff.cleanup_compact && eff.cleanup_delete);
        assert_eq!(eff.retention_ms, 1000);
        for (k, v) in [
            ("retention.ms", "-2"),
            ("segment.bytes", "10"),
            ("cleanup.policy", "shred"),
            ("message.timestamp.type", "Now"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("no.such.config", "1"),
        ] {
            let mut bad = BTreeMap::new();
            bad.insert(k.to_string(), v.to_string());
            assert!(validate_overrides(&base, &bad).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn min_compaction_lag_above_max_is_a_conflict() {
        let base = LogConfig::default();
        let mut o = BTreeMap::new();
        o.insert("min.compaction.lag.ms".to_string(), "60000".to_string());
        o.insert("max.compaction.lag.ms".to_string(), "1".to_string());
        let e = validate_overrides(&base, &o).unwrap_err();
        assert!(
            e.starts_with("conflict topic config setting min.compaction.lag.ms"),
            "{e}"
        );
        o.insert("max.compaction.lag.ms".to_string(), "60000".to_string());
        assert!(validate_overrides(&base, &o).is_ok());
    }

    /// Kafka 4.1's topic configs, and the three Kafka 3.9 still took.
    const KAFKA_TOPIC_CONFIGS: &[&str] = &[
        "cleanup.policy",
        "compression.gzip.level",
        "compression.lz4.level",
        "compression.type",
        "compression.zstd.level",
        "delete.retention.ms",
        "file.delete.delay.ms",
        "flush.messages",
        "flush.ms",
        "follower.replication.throttled.replicas",
        "index.interval.bytes",
        "leader.replication.throttled.replicas",
        "local.retention.bytes",
        "local.retention.ms",
        "max.compaction.lag.ms",
        "max.message.bytes",
        "message.timestamp.after.max.ms",
        "message.timestamp.before.max.ms",
        "message.timestamp.type",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "min.insync.replicas",
        "preallocate",
        "remote.log.copy.disable",
        "remote.log.delete.on.disable",
        "remote.storage.enable",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.index.bytes",
        "segment.jitter.ms",
        "segment.ms",
        "unclean.leader.election.enable",
        "message.downconversion.enable",
        "message.format.version",
        "message.timestamp.difference.max.ms",
    ];

    #[test]
    fn every_kafka_topic_config_is_known_with_kafkas_default() {
        let names: Vec<&str> = TOPIC_CONFIGS.iter().map(|d| d.name).collect();
        let mut expected = KAFKA_TOPIC_CONFIGS.to_vec();
        expected.sort();
        assert_eq!(names, expected, "the table, in alphabetical order");
        let c = LogConfig::default();
        let value = |n: &str| topic_config(n).unwrap().value(&c);
        for (name, default) in [
            ("compression.type", "producer"),
            ("compression.gzip.level", "-1"),
            ("compression.lz4.level", "9"),
            ("compression.zstd.level", "3"),
            ("file.delete.delay.ms", "60000"),
            ("leader.replication.throttled.replicas", ""),
            ("local.retention.ms", "-2"),
            ("max.compaction.lag.ms", "9223372036854775807"),
            ("message.timestamp.after.max.ms", "3600000"),
            ("message.timestamp.before.max.ms", "9223372036854775807"),
            ("min.insync.replicas", "1"),
            ("preallocate", "false"),
            ("remote.storage.enable", "false"),
            ("segment.index.bytes", "10485760"),
            ("segment.jitter.ms", "0"),
            ("unclean.leader.election.enable", "false"),
            ("message.format.version", "3.0-IV1"),
            ("message.downconversion.enable", "true"),
        ] {
            assert_eq!(value(name), default, "{name}");
        }
    }

    #[test]
    fn new_configs_are_validated_as_kafka_does() {
        let base = LogConfig::default();
        let check = |k: &str, v: &str| {
            let mut o = BTreeMap::new();
            o.insert(k.to_string(), v.to_string());
            validate_overrides(&base, &o)
        };
        for (k, v) in [
            ("compression.type", "zstd"),
            ("compression.gzip.level", "9"),
            ("compression.zstd.level", "-5"),
            ("min.insync.replicas", "2"),
            ("preallocate", "TRUE"),
            ("leader.replication.throttled.replicas", "0:1,1:2"),
            ("follower.replication.throttled.replicas", "*"),
            ("message.format.version", "2.8-IV1"),
            ("local.retention.bytes", "-2"),
        ] {
            assert!(check(k, v).is_ok(), "{k}={v}");
        }
        for (k, v) in [
            ("compression.type", "brotli"),
            ("compression.gzip.level", "0"),
            ("compression.lz4.level", "18"),
            ("min.insync.replicas", "0"),
            ("preallocate", "yes"),
            ("leader.replication.throttled.replicas", "0-1"),
            ("remote.storage.enable", "true"),
            ("segment.index.bytes", "3"),
            ("message.format.version", "latest"),
            ("local.retention.ms", "-3"),
        ] {
            assert!(check(k, v).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn broker_keys_set_defaults() {
        let mut c = LogConfig::default();
        c.set_broker("log.cleanup.policy", "compact").unwrap();
        c.set_broker("log.retention.ms", "5000").unwrap();
        assert!(c.cleanup_compact && !c.cleanup_delete);
        assert_eq!(c.retention_ms, 5000);
        assert!(c.set_broker("retention.ms", "5").is_err());
    }
}
