//! Idempotent-producer state of one partition (Kafka's ProducerStateManager).
//!
//! Per producer id the broker remembers the current epoch and the last five batches
//! appended. Kafka's rules, checked before a batch is appended:
//! - an epoch older than the current one is fenced (INVALID_PRODUCER_EPOCH);
//! - a newer epoch must start at sequence 0;
//! - within an epoch, a batch identical in sequence range to one of the last five is
//!   a retry: it is acknowledged with the original offset and not appended again;
//! - otherwise the first sequence must follow the last one (wrapping at i32::MAX),
//!   else OUT_OF_ORDER_SEQUENCE_NUMBER;
//! - a producer the broker knows nothing about may start at any sequence (its
//!   state may have expired or predate a restart).
//!
//! Transactions (KIP-98): a producer's transactional batches open a transaction at
//! the first one's offset, which its marker (a control batch the coordinator
//! writes) closes. The first offset of the oldest open transaction is the
//! partition's first unstable offset, below which read_committed consumers read.
//! A producer with an open transaction may not write outside it.
//!
//! Verification guards (KIP-890 part 1): a transactional batch that would open
//! a transaction here must carry the guard this partition handed out before the
//! transaction coordinator was asked whether the partition is in the producer's
//! transaction. The producer's next marker withdraws the guard, so a batch
//! verified before its transaction ended but appended after the marker is refused
//! (INVALID_TXN_STATE) instead of opening a transaction no one will end. Guards
//! live in memory only: a request in flight does not outlive a restart.
//!
//! On a clean shutdown the state is written to `producer.snapshot` in the partition
//! directory; after a crash it is rebuilt from the batches of the active segment.
//! Snapshot layout (big-endian): the magic `FF 'S' 'T' 03`, `next_offset: i64`,
//! `count: u32`, then per producer `producer_id: i64, epoch: i16,
//! coordinator_epoch: i32, txn_first_offset: i64 (−1: none), last_timestamp: i64,
//! batches: u8`, then per batch `first_seq: i32, last_seq: i32, base_offset: i64`,
//! and last a CRC-32C (u32) of everything before it. The earlier layouts (magic
//! `…02` without the timestamp; no magic and no transaction fields) are still read.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::record::batch::BatchHeader;
use crate::record::control::{Marker, MarkerType};
use crate::record::reader::ByteReader;

const BATCHES_KEPT: usize = 5;
pub const SNAPSHOT_FILE: &str = "producer.snapshot";
/// How many `{offset:020}.snapshot` files (one per segment roll) a partition keeps.
pub const KEPT_SNAPSHOTS: usize = 3;

fn offset_snapshot_path(dir: &Path, offset: i64) -> std::path::PathBuf {
    dir.join(format!("{offset:020}.snapshot"))
}

/// The offsets of a partition's `{offset:020}.snapshot` files, ascending.
fn offset_snapshots(dir: &Path) -> io::Result<Vec<i64>> {
    super::segment::offset_files(dir, "snapshot")
}

fn remove_file_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
/// Starts a snapshot of the layout with transactions (a negative next offset in
/// the first layout, so never mistaken for one).
const SNAPSHOT_MAGIC: [u8; 4] = [0xFF, b'S', b'T', 3];
/// The layout before `last_timestamp`.
const SNAPSHOT_MAGIC_V2: [u8; 4] = [0xFF, b'S', b'T', 2];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
}

#[derive(Debug, Clone)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
    /// The epoch of the coordinator that wrote the producer's last marker.
    coordinator_epoch: i32,
    /// Where the producer's open transaction begins, if one is open.
    txn_first_offset: Option<i64>,
    /// The greatest timestamp of its last batch (−1: unknown).
    last_timestamp: i64,
}

impl Default for ProducerEntry {
    fn default() -> Self {
        ProducerEntry {
            epoch: 0,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            txn_first_offset: None,
            last_timestamp: -1,
        }
    }
}

/// One producer of a partition, as DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerSummary {
    pub producer_id: i64,
    pub epoch: i16,
    /// −1 when none is remembered.
    pub last_sequence: i32,
    pub coordinator_epoch: i32,
    /// −1 when no transaction is open.
    pub txn_first_offset: i64,
    /// The greatest timestamp of its last batch, −1 if unknown.
    pub last_timestamp: i64,
}

/// A transaction a marker closed: its producer, the offsets from its first batch
/// to its marker, and whether it was aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub aborted: bool,
}

/// The outcome of checking a batch against the producer's state.
#[derive(Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// A retry of a batch already in the log at this base offset.
    Duplicate(i64),
}

/// Who wrote a batch (Kafka's AppendOrigin): clients' batches are checked in
/// full; a coordinator's own transactional writes (offsets committed in a
/// transaction) only against fencing, since it numbers no sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    Client,
    Coordinator,
}

/// A partition's token that a transactional batch was verified with the
/// transaction coordinator (Kafka's VerificationGuard). Each is unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationGuard(u64);

#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Per producer id, the guard handed out since its last marker.
    guards: HashMap<i64, VerificationGuard>,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerStateManager {
    /// The guard to verify producer `producer_id`'s next transactional batch
    /// with: the one handed out since its last marker, else a new one.
    pub fn verification_guard(&mut self, producer_id: i64) -> VerificationGuard {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        *self
            .guards
            .entry(producer_id)
            .or_insert_with(|| VerificationGuard(NEXT.fetch_add(1, Ordering::Relaxed)))
    }

    /// Withdraw `guard` after its verification failed: a producer that may not
    /// write here keeps nothing in memory. A producer with a transaction open
    /// here keeps its guard until the marker.
    pub fn release_verification_guard(&mut self, producer_id: i64, guard: VerificationGuard) {
        let open = self
            .producers
            .get(&producer_id)
            .is_some_and(|e| e.txn_first_offset.is_some());
        if !open && self.guards.get(&producer_id) == Some(&guard) {
            self.guards.remove(&producer_id);
        }
    }

    /// A marker from a coordinator older than the one that wrote this
    /// producer's last marker is refused (TRANSACTION_COORDINATOR_FENCED): a
    /// coordinator that lost its partition, or a client making markers up.
    pub fn check_marker(&self, producer_id: i64, marker: Marker) -> Result<()> {
        match self.producers.get(&producer_id) {
            Some(e) if marker.coordinator_epoch < e.coordinator_epoch => Err(Error::TransactionCoordinatorFenced {
                producer_id,
                found: marker.coordinator_epoch,
                current: e.coordinator_epoch,
            }),
            _ => Ok(()),
        }
    }

    /// Check a batch before it is appended (`guard`: the verification guard it
    /// was verified with, if it was). Non-idempotent batches always pass.
    pub fn check(
        &self,
        h: &BatchHeader,
        origin: AppendOrigin,
        guard: Option<VerificationGuard>,
    ) -> Result<SequenceCheck> {
        if !h.is_idempotent() {
            return Ok(SequenceCheck::Append);
        }
        let entry = self.producers.get(&h.producer_id);
        if let Some(entry) = entry.filter(|e| h.producer_epoch < e.epoch) {
            return Err(Error::InvalidProducerEpoch {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current: entry.epoch,
            });
        }
        let in_transaction = entry.is_some_and(|e| e.epoch == h.producer_epoch && e.txn_first_offset.is_some());
        if h.is_transactional() && !h.is_control() && !in_transaction {
            let current = self.guards.get(&h.producer_id);
            if guard.is_none() || current != guard.as_ref() {
                return Err(Error::InvalidTxnState(format!(
                    "producer {}'s batch was not verified as part of an ongoing transaction",
                    h.producer_id
                )));
            }
        }
        let Some(entry) = entry else {
            return Ok(SequenceCheck::Append);
        };
        // Markers carry no sequence, nor do a coordinator's writes.
        if h.is_control() || origin == AppendOrigin::Coordinator {
            return Ok(SequenceCheck::Append);
        }
        if !h.is_transactional() && entry.txn_first_offset.is_some() {
            return Err(Error::InvalidTxnState(format!(
                "producer {} has an open transaction: its writes must be transactional",
                h.producer_id
            )));
        }
        if h.producer_epoch > entry.epoch {
            if h.base_sequence != 0 {
                return Err(Error::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    found: h.base_sequence,
                    expected: 0,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        let last_seq = h.last_sequence();
        if let Some(b) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
        {
            return Ok(SequenceCheck::Duplicate(b.base_offset));
        }
        let expected = entry.batches.back().map(|b| next_seq(b.last_seq)).unwrap_or(0);
        if h.base_sequence != expected {
            return Err(Error::OutOfOrderSequence {
                producer_id: h.producer_id,
                found: h.base_sequence,
                expected,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Record a batch that was appended at `h.base_offset` (`marker`: what it
    /// carries, if it is a transaction marker); the transaction it closed, if any.
    pub fn update(&mut self, h: &BatchHeader, marker: Option<Marker>) -> Option<CompletedTxn> {
        if !h.is_idempotent() {
            return None;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = h.max_timestamp;
        if h.is_control() {
            let marker = marker?;
            self.guards.remove(&h.producer_id);
            entry.coordinator_epoch = marker.coordinator_epoch;
            return entry.txn_first_offset.take().map(|first_offset| CompletedTxn {
                producer_id: h.producer_id,
                first_offset,
                last_offset: h.base_offset,
                aborted: marker.kind == MarkerType::Abort,
            });
        }
        if h.is_transactional() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(h.base_offset);
        }
        if entry.batches.len() == BATCHES_KEPT {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            base_offset: h.base_offset,
        });
        None
    }

    /// What DescribeProducers shows of each producer, by producer id.
    pub fn describe(&self) -> Vec<ProducerSummary> {
        let mut all: Vec<ProducerSummary> = self
            .producers
            .iter()
            .map(|(id, e)| ProducerSummary {
                producer_id: *id,
                epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                coordinator_epoch: e.coordinator_epoch,
                txn_first_offset: e.txn_first_offset.unwrap_or(-1),
                last_timestamp: e.last_timestamp,
            })
            .collect();
        all.sort_by_key(|p| p.producer_id);
        all
    }

    /// The first offset of the oldest open transaction, if any is open.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producers.values().filter_map(|e| e.txn_first_offset).min()
    }

    /// Write the snapshot for a log whose end offset is `next_offset`.
    pub fn write_snapshot(&self, dir: &Path, next_offset: i64) -> io::Result<()> {
        crate::util::fs::write_atomically(&dir.join(SNAPSHOT_FILE), &self.encode(next_offset))
    }

    /// Keep the state as of `offset` (where a new segment begins) in its own
    /// file, `{offset:020}.snapshot`, besides the latest one: a log truncated
    /// below the latest (a follower cutting what a deposed leader wrote) starts
    /// again from the newest such file at or below the cut instead of from the
    /// log start. The newest [`KEPT_SNAPSHOTS`] are kept.
    pub fn write_offset_snapshot(&self, dir: &Path, offset: i64) -> io::Result<()> {
        crate::util::fs::write_atomically(&offset_snapshot_path(dir, offset), &self.encode(offset))?;
        let offsets = offset_snapshots(dir)?;
        for old in offsets.iter().rev().skip(KEPT_SNAPSHOTS) {
            remove_file_if_present(&offset_snapshot_path(dir, *old))?;
        }
        Ok(())
    }

    fn encode(&self, next_offset: i64) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&SNAPSHOT_MAGIC);
        out.extend_from_slice(&next_offset.to_be_bytes());
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        for (pid, e) in &self.producers {
            out.extend_from_slice(&pid.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            out.extend_from_slice(&e.txn_first_offset.unwrap_or(-1).to_be_bytes());
            out.extend_from_slice(&e.last_timestamp.to_be_bytes());
            out.push(e.batches.len() as u8);
            for b in &e.batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.base_offset.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// The newest intact snapshot taken at or below `offset` (the latest file or
    /// an offset one), with the offset it was taken at.
    pub fn newest_snapshot_at_or_below(dir: &Path, offset: i64) -> Option<(i64, ProducerStateManager)> {
        let latest = Self::snapshot_offset(dir)
            .filter(|o| *o <= offset)
            .and_then(|o| Some((o, Self::read_snapshot(dir, o)?)));
        let by_offset = offset_snapshots(dir)
            .unwrap_or_default()
            .into_iter()
            .rev()
            .filter(|o| *o <= offset)
            .find_map(|o| {
                let raw = std::fs::read(offset_snapshot_path(dir, o)).ok()?;
                Some((o, Self::decode(&raw, o)?))
            });
        match (latest, by_offset) {
            (Some(a), Some(b)) => Some(if a.0 >= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// Remove every snapshot taken past `offset` (the log was cut there).
    pub fn remove_snapshots_after(dir: &Path, offset: i64) -> io::Result<()> {
        if Self::snapshot_offset(dir).is_some_and(|o| o > offset) {
            remove_file_if_present(&dir.join(SNAPSHOT_FILE))?;
        }
        for o in offset_snapshots(dir)?.into_iter().filter(|o| *o > offset) {
            remove_file_if_present(&offset_snapshot_path(dir, o))?;
        }
        Ok(())
    }

    /// Remove every snapshot (`strom log check --repair`: state is rebuilt).
    pub fn remove_snapshots(dir: &Path) -> io::Result<()> {
        remove_file_if_present(&dir.join(SNAPSHOT_FILE))?;
        for o in offset_snapshots(dir)? {
            remove_file_if_present(&offset_snapshot_path(dir, o))?;
        }
        Ok(())
    }

    /// The log end offset an intact snapshot was taken at (a clean shutdown's).
    pub fn snapshot_offset(dir: &Path) -> Option<i64> {
        let raw = std::fs::read(dir.join(SNAPSHOT_FILE)).ok()?;
        let (body, crc) = raw.split_at(raw.len().checked_sub(4)?);
        let fields = body
            .strip_prefix(&SNAPSHOT_MAGIC)
            .or_else(|| body.strip_prefix(&SNAPSHOT_MAGIC_V2))
            .unwrap_or(body);
        let offset = ByteReader::new(fields).i64()?;
        (crc32c::crc32c(body).to_be_bytes() == crc).then_some(offset)
    }

    /// Load the snapshot if it exists, is intact and was taken at `next_offset`.
    pub fn read_snapshot(dir: &Path, next_offset: i64) -> Option<ProducerStateManager> {
        let raw = std::fs::read(dir.join(SNAPSHOT_FILE)).ok()?;
        Self::decode(&raw, next_offset)
    }

    fn decode(raw: &[u8], next_offset: i64) -> Option<ProducerStateManager> {
        let (body, crc) = raw.split_at(raw.len().checked_sub(4)?);
        if crc32c::crc32c(body).to_be_bytes() != crc {
            return None;
        }
        // (transaction fields, last timestamp) by layout.
        let (with_txns, with_timestamp, body) = match (
            body.strip_prefix(&SNAPSHOT_MAGIC),
            body.strip_prefix(&SNAPSHOT_MAGIC_V2),
        ) {
            (Some(rest), _) => (true, true, rest),
            (None, Some(rest)) => (true, false, rest),
            (None, None) => (false, false, body),
        };
        let mut r = ByteReader::new(body);
        if r.i64()? != next_offset {
            return None;
        }
        let mut producers = HashMap::new();
        for _ in 0..r.u32()? {
            let pid = r.i64()?;
            let epoch = r.i16()?;
            let (coordinator_epoch, txn_first_offset) = match with_txns {
                true => (r.i32()?, Some(r.i64()?).filter(|o| *o >= 0)),
                false => (-1, None),
            };
            let last_timestamp = if with_timestamp { r.i64()? } else { -1 };
            let n = r.u8()?;
            let mut batches = VecDeque::new();
            for _ in 0..n {
                batches.push_back(BatchMeta {
                    first_seq: r.i32()?,
                    last_seq: r.i32()?,
                    base_offset: r.i64()?,
                });
            }
            producers.insert(
                pid,
                ProducerEntry {
                    epoch,
                    batches,
                    coordinator_epoch,
                    txn_first_offset,
                    last_timestamp,
                },
            );
        }
        Some(ProducerStateManager {
            producers,
            guards: HashMap::new(),
        })
    }
}

#[cfg(test)]
#[path = "producer_state_tests.rs"]
mod tests;
