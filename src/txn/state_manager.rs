//! The durable store of transaction metadata (Kafka's TransactionStateManager):
//! one record per transactional id in the compacted internal topic
//! `__transaction_state`, whose partition for an id is [`super::partition_for`]'s —
//! the coordinator of an id is the leader of that partition. Replayed at start (the
//! last record of an id wins; a tombstone removes it).
//!
//! The topic is made the first time a transactional id is written, with Kafka's
//! settings (50 partitions, compacted, uncompressed, 100 MiB segments), so a broker
//! whose clients never use transactions keeps no files for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::record_serde::{decode_key, decode_value, encode_key, encode_value};
use super::state::TransactionMetadata;
use crate::error::{Error, Result};
use crate::log::manager::{LogManager, Topic, TRANSACTION_STATE_TOPIC};
use crate::record::batch::Batches;
use crate::record::records::{build_batch, records, NewRecord};

/// Kafka's transaction.state.log.num.partitions.
pub const PARTITIONS: i32 = 50;

pub struct TransactionStateManager {
    logs: Arc<LogManager>,
    /// transactional id → metadata, as of the last record of each.
    entries: Mutex<HashMap<String, TransactionMetadata>>,
}

impl TransactionStateManager {
    /// Load every transactional id from `__transaction_state`, if it exists.
    pub fn open(logs: Arc<LogManager>) -> Result<TransactionStateManager> {
        let mut entries = HashMap::new();
        if let Some(topic) = logs.topic(TRANSACTION_STATE_TOPIC) {
            for log in &topic.partitions {
                let mut offset = log.log_start_offset();
                while offset < log.log_end_offset() {
                    let data = log.read(offset, 1 << 20)?;
                    if data.is_empty() {
                        break;
                    }
                    for (at, h) in Batches::new(&data) {
                        offset = h.last_offset() + 1;
                        // Transaction markers carry no metadata.
                        if h.is_control() {
                            continue;
                        }
                        let batch = data.slice(at..at + h.total_size());
                        for r in records(&batch, &h)? {
                            let Some(key) = r.key else { continue };
                            let id = decode_key(&key)?;
                            match r.value {
                                Some(v) => entries.insert(id, decode_value(&v)?),
                                None => entries.remove(&id),
                            };
                        }
                    }
                }
            }
            tracing::info!(transactional_ids = entries.len(), "transaction state loaded");
        }
        Ok(TransactionStateManager {
            logs,
            entries: Mutex::new(entries),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, TransactionMetadata>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, transactional_id: &str) -> Option<TransactionMetadata> {
        self.lock().get(transactional_id).cloned()
    }

    /// Every transactional id and its metadata.
    pub fn all(&self) -> Vec<(String, TransactionMetadata)> {
        self.lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Write `transactional_id`'s metadata (`None`: remove the id) to its
    /// partition and make it durable, then take it as current. Returns the
    /// partition's end offset.
    pub fn write(&self, transactional_id: &str, metadata: Option<&TransactionMetadata>, now_ms: i64) -> Result<i64> {
        self.write_record(transactional_id, metadata, true, now_ms)
    }

    /// [`TransactionStateManager::write`] without waiting for the disk, for a
    /// record whose loss a restart repairs: a transaction's completion (lost,
    /// the decision before it is replayed and its markers written again, which
    /// changes nothing). Any later synced write makes it durable too, since it
    /// comes first in the same file.
    pub fn write_unsynced(&self, transactional_id: &str, metadata: &TransactionMetadata, now_ms: i64) -> Result<i64> {
        self.write_record(transactional_id, Some(metadata), false, now_ms)
    }

    fn write_record(
        &self,
        transactional_id: &str,
        metadata: Option<&TransactionMetadata>,
        sync: bool,
        now_ms: i64,
    ) -> Result<i64> {
        let record = NewRecord {
            key: Some(Bytes::from(encode_key(transactional_id)?)),
            value: metadata.map(encode_value).transpose()?.map(Bytes::from),
            timestamp: now_ms,
            headers: Vec::new(),
        };
        let topic = self.topic(now_ms)?;
        let partition = super::partition_for(transactional_id, topic.partitions.len() as i32);
        let log = topic
            .partitions
            .get(partition as usize)
            .ok_or(Error::CoordinatorNotAvailable("transaction state partition"))?;
        let end = log.append(&build_batch(&[record], None), now_ms)?.log_end_offset;
        // A decision counts once it is on disk (Kafka writes it with acks=all).
        if sync {
            log.sync_active()?;
        }
        let mut entries = self.lock();
        match metadata {
            Some(m) => entries.insert(transactional_id.to_string(), m.clone()),
            None => entries.remove(transactional_id),
        };
        Ok(end)
    }

    /// `__transaction_state`, made on first use.
    pub fn topic(&self, now_ms: i64) -> Result<Arc<Topic>> {
        if let Some(t) = self.logs.topic(TRANSACTION_STATE_TOPIC) {
            return Ok(t);
        }
        let configs = [
            ("cleanup.policy", "compact"),
            ("compression.type", "uncompressed"),
            ("segment.bytes", "104857600"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        match self
            .logs
            .create_topic(TRANSACTION_STATE_TOPIC, PARTITIONS, &configs, now_ms)
        {
            Ok(t) => Ok(t),
            // Made meanwhile by another writer.
            Err(Error::TopicAlreadyExists(_)) => self
                .logs
                .topic(TRANSACTION_STATE_TOPIC)
                .ok_or(Error::CoordinatorNotAvailable("transaction state topic")),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::config::LogConfig;
    use crate::txn::state::TransactionState;

    #[test]
    fn metadata_is_written_replayed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let open_logs = || Arc::new(LogManager::open(dir.path(), LogConfig::default(), 0).unwrap());
        let logs = open_logs();
        let store = TransactionStateManager::open(logs.clone()).unwrap();
        assert!(logs.topic(TRANSACTION_STATE_TOPIC).is_none(), "made on first use only");
        let mut m = TransactionMetadata::new(7, 0, 60_000, 10);
        store.write("txn-1", Some(&m), 10).unwrap();
        m = m.transition(TransactionState::Ongoing, 20).unwrap();
        m.partitions.insert(("orders".into(), 2));
        store.write("txn-1", Some(&m), 20).unwrap();
        store
            .write("gone", Some(&TransactionMetadata::new(8, 0, 1_000, 10)), 30)
            .unwrap();
        store.write("gone", None, 40).unwrap();
        let topic = logs.topic(TRANSACTION_STATE_TOPIC).unwrap();
        assert_eq!(topic.partitions.len(), PARTITIONS as usize);
        assert_eq!(
            topic.partitions[10].log_end_offset(),
            2,
            "txn-1 lives in partition 10, as in Kafka"
        );
        drop((store, topic));
        logs.close().unwrap();
        drop(logs);
        let store = TransactionStateManager::open(open_logs()).unwrap();
        assert_eq!(store.get("txn-1"), Some(m));
        assert_eq!(store.get("gone"), None);
        assert_eq!(store.all().len(), 1);
    }
}
