//! The transaction coordinator's decisions (Kafka's TransactionCoordinator, for
//! transaction versions 0/1): InitProducerId with a transactional id,
//! AddPartitionsToTxn, EndTxn, and the aborts it makes itself (timeouts, fences),
//! each a checked transition written to `__transaction_state` before it counts.
//!
//! Markers go through one interface, [`MarkerWriter`]: on one broker it appends
//! to the local partition; with replication it will be Kafka's WriteTxnMarkers to
//! each partition's leader. A transaction in PrepareCommit/PrepareAbort has made
//! its decision; [`TransactionCoordinator::complete_pending`] writes what markers
//! are missing and completes it — after each decision, at start (a crash between
//! the two) and whenever a marker write failed.
//!
//! Time is passed in, so every path is tested without waiting.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::state::{TopicPartition, TransactionMetadata, TransactionState};
use super::state_manager::TransactionStateManager;
use crate::error::{Error, Result};
use crate::record::control::{Marker, MarkerType};

/// Writes one transaction marker to one partition.
pub trait MarkerWriter {
    fn write_marker(
        &self,
        partition: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
    ) -> Result<()>;
}

/// Whether a transactional batch may be written to a partition: the
/// producer's open transaction includes it (KIP-890's verification). On one
/// broker the coordinator answers directly; with replication a partition's
/// leader will ask the coordinator's broker.
pub trait TxnVerifier {
    fn verify(&self, transactional_id: &str, producer_id: i64, epoch: i16, partition: &TopicPartition) -> Result<()>;
}

/// Kafka's transaction.max.timeout.ms.
pub const MAX_TIMEOUT_MS: i32 = 900_000;
/// The last usable epoch: past it, a producer gets a new id.
const EPOCH_EXHAUSTED: i16 = i16::MAX - 1;

pub struct TransactionCoordinator {
    store: TransactionStateManager,
    max_timeout_ms: i32,
    /// Per id, the epoch before its last bump (Kafka keeps it in memory only), so
    /// a retried KIP-360 InitProducerId gets the epoch it already got.
    last_epochs: Mutex<HashMap<String, i16>>,
    /// Serialises transitions: a decision is read, checked and written whole.
    deciding: Mutex<()>,
}

impl TransactionCoordinator {
    pub fn new(store: TransactionStateManager, max_timeout_ms: i32) -> TransactionCoordinator {
        TransactionCoordinator {
            store,
            max_timeout_ms,
            last_epochs: Mutex::new(HashMap::new()),
            deciding: Mutex::new(()),
        }
    }

    fn decide(&self) -> MutexGuard<'_, ()> {
        self.deciding.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Make `__transaction_state` if it does not exist yet (as Kafka's
    /// FindCoordinator does for a transactional id), so its partitions have a
    /// leader to name.
    /// (One broker's: a cluster's is made by its controller.)
    pub fn ensure_state_topic(&self, now_ms: i64) -> Result<()> {
        match self.store.is_cluster() {
            true => Ok(()),
            false => self.store.topic(now_ms).map(|_| ()),
        }
    }

    /// The store of the ids this broker coordinates.
    pub fn store(&self) -> &TransactionStateManager {
        &self.store
    }

    /// An id's metadata, if this broker coordinates it (NOT_COORDINATOR,
    /// COORDINATOR_LOAD_IN_PROGRESS otherwise).
    pub fn metadata(&self, transactional_id: &str) -> Result<Option<TransactionMetadata>> {
        self.store.check(transactional_id)?;
        Ok(self.store.get(transactional_id))
    }

    /// Every transactional id this coordinator knows.
    pub fn all(&self) -> Vec<(String, TransactionMetadata)> {
        self.store.all()
    }

    /// InitProducerId with a transactional id: the producer id and epoch the
    /// producer goes on with. `expected`: the id and epoch it has (KIP-360), if
    /// any. An open transaction is aborted first (the producer is told to retry,
    /// CONCURRENT_TRANSACTIONS), so the new producer starts clean.
    pub fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        new_producer_id: &dyn Fn() -> Result<i64>,
        markers: &dyn MarkerWriter,
        now_ms: i64,
    ) -> Result<(i64, i16)> {
        if timeout_ms <= 0 || timeout_ms > self.max_timeout_ms {
            return Err(Error::InvalidTransactionTimeout {
                timeout_ms,
                max_ms: self.max_timeout_ms,
            });
        }
        self.store.check(transactional_id)?;
        let guard = self.decide();
        let current = match self.store.get(transactional_id) {
            Some(m) => m,
            None => {
                let id = new_producer_id()?;
                let m = TransactionMetadata::new(id, 0, timeout_ms, now_ms);
                self.store.write(transactional_id, Some(&m), now_ms)?;
                return Ok((id, 0));
            }
        };
        let fenced = || Error::ProducerFenced(transactional_id.to_string());
        if let Some((pid, epoch)) = expected {
            let retried_rotation = pid == current.previous_producer_id && epoch >= EPOCH_EXHAUSTED;
            if pid != current.producer_id && !retried_rotation {
                return Err(fenced());
            }
            if pid == current.producer_id && epoch != current.producer_epoch {
                // A retry of a bump that already happened gets the same answer.
                let last = self.last_epochs().get(transactional_id).copied();
                if last == Some(epoch) && current.state == TransactionState::Empty {
                    return Ok((current.producer_id, current.producer_epoch));
                }
                return Err(fenced());
            }
        }
        match current.state {
            TransactionState::PrepareCommit | TransactionState::PrepareAbort => {
                drop(guard);
                self.complete_pending(markers, now_ms);
                Err(Error::ConcurrentTransactions(transactional_id.to_string()))
            }
            TransactionState::Ongoing => {
                // Fence the producer (a new epoch) and abort its transaction.
                let mut fence = current.transition(TransactionState::PrepareEpochFence, now_ms)?;
                fence.producer_epoch = fence.producer_epoch.checked_add(1).ok_or_else(fenced)?;
                let abort = fence.transition(TransactionState::PrepareAbort, now_ms)?;
                self.store.write(transactional_id, Some(&abort), now_ms)?;
                self.last_epochs().remove(transactional_id);
                drop(guard);
                self.complete_pending(markers, now_ms);
                Err(Error::ConcurrentTransactions(transactional_id.to_string()))
            }
            _ => {
                let mut next = current.transition(TransactionState::Empty, now_ms)?;
                next.timeout_ms = timeout_ms;
                if current.producer_epoch >= EPOCH_EXHAUSTED {
                    next.previous_producer_id = current.producer_id;
                    next.producer_id = new_producer_id()?;
                    next.producer_epoch = 0;
                } else {
                    next.producer_epoch = current.producer_epoch + 1;
                }
                self.store.write(transactional_id, Some(&next), now_ms)?;
                self.last_epochs()
                    .insert(transactional_id.to_string(), current.producer_epoch);
                Ok((next.producer_id, next.producer_epoch))
            }
        }
    }

    fn last_epochs(&self) -> MutexGuard<'_, HashMap<String, i16>> {
        self.last_epochs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The metadata of a producer's transactional id, checked: the id known with
    /// this producer id (INVALID_PRODUCER_ID_MAPPING) and epoch (PRODUCER_FENCED).
    fn producer(&self, transactional_id: &str, producer_id: i64, epoch: i16) -> Result<TransactionMetadata> {
        self.store.check(transactional_id)?;
        let m = self
            .store
            .get(transactional_id)
            .filter(|m| m.producer_id == producer_id)
            .ok_or_else(|| Error::InvalidProducerIdMapping(transactional_id.to_string()))?;
        if m.producer_epoch != epoch {
            return Err(Error::ProducerFenced(transactional_id.to_string()));
        }
        Ok(m)
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's offsets
    /// partition): the partitions join the producer's transaction, which begins
    /// if none is open. A partition added again changes nothing.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
        now_ms: i64,
    ) -> Result<()> {
        let _guard = self.decide();
        let current = self.producer(transactional_id, producer_id, epoch)?;
        if current.state.is_preparing() {
            return Err(Error::ConcurrentTransactions(transactional_id.to_string()));
        }
        if current.state == TransactionState::Ongoing && partitions.iter().all(|p| current.partitions.contains(p)) {
            return Ok(());
        }
        let mut next = current.transition(TransactionState::Ongoing, now_ms)?;
        next.partitions.extend(partitions.iter().cloned());
        self.store.write(transactional_id, Some(&next), now_ms)?;
        Ok(())
    }

    /// EndTxn: commit or abort the producer's transaction. The decision is
    /// written (Prepare*), then the markers, then the completion; a retry of a
    /// finished end with the same result succeeds.
    pub fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        markers: &dyn MarkerWriter,
        now_ms: i64,
    ) -> Result<()> {
        let guard = self.decide();
        let current = self.producer(transactional_id, producer_id, epoch)?;
        use TransactionState::*;
        let (prepare, complete) = if commit {
            (PrepareCommit, CompleteCommit)
        } else {
            (PrepareAbort, CompleteAbort)
        };
        let wrong = || {
            Error::InvalidTxnState(format!(
                "{transactional_id} is not in a state to {}",
                if commit { "commit" } else { "abort" }
            ))
        };
        match current.state {
            Ongoing => {
                let decided = current.transition(prepare, now_ms)?;
                self.store.write(transactional_id, Some(&decided), now_ms)?;
            }
            s if s == complete => return Ok(()),
            s if s == prepare => return Err(Error::ConcurrentTransactions(transactional_id.to_string())),
            _ => return Err(wrong()),
        }
        drop(guard);
        self.complete_pending(markers, now_ms);
        Ok(())
    }

    /// Abort the open transactions that outlived their timeout, fencing their
    /// producers (a new epoch). Returns the ids aborted.
    pub fn abort_timed_out(&self, markers: &dyn MarkerWriter, now_ms: i64) -> Vec<String> {
        let mut aborted = Vec::new();
        {
            let _guard = self.decide();
            for (id, m) in self.store.all() {
                if !m.timed_out(now_ms) {
                    continue;
                }
                let Ok(mut fence) = m.transition(TransactionState::PrepareEpochFence, now_ms) else {
                    continue;
                };
                let Some(epoch) = fence.producer_epoch.checked_add(1) else {
                    continue;
                };
                fence.producer_epoch = epoch;
                let Ok(abort) = fence.transition(TransactionState::PrepareAbort, now_ms) else {
                    continue;
                };
                match self.store.write(&id, Some(&abort), now_ms) {
                    Ok(_) => {
                        tracing::info!(transactional_id = %id, "transaction timed out: aborted");
                        self.last_epochs().remove(&id);
                        aborted.push(id);
                    }
                    Err(e) => {
                        tracing::warn!(transactional_id = %id, error = %e, "cannot abort a timed-out transaction yet")
                    }
                }
            }
        }
        self.complete_pending(markers, now_ms);
        aborted
    }

    /// Forget the transactional ids without an open transaction whose last
    /// change is `expiration_ms` old (transactional.id.expiration.ms): a
    /// tombstone in `__transaction_state`, which compaction then removes. A
    /// producer using such an id again starts afresh (a new producer id).
    /// Returns the ids removed.
    pub fn expire_ids(&self, expiration_ms: i64, now_ms: i64) -> Vec<String> {
        use TransactionState::*;
        let _guard = self.decide();
        let mut expired = Vec::new();
        for (id, m) in self.store.all() {
            let idle = matches!(m.state, Empty | CompleteCommit | CompleteAbort)
                && now_ms.saturating_sub(m.last_update_ms) >= expiration_ms;
            if !idle {
                continue;
            }
            match self.store.write(&id, None, now_ms) {
                Ok(_) => {
                    tracing::info!(transactional_id = %id, "transactional id expired");
                    self.last_epochs().remove(&id);
                    expired.push(id);
                }
                Err(e) => tracing::warn!(transactional_id = %id, error = %e, "cannot expire a transactional id yet"),
            }
        }
        expired
    }

    /// Write the markers of every decided transaction and complete it. A
    /// transaction whose markers cannot all be written stays decided, for the
    /// next call.
    pub fn complete_pending(&self, markers: &dyn MarkerWriter, now_ms: i64) {
        let _guard = self.decide();
        for (id, m) in self.store.all() {
            let (kind, complete) = match m.state {
                TransactionState::PrepareCommit => (MarkerType::Commit, TransactionState::CompleteCommit),
                TransactionState::PrepareAbort => (MarkerType::Abort, TransactionState::CompleteAbort),
                _ => continue,
            };
            let marker = Marker {
                kind,
                coordinator_epoch: self.store.coordinator_epoch(&id),
            };
            // A partition deleted since needs no marker (Kafka drops it too);
            // any other failure leaves the transaction decided, for a retry.
            let written = m.partitions.iter().try_for_each(|p| {
                match markers.write_marker(p, m.producer_id, m.producer_epoch, marker) {
                    Err(Error::UnknownTopicOrPartition { .. }) => {
                        tracing::info!(transactional_id = %id, topic = %p.0, partition = p.1, "no marker for a partition that is gone");
                        Ok(())
                    }
                    other => other,
                }
            });
            // The markers are durable (each is synced): the completion need not
            // wait for the disk.
            let done = written.and_then(|()| {
                let completed = m.transition(complete, now_ms)?;
                self.store.write_unsynced(&id, &completed, now_ms).map(drop)
            });
            if let Err(e) = done {
                tracing::warn!(transactional_id = %id, error = %e, "transaction markers not all written; retrying later");
            }
        }
    }
}

impl TxnVerifier for TransactionCoordinator {
    /// Whether `partition` is in the open transaction of this producer. The
    /// caller asks with a partition's verification guard in hand, so a marker
    /// written after this answer still keeps the batch out.
    fn verify(&self, transactional_id: &str, producer_id: i64, epoch: i16, partition: &TopicPartition) -> Result<()> {
        let m = self.producer(transactional_id, producer_id, epoch)?;
        if m.state == TransactionState::Ongoing && m.partitions.contains(partition) {
            return Ok(());
        }
        Err(Error::InvalidTxnState(format!(
            "{}-{} is not part of an ongoing transaction of {transactional_id}",
            partition.0, partition.1
        )))
    }
}

impl From<super::state::IllegalTransition> for Error {
    fn from(e: super::state::IllegalTransition) -> Error {
        Error::InvalidTxnState(e.to_string())
    }
}

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
