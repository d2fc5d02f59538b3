//! The cluster's metadata as etcd holds it, in memory: every broker keeps one
//! image, loaded at a revision and then changed by each event a watch reports
//! (Kafka's MetadataImage, fed here by etcd instead of a Raft log). The image
//! knows the key layout (module `etcd` has the table) and the JSON of each
//! value; keys it does not know, and values that do not parse, are left out,
//! so a key written by hand can never make a broker act on garbage.
//!
//! A topic exists once its key `topics/<name>` does: its partitions' keys are
//! written first (a creation can take several transactions) and its key last,
//! and only partition keys naming the topic's id belong to it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::metadata_cache::PartitionMetadata;
use super::registration::{broker_key_id, BrokerState, RegisteredBroker};

/// The value of `controller`: the active controller and its epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerRecord {
    pub v: u32,
    pub broker_id: i32,
    pub epoch: i32,
}

/// The value of `topics/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub v: u32,
    /// The topic id, base64 as Kafka prints it.
    pub id: String,
}

/// The value of `partitions/<name>/<index>`: one partition's replicas and
/// leadership. The controller writes it, each time conditioned on the
/// revision it read (one writer, no lost updates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub v: u32,
    pub topic_id: String,
    /// The assignment, preferred leader first.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// −1 while the partition has no leader (offline).
    pub leader: i32,
    /// One more at every leader change.
    pub leader_epoch: i32,
    /// One more at every change of this record.
    pub partition_epoch: i32,
    /// While a reassignment runs (KIP-455): the replicas being added, and
    /// those to be removed once the target (`replicas` without `removing`)
    /// is in sync. Empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing: Vec<i32>,
}

impl PartitionRecord {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Only a record that could be true: replicas distinct and non-empty, the
    /// ISR among them, the leader −1 or in the ISR, epochs not negative.
    fn from_json(value: &[u8]) -> Option<PartitionRecord> {
        let r: PartitionRecord = serde_json::from_slice(value).ok()?;
        let distinct = {
            let mut seen = r.replicas.clone();
            seen.sort_unstable();
            seen.dedup();
            seen.len() == r.replicas.len()
        };
        let sound = r.v == 1
            && !r.replicas.is_empty()
            && distinct
            && r.replicas.iter().all(|b| *b >= 0)
            && r.isr.iter().all(|b| r.replicas.contains(b))
            && (r.leader == -1 || r.isr.contains(&r.leader))
            && r.adding.iter().chain(&r.removing).all(|b| r.replicas.contains(b))
            && !r.adding.iter().any(|b| r.removing.contains(b))
            && r.removing.len() < r.replicas.len()
            && r.leader_epoch >= 0
            && r.partition_epoch >= 0;
        sound.then_some(r)
    }
}

/// A partition key's record and the revision it was last written at (the
/// controller's next write of it is conditioned on that revision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionEntry {
    pub record: PartitionRecord,
    pub mod_revision: i64,
}

/// One topic of the image: its id, its partitions by index, its config overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    /// The revision its topic key was last written at.
    pub mod_revision: i64,
    pub partitions: BTreeMap<i32, PartitionEntry>,
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct TopicKey {
    id: Uuid,
    mod_revision: i64,
}

/// What etcd holds for the cluster, as of `revision`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataImage {
    /// The etcd revision this image is as of.
    pub revision: i64,
    pub brokers: BTreeMap<i32, RegisteredBroker>,
    pub controller: Option<ControllerRecord>,
    topics: BTreeMap<String, TopicKey>,
    partitions: BTreeMap<String, BTreeMap<i32, PartitionEntry>>,
    configs: BTreeMap<String, BTreeMap<String, String>>,
    /// The shared documents (module `documents`: ACLs, SCRAM credentials,
    /// client quotas, the brokers' default configs) by key, as etcd holds
    /// them; each broker checks one as it installs it.
    pub documents: BTreeMap<String, Vec<u8>>,
}

/// One key-value as etcd reports it, the key with the cluster's prefix and its
/// `/` removed.
pub struct KeyValue<'a> {
    pub key: &'a str,
    pub value: &'a [u8],
    pub lease: i64,
    pub create_revision: i64,
    pub mod_revision: i64,
}

/// Kafka's rule for topic names (the characters of `[a-zA-Z0-9._-]`, at most
/// 249), so no `/` can make a key ambiguous.
fn topic_name(s: &str) -> Option<&str> {
    let legal = !s.is_empty()
        && s.len() <= 249
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    legal.then_some(s)
}

fn ignored(key: &str) {
    tracing::warn!(
        key,
        "ignoring a value that is not sound; the last sound one stays in force"
    );
}

fn partition_key(rest: &str) -> Option<(&str, i32)> {
    let (name, index) = rest.split_once('/')?;
    let index = broker_key_id(index)?;
    Some((topic_name(name)?, index))
}

impl MetadataImage {
    /// Apply a put of `kv`. A key the image does not know changes nothing; a
    /// value that is not sound is ignored and the key's last sound value kept
    /// (a broker never gives up a partition's data over a value written by
    /// hand; a registration, which its broker rewrites, is the exception).
    pub fn put(&mut self, kv: KeyValue<'_>) {
        if let Some(id) = kv.key.strip_prefix("brokers/").and_then(broker_key_id) {
            match RegisteredBroker::from_key(id, kv.value, kv.lease, kv.create_revision) {
                Some(b) => self.brokers.insert(id, b),
                None => self.brokers.remove(&id),
            };
        } else if kv.key == "controller" {
            self.controller = serde_json::from_slice::<ControllerRecord>(kv.value)
                .ok()
                .filter(|r| r.v == 1 && kv.lease != 0);
        } else if let Some(name) = kv.key.strip_prefix("topics/").and_then(topic_name) {
            let record = serde_json::from_slice::<TopicRecord>(kv.value)
                .ok()
                .filter(|r| r.v == 1);
            match record.and_then(|r| crate::util::uuid::from_base64(&r.id)) {
                Some(id) => {
                    let mod_revision = kv.mod_revision;
                    self.topics.insert(name.to_string(), TopicKey { id, mod_revision });
                }
                None => ignored(kv.key),
            }
        } else if let Some((name, index)) = kv.key.strip_prefix("partitions/").and_then(partition_key) {
            match PartitionRecord::from_json(kv.value) {
                Some(record) => {
                    let entry = PartitionEntry {
                        record,
                        mod_revision: kv.mod_revision,
                    };
                    self.partitions
                        .entry(name.to_string())
                        .or_default()
                        .insert(index, entry);
                }
                None => ignored(kv.key),
            }
        } else if super::documents::KEYS.contains(&kv.key) {
            self.documents.insert(kv.key.to_string(), kv.value.to_vec());
        } else if let Some(name) = kv.key.strip_prefix("configs/topics/").and_then(topic_name) {
            let configs = serde_json::from_slice::<BTreeMap<String, String>>(kv.value)
                .ok()
                .filter(|c| crate::log::config::validate_overrides(&Default::default(), c).is_ok());
            match configs {
                Some(configs) => {
                    self.configs.insert(name.to_string(), configs);
                }
                None => ignored(kv.key),
            }
        }
    }

    /// Apply a delete of `key`.
    pub fn delete(&mut self, key: &str) {
        if let Some(id) = key.strip_prefix("brokers/").and_then(broker_key_id) {
            self.brokers.remove(&id);
        } else if key == "controller" {
            self.controller = None;
        } else if let Some(name) = key.strip_prefix("topics/") {
            self.topics.remove(name);
        } else if let Some((name, index)) = key.strip_prefix("partitions/").and_then(partition_key) {
            if let Some(partitions) = self.partitions.get_mut(name) {
                partitions.remove(&index);
                if partitions.is_empty() {
                    self.partitions.remove(name);
                }
            }
        } else if let Some(name) = key.strip_prefix("configs/topics/") {
            self.configs.remove(name);
        } else if super::documents::KEYS.contains(&key) {
            self.documents.remove(key);
        }
    }

    /// The topic `name`, if its key exists: with the partitions naming its id.
    pub fn topic(&self, name: &str) -> Option<TopicImage> {
        let key = self.topics.get(name)?;
        let id = crate::util::uuid::to_base64(&key.id);
        Some(TopicImage {
            name: name.to_string(),
            id: key.id,
            mod_revision: key.mod_revision,
            partitions: self
                .partitions
                .get(name)
                .map(|ps| {
                    ps.iter()
                        .filter(|(_, p)| p.record.topic_id == id)
                        .map(|(i, p)| (*i, p.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            configs: self.configs.get(name).cloned().unwrap_or_default(),
        })
    }

    /// Every topic, sorted by name.
    pub fn topics(&self) -> Vec<TopicImage> {
        self.topics.keys().filter_map(|name| self.topic(name)).collect()
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<TopicImage> {
        let (name, _) = self.topics.iter().find(|(_, k)| k.id == *id)?;
        self.topic(name)
    }

    /// Whether broker `id` may lead and follow: registered and running.
    pub fn is_alive(&self, id: i32) -> bool {
        self.brokers
            .get(&id)
            .is_some_and(|b| b.registration.state == BrokerState::Running)
    }

    /// Where other brokers reach broker `id`: its listener named `listener`
    /// (inter.broker.listener.name), else its first plain one.
    pub fn inter_broker_address(&self, id: i32, listener: Option<&str>) -> Option<String> {
        let b = self.brokers.get(&id)?;
        let mut listeners = b.registration.listeners.iter();
        let l = match listener {
            Some(name) => listeners.find(|l| l.name == name)?,
            None => listeners.find(|l| l.security_protocol == "PLAINTEXT")?,
        };
        Some(format!("{}:{}", l.host, l.port))
    }

    /// The partition as clients are told about it; replicas whose broker is
    /// not registered are offline.
    pub fn describe(&self, index: i32, record: &PartitionRecord) -> PartitionMetadata {
        PartitionMetadata {
            index,
            leader: record.leader,
            leader_epoch: record.leader_epoch,
            replicas: record.replicas.clone(),
            isr: record.isr.clone(),
            offline: record
                .replicas
                .iter()
                .copied()
                .filter(|b| !self.brokers.contains_key(b))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv<'a>(key: &'a str, value: &'a [u8], revision: i64) -> KeyValue<'a> {
        KeyValue {
            key,
            value,
            lease: 0,
            create_revision: revision,
            mod_revision: revision,
        }
    }

    fn partition(topic_id: &str, leader: i32) -> Vec<u8> {
        PartitionRecord {
            v: 1,
            topic_id: topic_id.into(),
            replicas: vec![leader],
            isr: vec![leader],
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
        }
        .to_json()
    }

    #[test]
    fn a_topic_exists_once_its_key_does_with_the_partitions_of_its_id() {
        let id = Uuid::new_v4();
        let b64 = crate::util::uuid::to_base64(&id);
        let mut image = MetadataImage::default();
        image.put(kv("partitions/t/0", &partition(&b64, 1), 10));
        image.put(kv("partitions/t/1", &partition(&b64, 2), 10));
        image.put(kv("partitions/t/2", &partition("someone-else", 2), 10));
        assert_eq!(image.topic("t"), None, "partitions alone are no topic");
        let topic = serde_json::to_vec(&TopicRecord { v: 1, id: b64.clone() }).unwrap();
        image.put(kv("topics/t", &topic, 11));
        let t = image.topic("t").unwrap();
        assert_eq!((t.id, t.mod_revision), (id, 11));
        assert_eq!(t.partitions.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(image.topic_by_id(&id).map(|t| t.name), Some("t".into()));
        image.put(kv("configs/topics/t", br#"{"cleanup.policy":"compact"}"#, 12));
        assert_eq!(image.topic("t").unwrap().configs["cleanup.policy"], "compact");
        image.delete("topics/t");
        assert_eq!(image.topics(), vec![]);
    }

    #[test]
    fn unsound_values_and_unknown_keys_are_left_out() {
        let mut image = MetadataImage::default();
        let good = partition("x", 1);
        image.put(kv("partitions/t/0", &good, 1));
        // Overwritten with garbage: the last sound value stays.
        image.put(kv("partitions/t/0", b"nonsense", 2));
        assert_eq!(image.partitions["t"][&0].mod_revision, 1);
        image.put(kv("topics/t", br#"{"v":1,"id":"nope"}"#, 3));
        assert!(image.topics.is_empty(), "never sound, never there");
        image.put(kv("configs/t", br#"{"cleanup.policy":"bogus"}"#, 3));
        image.put(kv("configs/topics/t", br#"{"retention.ms":"5"}"#, 3));
        image.put(kv("configs/topics/t", br#"{"cleanup.policy":"bogus"}"#, 4));
        image.put(kv("configs/topics/t", b"{", 5));
        assert_eq!(image.configs["t"]["retention.ms"], "5", "invalid configs are not taken");
        image.delete("configs/topics/t");
        image.delete("partitions/t/0");
        let bad = |f: &dyn Fn(&mut PartitionRecord)| {
            let mut r: PartitionRecord = serde_json::from_slice(&good).unwrap();
            f(&mut r);
            PartitionRecord::from_json(&r.to_json())
        };
        assert!(bad(&|_| {}).is_some());
        assert!(bad(&|r| r.replicas = vec![]).is_none());
        assert!(bad(&|r| r.replicas = vec![1, 1]).is_none());
        assert!(bad(&|r| r.isr = vec![2]).is_none());
        assert!(bad(&|r| r.leader = 3).is_none());
        assert!(bad(&|r| r.leader_epoch = -1).is_none());
        assert!(bad(&|r| r.v = 2).is_none());
        for key in [
            "partitions/t/x",
            "partitions/a/b/0",
            "partitions/t/-1",
            "topics/a/b",
            "what",
        ] {
            image.put(kv(key, &good, 3));
        }
        assert_eq!(image, MetadataImage::default());
        // A controller key bound to no lease is no election's.
        image.put(kv("controller", br#"{"v":1,"broker_id":1,"epoch":1}"#, 4));
        assert_eq!(image.controller, None);
    }
}
