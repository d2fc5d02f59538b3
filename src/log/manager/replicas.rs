//! A cluster broker's partitions come and go one at a time, as the cluster's
//! metadata assigns replicas to it (a single broker creates whole topics): a
//! replica is created with its topic's id, and a partition this broker no
//! longer has a replica of is set aside as a `…-stray` directory — never
//! deleted on a guess, since only an observed deletion of its topic says the
//! data is no longer wanted (Kafka's stray logs, KIP-858's rule).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use uuid::Uuid;

use super::{partition_dir, set_aside_dir_name, write_overrides, write_topic_id, LogManager, Topic};
use crate::error::{Error, Result};
use crate::log::unified_log::UnifiedLog;
use crate::util;

impl LogManager {
    /// Make sure this broker holds partition `index` of topic `name` (id `id`)
    /// with `overrides`: created if missing. A local topic of the same name
    /// with another id is an error (set it aside or delete it first).
    pub fn create_replica(
        &self,
        name: &str,
        id: Uuid,
        index: i32,
        overrides: &BTreeMap<String, String>,
        now_ms: i64,
    ) -> Result<Arc<UnifiedLog>> {
        let overrides = self.validate_overrides(overrides).unwrap_or_else(|e| {
            tracing::error!(topic = name, error = %e, "ignoring invalid topic configs");
            BTreeMap::new()
        });
        let _reserved = self
            .reserve(name)
            .ok_or(Error::InvalidRequest(format!("partitions of {name} are being changed")))?;
        if let Some(topic) = self.topic(name) {
            if topic.id != id {
                return Err(Error::InvalidRequest(format!("a local topic {name} has another id")));
            }
            if let Some(p) = topic.partition(index) {
                return Ok(p.clone());
            }
        }
        let config = self
            .base_config()
            .with_overrides(&overrides)
            .map_err(Error::InvalidConfig)?;
        let dir = partition_dir(&self.dir, name, index);
        let made = std::fs::create_dir_all(&dir)
            .and_then(|_| write_topic_id(&dir, &id))
            // In every partition's directory: the first one held may change.
            .and_then(|_| write_overrides(&dir, &overrides))
            .and_then(|_| util::fs::sync_dir(&self.dir))
            .map_err(Error::from)
            .and_then(|_| UnifiedLog::open(name, index, &dir, config, true, now_ms));
        let log = match made {
            Ok(log) => Arc::new(log),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let _reconfiguring = self.reconfiguring.lock().unwrap_or_else(|e| e.into_inner());
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        let mut partitions = topics.get(name).map(|t| t.partitions.clone()).unwrap_or_default();
        partitions.push(log.clone());
        partitions.sort_by_key(|p| p.index);
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id,
            partitions,
            overrides: RwLock::new(overrides),
        });
        self.settle_config(&topic);
        topics.insert(name.to_string(), topic);
        tracing::info!(topic = name, partition = index, "created replica");
        Ok(log)
    }

    /// Stop holding partition `index` of `name`: its directory is renamed
    /// `{topic}-{index}.{id}-stray` (kept for an operator to look at; the next
    /// start skips it) and it leaves the topic.
    pub fn set_aside(&self, name: &str, index: i32) -> Result<()> {
        self.stop_holding(name, index, "stray")
    }

    /// Stop holding partition `index` of `name` and delete its files: the
    /// metadata moved the replica to other brokers while this one watched
    /// (a reassignment, whose target had every record first).
    pub fn delete_replica(&self, name: &str, index: i32) -> Result<()> {
        self.stop_holding(name, index, "delete")
    }

    fn stop_holding(&self, name: &str, index: i32, why: &str) -> Result<()> {
        let _reserved = self
            .reserve(name)
            .ok_or(Error::InvalidRequest(format!("partitions of {name} are being changed")))?;
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        let Some(topic) = topics.get(name).cloned() else {
            return Ok(());
        };
        let Some(log) = topic.partition(index).cloned() else {
            return Ok(());
        };
        let mut to = self.dir.join(set_aside_dir_name(name, index, &topic.id, why));
        if to.exists() {
            // The same partition set aside before (moved away twice while this
            // broker was down): a name of its own, never over the other.
            let stamped = format!("{}-{why}", util::clock::now_ms());
            to = self.dir.join(set_aside_dir_name(name, index, &topic.id, &stamped));
        }
        std::fs::rename(log.dir(), &to)?;
        util::fs::sync_dir(&self.dir)?;
        let rest: Vec<Arc<UnifiedLog>> = topic.partitions.iter().filter(|p| p.index != index).cloned().collect();
        if rest.is_empty() {
            topics.remove(name);
        } else {
            topics.insert(
                name.to_string(),
                Arc::new(Topic {
                    name: name.to_string(),
                    id: topic.id,
                    partitions: rest,
                    overrides: RwLock::new(topic.overrides()),
                }),
            );
        }
        drop(topics);
        if why == "delete" {
            // Gone from the topic already; a directory left over goes at the next start.
            if let Err(e) = std::fs::remove_dir_all(&to) {
                tracing::warn!(dir = %to.display(), error = %e, "could not remove a moved replica's files yet");
            }
            tracing::info!(
                topic = name,
                partition = index,
                "deleted a replica moved to other brokers"
            );
        } else {
            tracing::warn!(topic = name, partition = index, dir = %to.display(), "set a stray partition aside");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::LogLayout;
    use super::*;

    #[test]
    fn replicas_come_one_at_a_time_and_strays_are_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let open = || LogManager::open_with_layout(dir.path(), Default::default(), 0, LogLayout::Sparse).unwrap();
        let logs = open();
        let id = Uuid::new_v4();
        let compact: BTreeMap<String, String> = [("cleanup.policy".to_string(), "compact".to_string())].into();
        logs.create_replica("t", id, 2, &compact, 0).unwrap();
        logs.create_replica("t", id, 0, &compact, 0).unwrap();
        logs.create_replica("t", id, 2, &compact, 0).unwrap();
        let t = logs.topic("t").unwrap();
        assert_eq!(t.partitions.iter().map(|p| p.index).collect::<Vec<_>>(), vec![0, 2]);
        assert!(t.partition(2).unwrap().config().cleanup_compact);
        assert!(
            logs.create_replica("t", Uuid::new_v4(), 1, &compact, 0).is_err(),
            "another id"
        );
        logs.set_aside("t", 0).unwrap();
        assert_eq!(logs.topic("t").unwrap().partitions.len(), 1);
        logs.close().unwrap();
        drop(logs);
        let logs = open();
        let t = logs.topic("t").unwrap();
        assert_eq!(t.partitions.iter().map(|p| p.index).collect::<Vec<_>>(), vec![2]);
        assert!(
            t.partition(2).unwrap().config().cleanup_compact,
            "configs kept with the partition"
        );
        let strays = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with("-stray"))
            .count();
        assert_eq!(strays, 1);
        logs.set_aside("t", 2).unwrap();
        assert!(logs.topic("t").is_none());
    }
}
