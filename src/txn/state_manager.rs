//! The durable store of transaction metadata (Kafka's TransactionStateManager):
//! one record per transactional id in the compacted internal topic
//! `__transaction_state`, whose partition for an id is [`super::partition_for`]'s —
//! the coordinator of an id is the leader of that partition. Replayed when
//! loaded (the last record of an id wins; a tombstone removes it).
//!
//! On one broker the topic is this broker's own, made the first time a
//! transactional id is written, with Kafka's settings (50 partitions,
//! compacted, uncompressed, 100 MiB segments), so a broker whose clients never
//! use transactions keeps no files for it; every partition is loaded at start.
//! In a cluster the topic is the cluster's: this broker keeps the ids of the
//! partitions it leads, loaded when it becomes their leader
//! ([`TransactionStateManager::elect`]) and dropped when it stops
//! ([`TransactionStateManager::resign`]), and writes through a [`TxnStateLog`]
//! that appends only while it still leads and waits for the in-sync replicas.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;

use super::record_serde::{decode_key, decode_value, encode_key, encode_value};
use super::state::TransactionMetadata;
use crate::error::{Error, Result};
use crate::log::manager::{transaction_state_configs, LogManager, Topic, TRANSACTION_STATE_TOPIC};
use crate::log::unified_log::UnifiedLog;
use crate::record::batch::Batches;
use crate::record::records::{build_batch, records, NewRecord};

/// Kafka's transaction.state.log.num.partitions.
pub const PARTITIONS: i32 = 50;

/// A `__transaction_state` partition as the coordinator writes it.
pub trait TxnStateLog: Send + Sync {
    fn log(&self) -> &Arc<UnifiedLog>;
    /// Append `batch`; with `durable`, return once it is synced (and, in a
    /// cluster, copied by the in-sync replicas). NOT_COORDINATOR once this
    /// broker no longer leads the partition as the coordinator does.
    fn write(&self, batch: &[u8], durable: bool, now_ms: i64) -> Result<i64>;
}

/// One broker's own partition.
struct LocalTxnLog(Arc<UnifiedLog>);

impl TxnStateLog for LocalTxnLog {
    fn log(&self) -> &Arc<UnifiedLog> {
        &self.0
    }

    fn write(&self, batch: &[u8], durable: bool, now_ms: i64) -> Result<i64> {
        let end = self.0.append(batch, now_ms)?.log_end_offset;
        // A decision counts once it is on disk (Kafka writes it with acks=all).
        if durable {
            self.0.sync_active()?;
        }
        Ok(end)
    }
}

#[derive(Clone)]
enum Owned {
    Loading { epoch: i32 },
    Ready { epoch: i32, log: Arc<dyn TxnStateLog> },
}

pub struct TransactionStateManager {
    logs: Arc<LogManager>,
    /// In a cluster, the partitions this broker coordinates; None on one broker
    /// (it coordinates every partition of its own topic).
    owned: Option<RwLock<BTreeMap<i32, Owned>>>,
    /// How many partitions `__transaction_state` has (a cluster's, from its metadata).
    partitions: AtomicI32,
    /// transactional id → metadata, as of the last record of each.
    entries: Mutex<HashMap<String, TransactionMetadata>>,
}

/// Every id's last metadata in `log`.
fn replay(log: &UnifiedLog, entries: &mut HashMap<String, TransactionMetadata>) -> Result<()> {
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
    Ok(())
}

impl TransactionStateManager {
    /// One broker's store: every transactional id from its own
    /// `__transaction_state`, if it exists.
    pub fn open(logs: Arc<LogManager>) -> Result<TransactionStateManager> {
        let mut entries = HashMap::new();
        if let Some(topic) = logs.topic(TRANSACTION_STATE_TOPIC) {
            for log in &topic.partitions {
                replay(log, &mut entries)?;
            }
            tracing::info!(transactional_ids = entries.len(), "transaction state loaded");
        }
        Ok(TransactionStateManager {
            logs,
            owned: None,
            partitions: AtomicI32::new(PARTITIONS),
            entries: Mutex::new(entries),
        })
    }

    /// A cluster broker's store: empty until it leads partitions.
    pub fn for_cluster(logs: Arc<LogManager>) -> TransactionStateManager {
        TransactionStateManager {
            logs,
            owned: Some(RwLock::new(BTreeMap::new())),
            partitions: AtomicI32::new(PARTITIONS),
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_cluster(&self) -> bool {
        self.owned.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, TransactionMetadata>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn owned(&self) -> Option<std::sync::RwLockReadGuard<'_, BTreeMap<i32, Owned>>> {
        self.owned.as_ref().map(|o| o.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn owned_mut(&self) -> Option<std::sync::RwLockWriteGuard<'_, BTreeMap<i32, Owned>>> {
        self.owned
            .as_ref()
            .map(|o| o.write().unwrap_or_else(|e| e.into_inner()))
    }

    /// `__transaction_state` has `n` partitions (a cluster's metadata says).
    pub fn set_partitions(&self, n: i32) {
        self.partitions.store(n.max(1), Ordering::Relaxed);
    }

    /// The partition of `transactional_id`.
    pub fn partition_of(&self, transactional_id: &str) -> i32 {
        super::partition_for(transactional_id, self.partitions.load(Ordering::Relaxed))
    }

    /// Whether this broker coordinates `transactional_id` now: always on one
    /// broker; in a cluster NOT_COORDINATOR unless it leads the id's
    /// partition, COORDINATOR_LOAD_IN_PROGRESS while it loads it.
    pub fn check(&self, transactional_id: &str) -> Result<()> {
        self.owned_slot(transactional_id).map(drop)
    }

    /// The coordinator epoch markers of `transactional_id`'s transactions
    /// carry: its partition's leader epoch (0 on one broker).
    pub fn coordinator_epoch(&self, transactional_id: &str) -> i32 {
        match self.owned_slot(transactional_id) {
            Ok(Some((_, epoch))) => epoch,
            _ => 0,
        }
    }

    /// In a cluster, the log and leader epoch of `transactional_id`'s
    /// partition, if this broker coordinates it; None on one broker.
    fn owned_slot(&self, transactional_id: &str) -> Result<Option<(Arc<dyn TxnStateLog>, i32)>> {
        let Some(owned) = self.owned() else { return Ok(None) };
        let partition = self.partition_of(transactional_id);
        match owned.get(&partition) {
            Some(Owned::Ready { epoch, log }) => Ok(Some((log.clone(), *epoch))),
            Some(Owned::Loading { .. }) => Err(Error::CoordinatorLoadInProgress(partition)),
            None => Err(Error::NotCoordinator),
        }
    }

    /// Where `transactional_id`'s records go: on one broker its own topic's
    /// partition (the topic made on first use).
    fn target(&self, transactional_id: &str) -> Result<Arc<dyn TxnStateLog>> {
        if let Some((log, _)) = self.owned_slot(transactional_id)? {
            return Ok(log);
        }
        let topic = self.topic(crate::util::clock::now_ms())?;
        let index = super::partition_for(transactional_id, topic.partitions.len() as i32);
        let log = topic
            .partitions
            .get(index as usize)
            .ok_or(Error::CoordinatorNotAvailable("no such transaction state partition"))?;
        Ok(Arc::new(LocalTxnLog(log.clone())))
    }

    /// Partition → the leader epoch it is coordinated (or loading) at.
    pub fn held(&self) -> BTreeMap<i32, i32> {
        self.owned()
            .map(|o| {
                o.iter()
                    .map(|(p, s)| match s {
                        Owned::Loading { epoch } | Owned::Ready { epoch, .. } => (*p, *epoch),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Start coordinating `partition` at leader `epoch` (a cluster's): false
    /// if it already is.
    pub fn begin_load(&self, partition: i32, epoch: i32) -> bool {
        let Some(mut owned) = self.owned_mut() else {
            return false;
        };
        match owned.get(&partition) {
            Some(Owned::Loading { epoch: e } | Owned::Ready { epoch: e, .. }) if *e == epoch => false,
            _ => {
                owned.insert(partition, Owned::Loading { epoch });
                drop(owned);
                self.forget(partition);
                true
            }
        }
    }

    /// Read `partition`'s ids from its log (the blocking part) and coordinate
    /// them, unless leadership moved on meanwhile.
    pub fn finish_load(&self, partition: i32, epoch: i32, log: Arc<dyn TxnStateLog>) -> Result<()> {
        let mut loaded = HashMap::new();
        let replayed = replay(log.log(), &mut loaded);
        let Some(mut owned) = self.owned_mut() else {
            return Ok(());
        };
        if !matches!(owned.get(&partition), Some(Owned::Loading { epoch: e }) if *e == epoch) {
            return Ok(());
        }
        if let Err(e) = replayed {
            owned.remove(&partition);
            return Err(e);
        }
        tracing::info!(
            partition,
            transactional_ids = loaded.len(),
            "transaction state partition loaded"
        );
        self.lock().extend(loaded);
        owned.insert(partition, Owned::Ready { epoch, log });
        Ok(())
    }

    /// Stop coordinating `partition` (another broker leads it now).
    pub fn resign(&self, partition: i32) {
        let Some(mut owned) = self.owned_mut() else { return };
        if owned.remove(&partition).is_some() {
            drop(owned);
            self.forget(partition);
            tracing::info!(partition, "transaction state partition resigned");
        }
    }

    fn forget(&self, partition: i32) {
        let n = self.partitions.load(Ordering::Relaxed);
        self.lock().retain(|id, _| super::partition_for(id, n) != partition);
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
        let log = self.target(transactional_id)?;
        let end = log.write(&build_batch(&[record], None), sync, now_ms)?;
        // Still this broker's to coordinate (a cluster's could have resigned
        // the partition meanwhile: its ids are gone from memory, and stay
        // so). Checked holding the ids, which a resignation takes after it.
        let mut entries = self.lock();
        self.check(transactional_id)?;
        match metadata {
            Some(m) => entries.insert(transactional_id.to_string(), m.clone()),
            None => entries.remove(transactional_id),
        };
        Ok(end)
    }

    /// `__transaction_state`, made on first use (one broker's own).
    pub fn topic(&self, now_ms: i64) -> Result<Arc<Topic>> {
        if let Some(t) = self.logs.topic(TRANSACTION_STATE_TOPIC) {
            return Ok(t);
        }
        if self.is_cluster() {
            return Err(Error::CoordinatorNotAvailable(
                "the transaction state topic is not made yet",
            ));
        }
        match self.logs.create_topic(
            TRANSACTION_STATE_TOPIC,
            PARTITIONS,
            &transaction_state_configs(),
            now_ms,
        ) {
            Ok(t) => Ok(t),
            // Made meanwhile by another writer.
            Err(Error::TopicAlreadyExists(_)) => self
                .logs
                .topic(TRANSACTION_STATE_TOPIC)
                .ok_or(Error::CoordinatorNotAvailable("the transaction state topic is gone")),
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
