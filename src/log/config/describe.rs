//! Configs as DescribeConfigs shows them: each value with its source and the
//! synonyms that explain it, through Kafka's layers of precedence — a topic's
//! override, then the broker's own dynamic setting, the cluster-wide dynamic
//! default, the broker's static setting (flags, server.properties), and Kafka's
//! default.

use std::collections::BTreeMap;

use super::{broker_config, ConfigType, LogConfig, TOPIC_CONFIGS};

/// Where a config value comes from (Kafka's DescribeConfigs ConfigSource codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
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
    /// broker's settings, the default.
    pub synonyms: Vec<(String, String, ConfigSource)>,
}

/// The broker-level settings of the `log.*` keys (and the other broker synonyms of
/// topic configs), by layer; values normalised.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrokerLayers {
    /// Set at run time for this broker (DYNAMIC_BROKER_CONFIG).
    pub dynamic_broker: BTreeMap<String, String>,
    /// Set at run time for every broker (DYNAMIC_DEFAULT_BROKER_CONFIG).
    pub dynamic_default: BTreeMap<String, String>,
    /// Set at start (STATIC_BROKER_CONFIG).
    pub static_broker: BTreeMap<String, String>,
}

impl BrokerLayers {
    /// The settings of broker key `key`, highest precedence first.
    pub fn synonyms(&self, key: &str) -> Vec<(String, String, ConfigSource)> {
        [
            (&self.dynamic_broker, ConfigSource::DynamicBroker),
            (&self.dynamic_default, ConfigSource::DynamicDefaultBroker),
            (&self.static_broker, ConfigSource::StaticBroker),
        ]
        .into_iter()
        .filter_map(|(layer, source)| layer.get(key).map(|v| (key.to_string(), v.clone(), source)))
        .collect()
    }

    /// `start` (the static config, already resolved) with the dynamic layers
    /// applied, the cluster default first.
    pub fn effective(&self, start: &LogConfig) -> Result<LogConfig, String> {
        let mut c = start.clone();
        for (k, v) in self.dynamic_default.iter().chain(&self.dynamic_broker) {
            c.set_broker(k, v)?;
        }
        Ok(c)
    }
}

/// Whether broker key `name` may change at run time: every broker synonym of a
/// topic config, as in Kafka (DynamicLogConfig), except the message format.
pub fn is_dynamic(name: &str) -> bool {
    name != "log.message.format.version" && broker_config(name).is_some()
}

/// Every config of a topic: its override, else the broker's setting, else Kafka's
/// default, with the synonyms that explain it. `broker` is the broker's effective
/// config.
pub fn describe_topic(
    broker: &LogConfig,
    layers: &BrokerLayers,
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
            if !def.broker_name.is_empty() {
                synonyms.extend(layers.synonyms(def.broker_name));
                synonyms.push((def.broker_name.to_string(), def.value(&defaults), ConfigSource::Default));
            }
            let (value, source) = match topic_overrides.get(def.name) {
                Some(v) => (v.clone(), ConfigSource::DynamicTopic),
                None => (
                    def.value(broker),
                    synonyms.first().map_or(ConfigSource::Default, |s| s.2),
                ),
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

/// The broker's `log.*` settings as a broker resource shows them (`default_only`:
/// the cluster-wide default resource, which shows only what is set there, as in
/// Kafka). Those that may change at run time are not read-only.
pub fn describe_broker(broker: &LogConfig, layers: &BrokerLayers, default_only: bool) -> Vec<ConfigEntry> {
    let defaults = LogConfig::default();
    let mut entries: Vec<ConfigEntry> = TOPIC_CONFIGS
        .iter()
        .filter(|def| !def.broker_name.is_empty())
        .filter(|def| !default_only || layers.dynamic_default.contains_key(def.broker_name))
        .map(|def| {
            let mut synonyms = layers.synonyms(def.broker_name);
            if default_only {
                synonyms.retain(|s| s.2 != ConfigSource::DynamicBroker);
            }
            synonyms.push((def.broker_name.to_string(), def.value(&defaults), ConfigSource::Default));
            let value = match default_only {
                true => synonyms[0].1.clone(),
                false => def.value(broker),
            };
            ConfigEntry {
                name: def.broker_name.to_string(),
                value,
                source: synonyms[0].2,
                read_only: !is_dynamic(def.broker_name),
                kind: def.kind,
                doc: def.doc,
                synonyms,
            }
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_layer_wins_and_synonyms_list_every_layer() {
        let mut layers = BrokerLayers::default();
        layers.static_broker.insert("log.retention.ms".into(), "1000".into());
        layers.dynamic_default.insert("log.retention.ms".into(), "2000".into());
        layers.dynamic_broker.insert("log.retention.ms".into(), "3000".into());
        layers
            .dynamic_default
            .insert("log.segment.bytes".into(), "1048576".into());
        let mut start = LogConfig::default();
        start.set_broker("log.retention.ms", "1000").unwrap();
        let effective = layers.effective(&start).unwrap();
        assert_eq!((effective.retention_ms, effective.segment_bytes), (3000, 1_048_576));

        let topic = describe_topic(&effective, &layers, &BTreeMap::new());
        let retention = topic.iter().find(|e| e.name == "retention.ms").unwrap();
        assert_eq!(
            (retention.value.as_str(), retention.source),
            ("3000", ConfigSource::DynamicBroker)
        );
        let sources: Vec<ConfigSource> = retention.synonyms.iter().map(|s| s.2).collect();
        use ConfigSource::*;
        assert_eq!(sources, [DynamicBroker, DynamicDefaultBroker, StaticBroker, Default]);

        let broker = describe_broker(&effective, &layers, false);
        let retention = broker.iter().find(|e| e.name == "log.retention.ms").unwrap();
        assert_eq!((retention.value.as_str(), retention.read_only), ("3000", false));
        let format = broker.iter().find(|e| e.name == "log.message.format.version").unwrap();
        assert!(format.read_only);

        let default = describe_broker(&effective, &layers, true);
        let names: Vec<&str> = default.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["log.retention.ms", "log.segment.bytes"]);
        assert_eq!(
            (default[0].value.as_str(), default[0].source),
            ("2000", DynamicDefaultBroker)
        );
    }
}
