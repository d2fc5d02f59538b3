//! The LogManager: every topic and partition under the data directory.
//!
//! Layout, as Kafka's: one directory per partition, `{topic}-{partition}`, holding
//! the segments and a `partition.metadata` file with the topic id:
//!
//! ```text
//! version: 0
//! topic_id: <22-character URL-safe base64 UUID>
//! ```
//!
//! The topic list is whatever partition directories exist, so topic metadata
//! persists with the data. A `.kafka_cleanshutdown` marker in the data directory
//! records that the last shutdown flushed and closed every segment; without it the
//! active segments are recovered batch by batch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use uuid::Uuid;

use super::unified_log::UnifiedLog;
use crate::error::{Error, Result};
use crate::log::config::LogConfig;
use crate::util;

pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
/// The internal topic of committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The internal topic of transaction coordinator state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Topics the broker writes itself: hidden from "all topics" listings, closed to
/// producers and to deletion.
pub fn is_internal_topic(name: &str) -> bool {
    name == OFFSETS_TOPIC || name == TRANSACTION_STATE_TOPIC
}

const PARTITION_METADATA: &str = "partition.metadata";
/// A topic's config overrides, kept in the directory of its partition 0.
const TOPIC_CONFIG: &str = "topic-config.properties";

/// Which partitions of a topic a data directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLayout {
    /// All of them, numbered 0..n: a single broker. A topic whose directories
    /// are not is damaged, and skipped.
    Contiguous,
    /// Those whose replicas this broker holds, any indexes: a cluster's broker.
    Sparse,
}

pub struct Topic {
    pub name: String,
    pub id: Uuid,
    /// The partitions held here, sorted by index (on a single broker, all of
    /// them: `partitions[i]` is partition i).
    pub partitions: Vec<Arc<UnifiedLog>>,
    /// The topic's config overrides (Kafka's DYNAMIC_TOPIC_CONFIG), normalised.
    overrides: RwLock<BTreeMap<String, String>>,
}

impl Topic {
    /// Partition `index`, if it is held here.
    pub fn partition(&self, index: i32) -> Option<&Arc<UnifiedLog>> {
        self.partitions
            .binary_search_by_key(&index, |p| p.index)
            .ok()
            .map(|i| &self.partitions[i])
    }

    pub fn overrides(&self) -> BTreeMap<String, String> {
        self.overrides.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A change of config settings: the new settings from the current ones and the
/// effective config they make (AlterConfigs and IncrementalAlterConfigs).
pub type ConfigChange<'a> =
    Box<dyn Fn(&BTreeMap<String, String>, &LogConfig) -> Result<BTreeMap<String, String>> + Send + Sync + 'a>;

pub struct LogManager {
    dir: PathBuf,
    /// The broker's defaults of every topic config (its effective config:
    /// replaced when dynamic broker configs change).
    base: RwLock<Arc<LogConfig>>,
    /// Held while a topic's effective config is computed and installed, so a
    /// change of the broker's defaults and one of a topic's overrides never
    /// interleave.
    reconfiguring: std::sync::Mutex<()>,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Names of topics whose partitions are being created or added. Their files
    /// are made without holding `topics`, so a large creation never stalls the
    /// broker's other requests; the name is reserved here meanwhile.
    busy: Mutex<HashSet<String>>,
    /// The data directory's lock, held while the manager lives.
    _lock: std::fs::File,
}

/// A topic name reserved in [`LogManager::busy`] until dropped.
struct Reservation<'a> {
    busy: &'a Mutex<HashSet<String>>,
    name: String,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.name);
    }
}

/// Kafka's rule for topic names: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let invalid = |reason| {
        Err(Error::InvalidTopic {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("the name is empty");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are not allowed");
    }
    if name.len() > 249 {
        return invalid("the name is longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

/// The name a partition directory takes while it is deleted,
/// `{topic}-{partition}.{uuid}-delete`, with the topic name shortened as Kafka
/// does so the whole stays within the 255-byte limit of a file name (a topic name
/// may be 249 characters long).
fn delete_dir_name(topic: &str, partition: i32, id: &Uuid) -> String {
    set_aside_dir_name(topic, partition, id, "delete")
}

/// `{topic}-{partition}.{uuid}-{why}`, within a file name's 255 bytes.
fn set_aside_dir_name(topic: &str, partition: i32, id: &Uuid, why: &str) -> String {
    const MAX_FILE_NAME: usize = 255;
    let suffix = format!("-{partition}.{}-{why}", id.simple());
    let keep = topic.len().min(MAX_FILE_NAME.saturating_sub(suffix.len()));
    // Topic names are ASCII, so any byte index is a character boundary.
    format!("{}{suffix}", &topic[..keep])
}

impl LogManager {
    /// Load every partition under `dir` (created if missing), a single
    /// broker's: every topic's partitions numbered 0..n.
    pub fn open(dir: &Path, base: LogConfig, now_ms: i64) -> Result<LogManager> {
        Self::open_with_layout(dir, base, now_ms, LogLayout::Contiguous)
    }

    /// [`LogManager::open`] with the partitions `layout` allows.
    pub fn open_with_layout(dir: &Path, base: LogConfig, now_ms: i64, layout: LogLayout) -> Result<LogManager> {
        std::fs::create_dir_all(dir)?;
        let lock = util::fs::lock_dir(dir)?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
        // topic -> (id, partition -> directory)
        let mut found: BTreeMap<String, (Uuid, BTreeMap<i32, PathBuf>)> = BTreeMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().to_string();
            if name.ends_with("-delete") {
                // A deletion interrupted by a crash: finish it.
                if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!(dir = %entry.path().display(), error = %e, "could not remove a deleted partition's files yet");
                }
                continue;
            }
            let Some((topic, partition)) = name.rsplit_once('-') else {
                continue;
            };
            let (Ok(partition), Some(id)) = (partition.parse::<i32>(), read_topic_id(&entry.path())) else {
                tracing::warn!(dir = %entry.path().display(), "skipping directory that is not a partition");
                continue;
            };
            let slot = found.entry(topic.to_string()).or_insert((id, BTreeMap::new()));
            if slot.0 != id {
                tracing::warn!(topic, partition, "partition has a different topic id; skipping it");
                continue;
            }
            slot.1.insert(partition, entry.path());
        }
        let mut topics = HashMap::new();
        for (name, (id, dirs)) in found {
            if layout == LogLayout::Contiguous && dirs.keys().copied().ne(0..dirs.len() as i32) {
                tracing::error!(topic = %name, "partition directories are not numbered 0..n; skipping topic");
                continue;
            }
            // Kept with the first partition held here (partition 0 on one broker).
            let Some(first) = dirs.values().next() else { continue };
            let overrides = read_overrides(first);
            let config = base.with_overrides(&overrides).unwrap_or_else(|e| {
                tracing::error!(topic = %name, error = %e, "ignoring invalid topic configs");
                base.clone()
            });
            let partitions = dirs
                .into_iter()
                .map(|(p, d)| UnifiedLog::open(&name, p, &d, config.clone(), clean, now_ms).map(Arc::new))
                .collect::<Result<Vec<_>>>()?;
            topics.insert(
                name.clone(),
                Arc::new(Topic {
                    name,
                    id,
                    partitions,
                    overrides: RwLock::new(overrides),
                }),
            );
        }
        if clean {
            std::fs::remove_file(&marker)?;
            util::fs::sync_dir(dir)?;
        }
        tracing::info!(topics = topics.len(), clean_shutdown = clean, "log manager loaded");
        Ok(LogManager {
            dir: dir.to_path_buf(),
            base: RwLock::new(Arc::new(base)),
            reconfiguring: std::sync::Mutex::new(()),
            topics: RwLock::new(topics),
            busy: Mutex::new(HashSet::new()),
            _lock: lock,
        })
    }

    fn read_topics(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Topic>>> {
        self.topics.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.read_topics().get(name).cloned()
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.read_topics().values().find(|t| t.id == *id).cloned()
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<_> = self.read_topics().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Result<Arc<UnifiedLog>> {
        self.topic(topic)
            .and_then(|t| t.partition(partition).cloned())
            .ok_or_else(|| Error::UnknownTopicOrPartition {
                topic: topic.to_string(),
                partition,
            })
    }

    /// Check that a topic could be created, without creating it.
    pub fn validate_new_topic(&self, name: &str, partitions: i32) -> Result<()> {
        self.validate_new_topic_locked(&self.read_topics(), name, partitions)
    }

    /// The broker's defaults of every topic config.
    pub fn base_config(&self) -> Arc<LogConfig> {
        self.base.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replace the broker's defaults (dynamic broker configs): every topic's
    /// effective config is recomputed at once, its own overrides kept.
    pub fn set_base_config(&self, base: LogConfig) {
        let _reconfiguring = self.reconfiguring.lock().unwrap_or_else(|e| e.into_inner());
        for topic in self.topics() {
            match base.with_overrides(&topic.overrides()) {
                Ok(config) => topic.partitions.iter().for_each(|p| p.set_config(config.clone())),
                Err(e) => {
                    tracing::error!(topic = %topic.name, error = %e, "topic config kept: overrides no longer apply")
                }
            }
        }
        *self.base.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(base);
    }

    /// Validate config overrides; returns them normalised.
    pub fn validate_overrides(&self, overrides: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
        super::config::validate_overrides(&self.base_config(), overrides).map_err(Error::InvalidConfig)
    }

    /// Create a topic with a new id; its partition directories persist it.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        overrides: &BTreeMap<String, String>,
        now_ms: i64,
    ) -> Result<Arc<Topic>> {
        let overrides = self.validate_overrides(overrides)?;
        let config = self
            .base_config()
            .with_overrides(&overrides)
            .map_err(Error::InvalidConfig)?;
        let _reserved = {
            let topics = self.read_topics();
            self.validate_new_topic_locked(&topics, name, partitions)?;
            self.reserve(name)
                .ok_or_else(|| Error::TopicAlreadyExists(name.to_string()))?
        };
        let id = Uuid::new_v4();
        let mut opened = Vec::new();
        for p in 0..partitions {
            let dir = partition_dir(&self.dir, name, p);
            let made = std::fs::create_dir_all(&dir)
                .and_then(|_| write_topic_id(&dir, &id))
                .and_then(|_| {
                    if p == 0 {
                        write_overrides(&dir, &overrides)
                    } else {
                        Ok(())
                    }
                })
                .map_err(Error::from)
                .and_then(|_| UnifiedLog::open(name, p, &dir, config.clone(), true, now_ms));
            match made {
                Ok(part) => opened.push(Arc::new(part)),
                Err(e) => {
                    tracing::error!(topic = name, partition = p, error = %e, "cannot create topic");
                    drop(opened);
                    for q in 0..=p {
                        let _ = std::fs::remove_dir_all(partition_dir(&self.dir, name, q));
                    }
                    return Err(e);
                }
            }
        }
        util::fs::sync_dir(&self.dir)?;
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id,
            partitions: opened,
            overrides: RwLock::new(overrides),
        });
        let _reconfiguring = self.reconfiguring.lock().unwrap_or_else(|e| e.into_inner());
        self.settle_config(&topic);
        self.topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions, topic_id = %util::uuid::to_base64(&id), "created topic");
        Ok(topic)
    }

    /// Reserve `name` while its partitions are made; None when it is reserved already.
    fn reserve(&self, name: &str) -> Option<Reservation<'_>> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        busy.insert(name.to_string()).then(|| Reservation {
            busy: &self.busy,
            name: name.to_string(),
        })
    }

    fn validate_new_topic_locked(
        &self,
        topics: &HashMap<String, Arc<Topic>>,
        name: &str,
        partitions: i32,
    ) -> Result<()> {
        validate_topic_name(name)?;
        if partitions < 1 {
            return Err(Error::InvalidPartitions(partitions));
        }
        if topics.contains_key(name) {
            return Err(Error::TopicAlreadyExists(name.to_string()));
        }
        Ok(())
    }

    /// Change a topic's config overrides to what `change` makes of the current
    /// ones (given with the topic's effective config): validated, and unless
    /// `validate_only` persisted and applied at once. Read and written under one
    /// lock, so concurrent changes never lose each other's settings.
    pub fn update_overrides(&self, name: &str, change: ConfigChange<'_>, validate_only: bool) -> Result<()> {
        let _reconfiguring = self.reconfiguring.lock().unwrap_or_else(|e| e.into_inner());
        let topic = self.topic(name).ok_or_else(|| Error::UnknownTopicOrPartition {
            topic: name.to_string(),
            partition: -1,
        })?;
        let current = topic.overrides();
        let base = self.base_config();
        let effective = base.with_overrides(&current).map_err(Error::InvalidConfig)?;
        let overrides = self.validate_overrides(&change(&current, &effective)?)?;
        let config = base.with_overrides(&overrides).map_err(Error::InvalidConfig)?;
        if validate_only {
            return Ok(());
        }
        write_overrides(topic.partitions[0].dir(), &overrides)?;
        for p in &topic.partitions {
            p.set_config(config.clone());
        }
        *topic.overrides.write().unwrap_or_else(|e| e.into_inner()) = overrides;
        tracing::info!(topic = name, "topic configs changed");
        Ok(())
    }

    /// Replace a topic's config overrides (validated, persisted, applied at once).
    pub fn set_overrides(&self, name: &str, overrides: &BTreeMap<String, String>) -> Result<()> {
        self.update_overrides(name, Box::new(|_, _| Ok(overrides.clone())), false)
    }

    /// Give a new topic's partitions the config of the broker's defaults now (a
    /// change of them may have happened while its files were made).
    fn settle_config(&self, topic: &Topic) {
        match self.base_config().with_overrides(&topic.overrides()) {
            Ok(config) => topic.partitions.iter().for_each(|p| p.set_config(config.clone())),
            Err(e) => tracing::error!(topic = %topic.name, error = %e, "topic config kept: overrides no longer apply"),
        }
    }

    /// Grow a topic to `count` partitions (Kafka never shrinks one). The new
    /// partitions are made without holding the topic table (see `busy`).
    pub fn add_partitions(&self, name: &str, count: i32, now_ms: i64) -> Result<()> {
        let unknown = || Error::UnknownTopicOrPartition {
            topic: name.to_string(),
            partition: -1,
        };
        let (topic, _reserved) = {
            let topics = self.read_topics();
            let topic = topics.get(name).cloned().ok_or_else(unknown)?;
            let reserved = self
                .reserve(name)
                .ok_or(Error::InvalidRequest(format!("partitions of {name} are being changed")))?;
            (topic, reserved)
        };
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(Error::InvalidPartitions(count));
        }
        let config = topic.partitions[0].config();
        let mut partitions = topic.partitions.clone();
        let made = (current..count).try_for_each(|p| {
            let dir = partition_dir(&self.dir, name, p);
            std::fs::create_dir_all(&dir)?;
            write_topic_id(&dir, &topic.id)?;
            partitions.push(Arc::new(UnifiedLog::open(
                name,
                p,
                &dir,
                (*config).clone(),
                true,
                now_ms,
            )?));
            Ok::<_, Error>(())
        });
        let remove_new = || {
            for p in current..count {
                let _ = std::fs::remove_dir_all(partition_dir(&self.dir, name, p));
            }
        };
        if let Err(e) = made.and_then(|_| Ok(util::fs::sync_dir(&self.dir)?)) {
            tracing::error!(topic = name, error = %e, "cannot add partitions");
            drop(partitions);
            remove_new();
            return Err(e);
        }
        // The overrides and config as of now, under the lock their changes take.
        let _reconfiguring = self.reconfiguring.lock().unwrap_or_else(|e| e.into_inner());
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        if !topics.get(name).is_some_and(|t| Arc::ptr_eq(t, &topic)) {
            // Deleted (and perhaps re-created) meanwhile.
            drop(topics);
            drop(partitions);
            remove_new();
            return Err(unknown());
        }
        let grown = Arc::new(Topic {
            name: name.to_string(),
            id: topic.id,
            partitions,
            overrides: RwLock::new(topic.overrides()),
        });
        self.settle_config(&grown);
        topics.insert(name.to_string(), grown);
        tracing::info!(topic = name, partitions = count, "added partitions");
        Ok(())
    }

    /// Delete a topic and its files, all or nothing. Every partition directory is
    /// first renamed to a `…-delete` name (if one rename fails, the others are
    /// renamed back and the topic stays); the renames are made durable before the
    /// topic leaves memory, so a crash after that finishes the deletion at the next
    /// start, and a crash before it leaves the whole topic.
    pub fn delete_topic(&self, name: &str) -> Result<Uuid> {
        let _reserved = self
            .reserve(name)
            .ok_or(Error::InvalidRequest(format!("partitions of {name} are being changed")))?;
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        let topic = topics
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownTopicOrPartition {
                topic: name.to_string(),
                partition: -1,
            })?;
        let mut doomed: Vec<(PathBuf, PathBuf)> = Vec::new();
        for p in &topic.partitions {
            let to = self.dir.join(delete_dir_name(name, p.index, &topic.id));
            if let Err(e) = std::fs::rename(p.dir(), &to) {
                tracing::error!(topic = name, dir = %p.dir().display(), error = %e, "cannot delete topic");
                for (from, to) in doomed.iter().rev() {
                    if let Err(e) = std::fs::rename(to, from) {
                        tracing::error!(dir = %to.display(), error = %e, "cannot undo a partial topic deletion");
                    }
                }
                return Err(e.into());
            }
            doomed.push((p.dir().to_path_buf(), to));
        }
        util::fs::sync_dir(&self.dir)?;
        topics.remove(name);
        drop(topics);
        for (_, d) in doomed {
            if let Err(e) = std::fs::remove_dir_all(&d) {
                // The topic is gone already; its renamed directory goes at the next start.
                tracing::warn!(dir = %d.display(), error = %e, "could not remove a deleted partition's files yet");
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic.id)
    }

    /// Partitions whose unflushed data is older than their `flush.ms`.
    pub fn flush_overdue(&self, now_ms: i64) -> Vec<Arc<UnifiedLog>> {
        self.read_topics()
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter(|p| p.flush_overdue(now_ms))
            .cloned()
            .collect()
    }

    /// Clean shutdown: close every partition, then leave the marker that says so.
    /// A partition that cannot be closed (a full disk) does not stop the others;
    /// the marker is then left out, and the next start recovers.
    pub fn close(&self) -> Result<()> {
        if let Err(e) = self.checkpoint_high_watermarks() {
            tracing::warn!(error = %e, "could not write the replication offset checkpoint");
        }
        let mut first_error = None;
        for topic in self.read_topics().values() {
            for p in &topic.partitions {
                if let Err(e) = p.close() {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            tracing::error!(error = %e, "shutdown was not clean; the next start recovers the log");
            return Err(e.into());
        }
        util::fs::write_atomically(&self.dir.join(CLEAN_SHUTDOWN_FILE), b"")?;
        Ok(())
    }
}

mod checkpoints;
mod files;
mod internal_topics;
mod replicas;

pub use checkpoints::REPLICATION_CHECKPOINT;
pub(crate) use files::read_overrides;
use files::{read_topic_id, write_overrides, write_topic_id};
pub use internal_topics::{offsets_topic_configs, transaction_state_configs};

#[cfg(test)]
mod tests;
