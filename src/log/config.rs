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
        }
    }
}

/// The type DescribeConfigs reports (Kafka's ConfigType codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// One topic config: its name, its broker synonym, how to read and set it.
pub struct ConfigDef {
    pub name: &'static str,
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

fn long(v: &str, min: i64) -> Result<i64, String> {
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

/// Every topic config strom honours, in Kafka's alphabetical order.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    ConfigDef {
        name: "cleanup.policy",
        broker_name: "log.cleanup.policy",
        kind: ConfigType::List,
        doc: "delete: old segments are removed by retention; compact: only the latest record per key is kept",
        get: render_policy,
        set: |c, v| {
            (c.cleanup_delete, c.cleanup_compact) = policy(v)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "delete.retention.ms",
        broker_name: "log.cleaner.delete.retention.ms",
        kind: ConfigType::Long,
        doc: "how long tombstones are kept on compacted topics",
        get: |c| c.delete_retention_ms.to_string(),
        set: |c, v| {
            c.delete_retention_ms = long(v, 0)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "flush.messages",
        broker_name: "log.flush.interval.messages",
        kind: ConfigType::Long,
        doc: "fsync after this many messages (acks=-1 always fsyncs)",
        get: |c| c.flush_interval_messages.to_string(),
        set: |c, v| {
            c.flush_interval_messages = long(v, 1)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "flush.ms",
        broker_name: "log.flush.interval.ms",
        kind: ConfigType::Long,
        doc: "fsync data older than this",
        get: |c| c.flush_interval_ms.to_string(),
        set: |c, v| {
            c.flush_interval_ms = long(v, 0)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "index.interval.bytes",
        broker_name: "log.index.interval.bytes",
        kind: ConfigType::Int,
        doc: "bytes of log between two offset-index entries",
        get: |c| c.index_interval_bytes.to_string(),
        set: |c, v| {
            c.index_interval_bytes = long(v, 0)? as u64;
            Ok(())
        },
    },
    ConfigDef {
        name: "max.message.bytes",
        broker_name: "message.max.bytes",
        kind: ConfigType::Int,
        doc: "the largest record batch accepted",
        get: |c| c.message_max_bytes.to_string(),
        set: |c, v| {
            c.message_max_bytes = long(v, 0)?.min(i32::MAX as i64) as usize;
            Ok(())
        },
    },
    ConfigDef {
        name: "message.timestamp.type",
        broker_name: "log.message.timestamp.type",
        kind: ConfigType::String,
        doc: "CreateTime keeps the producer's timestamps; LogAppendTime sets the broker's",
        get: |c| {
            if c.log_append_time {
                "LogAppendTime"
            } else {
                "CreateTime"
            }
            .into()
        },
        set: |c, v| {
            c.log_append_time = match v.trim() {
                "CreateTime" => false,
                "LogAppendTime" => true,
                other => return Err(format!("{other:?} is not CreateTime or LogAppendTime")),
            };
            Ok(())
        },
    },
    ConfigDef {
        name: "min.cleanable.dirty.ratio",
        broker_name: "log.cleaner.min.cleanable.ratio",
        kind: ConfigType::Double,
        doc: "compact once this share of the log is not yet compacted",
        get: |c| c.min_cleanable_dirty_ratio.to_string(),
        set: |c, v| {
            let r: f64 = v.trim().parse().map_err(|_| format!("{v:?} is not a number"))?;
            if !(0.0..=1.0).contains(&r) {
                return Err(format!("{r} is not between 0 and 1"));
            }
            c.min_cleanable_dirty_ratio = r;
            Ok(())
        },
    },
    ConfigDef {
        name: "min.compaction.lag.ms",
        broker_name: "log.cleaner.min.compaction.lag.ms",
        kind: ConfigType::Long,
        doc: "records younger than this are never compacted",
        get: |c| c.min_compaction_lag_ms.to_string(),
        set: |c, v| {
            c.min_compaction_lag_ms = long(v, 0)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "retention.bytes",
        broker_name: "log.retention.bytes",
        kind: ConfigType::Long,
        doc: "delete the oldest segments while a partition is larger than this (-1: no limit)",
        get: |c| c.retention_bytes.to_string(),
        set: |c, v| {
            c.retention_bytes = long(v, -1)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "retention.ms",
        broker_name: "log.retention.ms",
        kind: ConfigType::Long,
        doc: "delete segments whose newest record is older than this (-1: keep forever)",
        get: |c| c.retention_ms.to_string(),
        set: |c, v| {
            c.retention_ms = long(v, -1)?;
            Ok(())
        },
    },
    ConfigDef {
        name: "segment.bytes",
        broker_name: "log.segment.bytes",
        kind: ConfigType::Int,
        doc: "roll the active segment at this size",
        get: |c| c.segment_bytes.to_string(),
        set: |c, v| {
            c.segment_bytes = long(v, 14)?.min(i32::MAX as i64) as u64;
            Ok(())
        },
    },
    ConfigDef {
        name: "segment.ms",
        broker_name: "log.roll.ms",
        kind: ConfigType::Long,
        doc: "roll the active segment once it is this old",
        get: |c| c.roll_ms.to_string(),
        set: |c, v| {
            c.roll_ms = long(v, 1)? as u64;
            Ok(())
        },
    },
];

pub fn topic_config(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

pub fn broker_config(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.broker_name == name)
}

impl LogConfig {
    /// Set one topic config by its Kafka name, validating the value.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let def = topic_config(name).ok_or_else(|| format!("unknown topic config {name:?}"))?;
        (def.set)(self, value).map_err(|e| format!("invalid value for {name}: {e}"))
    }

    /// Set one broker default by its Kafka broker key.
    pub fn set_broker(&mut self, name: &str, value: &str) -> Result<(), String> {
        let def = broker_config(name).ok_or_else(|| format!("unknown broker config {name:?}"))?;
        (def.set)(self, value).map_err(|e| format!("invalid value for {name}: {e}"))
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

/// Validate a set of topic overrides and return them normalised (as DescribeConfigs
/// will show them).
pub fn validate_overrides(
    base: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let effective = base.with_overrides(overrides)?;
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
    fn broker_keys_set_defaults() {
        let mut c = LogConfig::default();
        c.set_broker("log.cleanup.policy", "compact").unwrap();
        c.set_broker("log.retention.ms", "5000").unwrap();
        assert!(c.cleanup_compact && !c.cleanup_delete);
        assert_eq!(c.retention_ms, 5000);
        assert!(c.set_broker("retention.ms", "5").is_err());
    }
}

/// Where a config value comes from (Kafka's DescribeConfigs ConfigSource codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic = 1,
    StaticBroker = 4,
    Default = 5,
}

/// One config as DescribeConfigs and CreateTopics (v5+) show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: String,
    pub source: ConfigSource,
    pub read_only: bool,
    pub kind: ConfigType,
    pub doc: &'static str,
    /// The value's synonyms in order of precedence: the topic override, the
    /// broker's setting, the default.
    pub synonyms: Vec<(String, String, ConfigSource)>,
}

/// Every config of a topic: its override, else the broker's setting, else Kafka's
/// default, with the synonyms that explain it.
pub fn describe_topic(
    broker: &LogConfig,
    broker_overrides: &BTreeMap<String, String>,
    topic_overrides: &BTreeMap<String, String>,
) -> Vec<ConfigEntry> {
    let defaults = LogConfig::default();
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let mut synonyms = Vec::new();
            if let Some(v) = topic_overrides.get(def.name) {
                synonyms.push((def.name.to_string(), v.clone(), ConfigSource::DynamicTopic));
            }
            if let Some(v) = broker_overrides.get(def.broker_name) {
                synonyms.push((def.broker_name.to_string(), v.clone(), ConfigSource::StaticBroker));
            }
            synonyms.push((def.broker_name.to_string(), def.value(&defaults), ConfigSource::Default));
            let (value, source) = match topic_overrides.get(def.name) {
                Some(v) => (v.clone(), ConfigSource::DynamicTopic),
                None if broker_overrides.contains_key(def.broker_name) => {
                    (def.value(broker), ConfigSource::StaticBroker)
                }
                None => (def.value(broker), ConfigSource::Default),
            };
            ConfigEntry {
                name: def.name.to_string(),
                value,
                source,
                read_only: false,
                kind: def.kind,
                doc: def.doc,
                synonyms,
            }
        })
        .collect()
}

/// The broker's `log.*` defaults, as a broker resource shows them: read-only (they
/// come from flags and server.properties).
pub fn describe_broker(broker: &LogConfig, broker_overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    let defaults = LogConfig::default();
    let mut entries: Vec<ConfigEntry> = TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let explicit = broker_overrides.contains_key(def.broker_name);
            let source = if explicit {
                ConfigSource::StaticBroker
            } else {
                ConfigSource::Default
            };
            let mut synonyms = Vec::new();
            if explicit {
                synonyms.push((
                    def.broker_name.to_string(),
                    def.value(broker),
                    ConfigSource::StaticBroker,
                ));
            }
            synonyms.push((def.broker_name.to_string(), def.value(&defaults), ConfigSource::Default));
            ConfigEntry {
                name: def.broker_name.to_string(),
                value: def.value(broker),
                source,
                read_only: true,
                kind: def.kind,
                doc: def.doc,
                synonyms,
            }
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}
