//! A partition's side of transactions: the markers that end them, the last stable
//! offset, and the aborted transactions a read_committed fetch is told of.

use super::*;
use crate::log::producer_state::ProducerSummary;

impl UnifiedLog {
    /// The guard to ask the transaction coordinator with, before a
    /// transactional batch of `producer_id` is appended (KIP-890): the batch is
    /// appended only if no marker of the producer came in between.
    pub fn verification_guard(&self, producer_id: i64) -> VerificationGuard {
        self.lock().producers.verification_guard(producer_id)
    }

    /// Withdraw `guard` after its verification failed, unless the producer has a
    /// transaction open here (then it is the marker's to withdraw).
    pub fn release_verification_guard(&self, producer_id: i64, guard: VerificationGuard) {
        self.lock().producers.release_verification_guard(producer_id, guard);
    }

    /// The partition's producers (DescribeProducers).
    pub fn producers(&self) -> Vec<ProducerSummary> {
        self.lock().producers.describe()
    }

    /// fsync the active segment now, from a blocking context: what makes a
    /// coordinator's write (a marker, a `__transaction_state` record) durable
    /// before the coordinator goes on.
    pub fn sync_active(&self) -> io::Result<()> {
        let file = self.lock().active.file();
        file.sync_data()
    }

    /// Append the marker that ends producer `producer_id`'s transaction here (a
    /// transaction coordinator's write, Kafka's WriteTxnMarkers).
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        let config = self.config();
        let batch = control::marker_batch(producer_id, producer_epoch, marker, now_ms)?;
        self.append_validated(&config, &batch, Some(marker), AppendOrigin::Coordinator, None, now_ms)
    }

    /// The last stable offset: below it every transaction is decided, so
    /// read_committed consumers read up to it. The first offset of the oldest open
    /// transaction, else the high watermark.
    pub fn last_stable_offset(&self) -> i64 {
        let log = self.lock();
        let hw = log.high_watermark();
        log.producers
            .first_unstable_offset()
            .map_or(hw, |first| first.max(log.log_start_offset).min(hw))
    }

    /// The aborted transactions a read_committed fetch of `[from, upper)` must
    /// be told of, sorted by first offset (kafkajs reads the list in order).
    pub fn aborted_transactions(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        let log = self.lock();
        let mut found = Vec::new();
        let ends_after_from =
            |s: &&LogSegment| s.base_offset == log.active.base_offset || log.segment_end(s.base_offset) > from;
        'segments: for seg in log.segments().filter(ends_after_from) {
            for e in seg.aborted_txns() {
                if e.last_offset >= from && e.first_offset < upper {
                    found.push(*e);
                }
                if e.last_stable_offset >= upper {
                    break 'segments;
                }
            }
        }
        found.sort_by_key(|e| e.first_offset);
        found
    }
}

/// The aborted-transaction index entry of a transaction a marker just closed
/// (none for a commit): its range, and the LSO once it is closed — the first
/// offset of the oldest transaction still open, else just past the marker.
pub(super) fn aborted_entry(producers: &ProducerStateManager, txn: CompletedTxn) -> Option<AbortedTxn> {
    txn.aborted.then(|| AbortedTxn {
        producer_id: txn.producer_id,
        first_offset: txn.first_offset,
        last_offset: txn.last_offset,
        last_stable_offset: producers.first_unstable_offset().unwrap_or(txn.last_offset + 1),
    })
}
