//! Dynamic broker configs (Kafka's DynamicBrokerConfig): the `log.*` settings an
//! admin changes at run time with AlterConfigs / IncrementalAlterConfigs on the
//! broker resource (this broker, DYNAMIC_BROKER_CONFIG) or the cluster-wide default
//! (empty resource name, DYNAMIC_DEFAULT_BROKER_CONFIG). They take effect at once
//! on every topic without an override of its own, and outlive restarts: Kafka keeps
//! them in its metadata log, strom in `dynamic-broker-config.json` in the data
//! directory, and in a cluster the default in etcd (`cluster::documents`), so
//! that it applies on every broker.
//!
//! Which configs are dynamic follows Kafka (DynamicLogConfig): every broker synonym
//! of a topic config except the message format. Others (`num.partitions`,
//! `listeners`, …) are refused as Kafka refuses them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::log::config::{is_dynamic, BrokerLayers, LogConfig};
use crate::util::fs::write_atomically;

const FILE: &str = "dynamic-broker-config.json";

/// Which dynamic layer a change is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This broker only.
    Broker,
    /// Every broker (the empty resource name).
    ClusterDefault,
}

pub struct DynamicBrokerConfig {
    path: PathBuf,
    /// The broker config as resolved at start, before any dynamic layer.
    static_log: LogConfig,
    layers: RwLock<BrokerLayers>,
    /// Serialises changes: validate, persist, install.
    changing: Mutex<()>,
}

impl DynamicBrokerConfig {
    /// Load the dynamic layers kept in `data_dir` over the static config.
    /// Settings that no longer validate are dropped with a warning, never fatal.
    pub fn open(data_dir: &Path, static_log: LogConfig, static_broker: BTreeMap<String, String>) -> Result<Self> {
        let path = data_dir.join(FILE);
        let mut layers = BrokerLayers {
            static_broker,
            ..BrokerLayers::default()
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let parsed: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::Io(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: {e}", path.display()),
                    ))
                })?;
                layers.dynamic_broker = sound_layer(&static_log, &parsed["broker"]);
                layers.dynamic_default = sound_layer(&static_log, &parsed["cluster_default"]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        Ok(DynamicBrokerConfig {
            path,
            static_log,
            layers: RwLock::new(layers),
            changing: Mutex::new(()),
        })
    }

    pub fn layers(&self) -> BrokerLayers {
        self.layers.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The broker's effective log config: static, then the cluster default, then
    /// this broker's own settings.
    pub fn effective(&self) -> LogConfig {
        self.layers()
            .effective(&self.static_log)
            .unwrap_or_else(|_| self.static_log.clone())
    }

    /// The settings of `scope` now.
    pub fn current(&self, scope: Scope) -> BTreeMap<String, String> {
        let layers = self.layers();
        match scope {
            Scope::Broker => layers.dynamic_broker,
            Scope::ClusterDefault => layers.dynamic_default,
        }
    }

    /// Replace the settings of `scope` with what `change` makes of the current
    /// ones (given with the effective config), validated and normalised; unless
    /// `validate_only`, persist them and hand the new effective config to `apply`.
    /// All of it serialised with other changes, so none is lost and they apply in
    /// order.
    pub fn alter(
        &self,
        scope: Scope,
        change: impl FnOnce(&BTreeMap<String, String>, &LogConfig) -> Result<BTreeMap<String, String>>,
        validate_only: bool,
        apply: impl FnOnce(LogConfig),
    ) -> Result<()> {
        let _changing = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        let (layers, effective) = self.settle(self.layers(), scope, change)?;
        if validate_only {
            return Ok(());
        }
        let json = serde_json::json!({
            "broker": layers.dynamic_broker,
            "cluster_default": layers.dynamic_default,
        });
        write_atomically(&self.path, json.to_string().as_bytes())?;
        *self.layers.write().unwrap_or_else(|e| e.into_inner()) = layers;
        apply(effective);
        Ok(())
    }

    /// The cluster-wide default changed in a cluster's document (None: none
    /// yet) as [`DynamicBrokerConfig::alter`] changes it: the new document, or
    /// None when only validating.
    pub fn alter_default_in(
        &self,
        document: Option<&[u8]>,
        change: impl FnOnce(&BTreeMap<String, String>, &LogConfig) -> Result<BTreeMap<String, String>>,
        validate_only: bool,
    ) -> Result<Option<Vec<u8>>> {
        let current = match document {
            Some(bytes) => match serde_json::from_slice::<serde_json::Value>(bytes) {
                Ok(v) if v.is_object() => sound_layer(&self.static_log, &v),
                _ => {
                    return Err(Error::MetadataStore(
                        "the cluster's default broker configs in etcd are not a JSON object; fix or delete the key"
                            .into(),
                    ))
                }
            },
            None => BTreeMap::new(),
        };
        // Checked against the static config and the default alone: this
        // broker's own settings are its own, and must not decide what the
        // other brokers get.
        let mut layers = self.layers();
        layers.dynamic_broker.clear();
        layers.dynamic_default = current;
        let (layers, _) = self.settle(layers, Scope::ClusterDefault, change)?;
        Ok((!validate_only).then(|| serde_json::to_vec(&layers.dynamic_default).unwrap_or_default()))
    }

    /// The cluster-wide default as a document (None when it is empty).
    pub fn default_document(&self) -> Option<Vec<u8>> {
        let layers = self.layers.read().unwrap_or_else(|e| e.into_inner());
        (!layers.dynamic_default.is_empty()).then(|| serde_json::to_vec(&layers.dynamic_default).unwrap_or_default())
    }

    /// Take a cluster's default document (settings that do not apply are left
    /// out with a warning): the effective config it makes. One that would
    /// make an invalid config with this broker's own settings (a minimum
    /// above its own maximum, say) is refused here, and the default in force
    /// stays. What is taken is kept in the file too.
    pub fn install_default(&self, document: &[u8]) -> std::result::Result<LogConfig, String> {
        let parsed: serde_json::Value = serde_json::from_slice(document).map_err(|e| e.to_string())?;
        if !parsed.is_object() {
            return Err("not a JSON object".into());
        }
        let _changing = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        let mut layers = self.layers();
        layers.dynamic_default = sound_layer(&self.static_log, &parsed);
        let effective = layers.effective(&self.static_log)?;
        effective
            .check()
            .map_err(|e| format!("with this broker's own settings: {e}"))?;
        let json = serde_json::json!({
            "broker": layers.dynamic_broker,
            "cluster_default": layers.dynamic_default,
        });
        if let Err(e) = write_atomically(&self.path, json.to_string().as_bytes()) {
            tracing::warn!(error = %e, "could not keep the cluster's default broker configs in their file");
        }
        *self.layers.write().unwrap_or_else(|e| e.into_inner()) = layers;
        Ok(effective)
    }

    /// `layers` with `scope`'s settings made what `change` makes of them,
    /// checked (dynamic, valid, normalised) with the effective config they make.
    fn settle(
        &self,
        mut layers: BrokerLayers,
        scope: Scope,
        change: impl FnOnce(&BTreeMap<String, String>, &LogConfig) -> Result<BTreeMap<String, String>>,
    ) -> Result<(BrokerLayers, LogConfig)> {
        let current = match scope {
            Scope::Broker => &layers.dynamic_broker,
            Scope::ClusterDefault => &layers.dynamic_default,
        };
        let effective = layers
            .effective(&self.static_log)
            .unwrap_or_else(|_| self.static_log.clone());
        let settings = change(current, &effective)?;
        let fixed: Vec<&String> = settings.keys().filter(|k| !is_dynamic(k)).collect();
        if !fixed.is_empty() {
            let names: Vec<&str> = fixed.iter().map(|k| k.as_str()).collect();
            return Err(Error::InvalidConfig(format!(
                "Cannot update these configs dynamically: Set({})",
                names.join(", ")
            )));
        }
        let mut normalised = BTreeMap::new();
        for (k, v) in &settings {
            let mut probe = self.static_log.clone();
            probe.set_broker(k, v).map_err(Error::InvalidConfig)?;
            let def = crate::log::config::broker_config(k)
                .ok_or_else(|| Error::InvalidConfig(format!("Unknown broker config name: {k}")))?;
            normalised.insert(k.clone(), def.value(&probe));
        }
        match scope {
            Scope::Broker => layers.dynamic_broker = normalised,
            Scope::ClusterDefault => layers.dynamic_default = normalised,
        }
        let effective = layers.effective(&self.static_log).map_err(Error::InvalidConfig)?;
        effective.check().map_err(Error::InvalidConfig)?;
        Ok((layers, effective))
    }
}

/// The settings of a layer's JSON object that still apply (dynamic and
/// valid); the others are left out with a warning, never fatal.
fn sound_layer(static_log: &LogConfig, object: &serde_json::Value) -> BTreeMap<String, String> {
    let mut layer = BTreeMap::new();
    for (k, v) in object.as_object().into_iter().flatten() {
        let value = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut probe = static_log.clone();
        match probe.set_broker(k, &value) {
            Ok(()) if is_dynamic(k) => {
                layer.insert(k.clone(), value);
            }
            _ => tracing::warn!(config = %k, value, "ignoring a dynamic broker config that no longer applies"),
        }
    }
    layer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_validated_persisted_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let d = DynamicBrokerConfig::open(dir.path(), LogConfig::default(), BTreeMap::new()).unwrap();
        let set = |pairs: &[(&str, &str)]| {
            let m: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            Box::new(move |_: &BTreeMap<String, String>, _: &LogConfig| Ok(m.clone()))
                as crate::log::manager::ConfigChange<'static>
        };
        let ignore = |_| {};
        let e = d
            .alter(Scope::Broker, set(&[("num.partitions", "3")]), false, ignore)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("Cannot update these configs dynamically: Set(num.partitions)"),
            "{e}"
        );
        assert!(d
            .alter(Scope::Broker, set(&[("log.retention.ms", "-7")]), false, ignore)
            .is_err());
        let mut applied = None;
        let both = set(&[("log.retention.ms", "5000"), ("log.cleanup.policy", "delete, compact")]);
        d.alter(Scope::ClusterDefault, both, false, |c| applied = Some(c))
            .unwrap();
        let effective = applied.unwrap();
        assert_eq!(effective.retention_ms, 5000);
        assert!(effective.cleanup_compact);
        d.alter(Scope::Broker, set(&[("log.retention.ms", "7000")]), false, ignore)
            .unwrap();
        assert_eq!(d.effective().retention_ms, 7000, "the broker's own setting wins");
        // validate_only changes nothing.
        d.alter(Scope::Broker, set(&[("log.retention.ms", "9000")]), true, |_| {
            panic!("applied")
        })
        .unwrap();
        assert_eq!(d.effective().retention_ms, 7000);

        let again = DynamicBrokerConfig::open(dir.path(), LogConfig::default(), BTreeMap::new()).unwrap();
        assert_eq!(again.layers(), d.layers());
        assert_eq!(
            again.current(Scope::ClusterDefault)["log.cleanup.policy"],
            "compact,delete"
        );
    }
}
