//! One partition's log: its segments, offsets, idempotent-producer state, flushing
//! and the fetchers waiting for new data.
//!
//! Offsets (Kafka's names): `log_start_offset` is the first offset still held,
//! `log_end_offset` one past the last appended. With a single replica the
//! `high_watermark` (what consumers may read) equals the log end offset, and with no
//! transactions so does the `last_stable_offset`.
//!
//! Appends happen under a per-partition mutex; reads take it only to find the
//! segment and a starting position, then read the file without it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::epoch_cache::LeaderEpochCache;
use super::log_validator;
use super::producer_state::{AppendOrigin, CompletedTxn, ProducerStateManager, SequenceCheck, VerificationGuard};
use super::segment::{self, ActiveSegment, LogSegment, Open, SealedSegment};
use super::txn_index::AbortedTxn;
use crate::error::{Error, Result};
use crate::log::config::LogConfig;
use crate::record::batch::{self, BatchHeader};
use crate::record::control::{self, Marker};
use crate::record::file_slice::FileSlice;
use crate::record::records::{self, Walk};
pub(crate) use files::list_segments;
use load::{assign_epoch, load};
use txn::aborted_entry;

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record (the original one for a retried duplicate).
    pub base_offset: i64,
    pub log_start_offset: i64,
    /// The log end offset after the append.
    pub log_end_offset: i64,
    /// `log.flush.interval.messages` has been reached: the caller should flush.
    pub flush_due: bool,
    /// The broker's timestamp for the batch with message.timestamp.type=LogAppendTime, else −1.
    pub log_append_time: i64,
}

pub struct UnifiedLog {
    pub topic: String,
    pub index: i32,
    dir: PathBuf,
    /// The topic's effective config; replaced when the topic's configs change.
    config: std::sync::RwLock<Arc<LogConfig>>,
    log: Mutex<PartitionLog>,
    /// Serialises fsyncs; whoever holds it syncs everything appended so far, so one
    /// fsync covers every batch that arrived while the previous one ran.
    flush_lock: tokio::sync::Mutex<()>,
    /// Held by whoever changes the active segment (an append across its write, a
    /// roll, closing), always taken before `log`: the write itself happens
    /// without `log`, so reads of the partition go on meanwhile.
    append_lock: Mutex<()>,
    flushed_offset: AtomicI64,
    /// Files of deleted segments (renamed `*.deleted`) and when they go
    /// (`file.delete.delay.ms`).
    retired: Mutex<Vec<(PathBuf, i64)>>,
    /// fsync rounds performed, for tests and metrics.
    fsyncs: AtomicU64,
}

struct PartitionLog {
    sealed: BTreeMap<i64, SealedSegment>,
    active: ActiveSegment,
    log_start_offset: i64,
    producers: ProducerStateManager,
    /// Base offsets of sealed segments not yet fsynced. (Their base offsets, not
    /// file handles: a handle kept per roll until the next fsync ran out of file
    /// descriptors under acks=0/1 traffic, and kept deleted segments' space.)
    unflushed_segments: Vec<i64>,
    /// A segment file was created since the last directory fsync.
    dir_dirty: bool,
    unflushed_messages: u64,
    last_flush_ms: i64,
    /// Segments with a base offset below this have been compacted.
    cleaned_up_to: i64,
    /// Where each leader epoch began (`leader-epoch-checkpoint`).
    epochs: LeaderEpochCache,
    /// The high watermark when it is replicated (another broker holds a
    /// replica); None on a single replica, whose high watermark is its log end.
    replicated_hw: Option<i64>,
}

impl PartitionLog {
    fn log_end_offset(&self) -> i64 {
        self.active.next_offset()
    }

    /// What consumers may read up to: the log end on a single replica, else the
    /// offset every in-sync replica has, never past this log's end nor below
    /// its start.
    fn high_watermark(&self) -> i64 {
        let leo = self.log_end_offset();
        self.replicated_hw
            .map_or(leo, |hw| hw.min(leo).max(self.log_start_offset))
    }

    /// Segments in offset order, sealed first.
    fn segments(&self) -> impl Iterator<Item = &LogSegment> {
        self.sealed.values().map(|s| &**s).chain(std::iter::once(&*self.active))
    }

    /// The segment holding `offset`, and the base offset of the one after it.
    fn segment_for(&self, offset: i64) -> (&LogSegment, Option<i64>) {
        if offset >= self.active.base_offset {
            return (&self.active, None);
        }
        let (_, seg) = self
            .sealed
            .range(..=offset)
            .next_back()
            .or_else(|| self.sealed.iter().next())
            .expect("offset below the active segment implies sealed segments");
        let next = self
            .sealed
            .range(seg.base_offset + 1..)
            .next()
            .map(|(b, _)| *b)
            .unwrap_or(self.active.base_offset);
        (seg, Some(next))
    }

    /// Handles to fsync every sealed segment not yet fsynced (deleted ones need
    /// none), and the base offsets they are for. The segments stay counted as
    /// unflushed until [`Self::flushed`] says the fsync worked: a failure (no file
    /// descriptors left, an I/O error) must not let a later flush skip them.
    fn unflushed_files(&self) -> io::Result<(Vec<File>, Vec<i64>)> {
        let mut files = Vec::new();
        for base in &self.unflushed_segments {
            if let Some(seg) = self.sealed.get(base) {
                files.extend(seg.sync_handles()?);
            }
        }
        Ok((files, self.unflushed_segments.clone()))
    }

    /// The segments of `bases` are fsynced.
    fn flushed(&mut self, bases: &[i64]) {
        self.unflushed_segments.retain(|b| !bases.contains(b));
    }

    /// Seal the active segment and start a new one (`preallocate` bytes reserved
    /// for it).
    fn roll(&mut self, dir: &Path, preallocate: u64) -> io::Result<()> {
        let next = ActiveSegment::create(dir, self.log_end_offset())?;
        next.preallocate(preallocate);
        // Producer state as of the new segment's start, for recovery after a
        // crash and for a truncation into this segment (best effort: without it
        // the state is rebuilt from an older snapshot or the log start).
        if let Err(e) = self.producers.write_offset_snapshot(dir, next.base_offset) {
            tracing::warn!(dir = %dir.display(), error = %e, "could not snapshot producer state at a roll");
        }
        let old = std::mem::replace(&mut self.active, next);
        let sealed = old.seal();
        self.unflushed_segments.push(sealed.base_offset);
        self.sealed.insert(sealed.base_offset, sealed);
        self.dir_dirty = true;
        Ok(())
    }
}

impl UnifiedLog {
    /// Open the partition in `dir`, creating an empty log if there is none. After an
    /// unclean shutdown (`clean == false`) the active segment is recovered batch by
    /// batch and its torn tail truncated.
    pub fn open(
        topic: &str,
        index: i32,
        dir: &Path,
        config: LogConfig,
        clean: bool,
        now_ms: i64,
    ) -> Result<UnifiedLog> {
        std::fs::create_dir_all(dir)?;
        let log = load(dir, &config, clean, now_ms)?;
        let leo = log.log_end_offset();
        Ok(UnifiedLog {
            topic: topic.to_string(),
            index,
            dir: dir.to_path_buf(),
            config: std::sync::RwLock::new(Arc::new(config)),
            log: Mutex::new(log),
            flush_lock: tokio::sync::Mutex::new(()),
            append_lock: Mutex::new(()),
            flushed_offset: AtomicI64::new(if clean { leo } else { 0 }),
            retired: Mutex::new(Vec::new()),
            fsyncs: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, PartitionLog> {
        // A panic while holding the lock cannot leave a half-written batch visible
        // (the end offset moves last), so a poisoned lock is still usable.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The effective config of this partition's topic.
    pub fn config(&self) -> Arc<LogConfig> {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_config(&self, config: LogConfig) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }

    pub fn log_end_offset(&self) -> i64 {
        self.lock().log_end_offset()
    }

    pub fn high_watermark(&self) -> i64 {
        self.lock().high_watermark()
    }

    /// Replicate this partition: from now on its high watermark is what the
    /// replication protocol says (starting at `hw`, the last checkpointed one),
    /// not its log end. Returns the high watermark taken.
    pub fn replicate_high_watermark(&self, hw: i64) -> i64 {
        let mut log = self.lock();
        log.replicated_hw = Some(hw);
        log.high_watermark()
    }

    /// The high watermark if it is replicated (None on a single replica), for
    /// the `replication-offset-checkpoint`.
    pub fn replicated_high_watermark(&self) -> Option<i64> {
        let log = self.lock();
        log.replicated_hw.map(|_| log.high_watermark())
    }

    /// Set a replicated high watermark (a follower takes the leader's, capped
    /// by its own log end). Returns the high watermark now in force.
    pub fn update_high_watermark(&self, hw: i64) -> i64 {
        let mut log = self.lock();
        if log.replicated_hw.is_some() {
            log.replicated_hw = Some(hw);
        }
        log.high_watermark()
    }

    /// Raise a replicated high watermark to `hw` if that is higher (a leader,
    /// as its in-sync followers catch up; it never goes back). Whether it moved.
    pub fn maybe_increment_high_watermark(&self, hw: i64) -> bool {
        let mut log = self.lock();
        let before = log.high_watermark();
        if log.replicated_hw.is_none() || hw <= before {
            return false;
        }
        log.replicated_hw = Some(hw);
        log.high_watermark() > before
    }

    pub fn log_start_offset(&self) -> i64 {
        self.lock().log_start_offset
    }

    /// The leader epoch this log's next batch is written at: the latest it has
    /// recorded (0 until a leader change).
    pub fn latest_epoch(&self) -> i32 {
        self.lock().epochs.latest_epoch().unwrap_or(0)
    }

    /// Start leader epoch `epoch` at the log end: this broker leads from here
    /// on, and its batches carry that epoch (Kafka's become-leader step). An
    /// epoch not newer than the latest changes nothing.
    pub fn start_leader_epoch(&self, epoch: i32) -> io::Result<()> {
        let _appending = self.append_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut log = self.lock();
        if log.epochs.latest_epoch().is_some_and(|latest| latest >= epoch) {
            return Ok(());
        }
        let end = log.log_end_offset();
        log.epochs.assign(epoch, end).map(|_| ())
    }

    /// Where epoch `epoch` ended in this log, for OffsetForLeaderEpoch and a
    /// follower's truncation: (the largest epoch ≤ it, the start of the next one
    /// or the log end); (−1, −1) when undefined.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let log = self.lock();
        log.epochs.end_offset_for(epoch, log.log_end_offset())
    }

    /// The epoch of the leader that wrote `offset`, if known.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.lock().epochs.epoch_for_offset(offset)
    }

    /// (log_start_offset, high_watermark) read together.
    pub fn offsets(&self) -> (i64, i64) {
        let log = self.lock();
        (log.log_start_offset, log.high_watermark())
    }

    /// Append one record batch as the client sent it: validate it, check the
    /// producer's sequence, assign offsets, write it, wake waiting fetches.
    /// A transactional batch that opens a transaction here needs
    /// [`UnifiedLog::append_verified`].
    pub fn append(&self, batch: &[u8], now_ms: i64) -> Result<AppendInfo> {
        self.append_verified(batch, None, now_ms)
    }

    /// [`UnifiedLog::append`] of a batch verified with `guard`.
    pub fn append_verified(&self, batch: &[u8], guard: Option<VerificationGuard>, now_ms: i64) -> Result<AppendInfo> {
        let config = self.config();
        let batch = log_validator::validate(&self.topic, self.index, &config, batch, now_ms)?;
        self.append_validated(&config, &batch, None, AppendOrigin::Client, guard, now_ms)
    }

    /// Append a coordinator's transactional batch (offsets committed in a
    /// transaction, verified with `guard`): fenced by the producer's epoch, but
    /// carrying no sequence of its own, so no sequence is checked.
    pub fn append_as_coordinator(&self, batch: &[u8], guard: VerificationGuard, now_ms: i64) -> Result<AppendInfo> {
        let config = self.config();
        let batch = log_validator::validate(&self.topic, self.index, &config, batch, now_ms)?;
        self.append_validated(&config, &batch, None, AppendOrigin::Coordinator, Some(guard), now_ms)
    }

    /// Append a batch that passed validation (`marker`: what it carries, if it is
    /// a transaction marker; `origin`: who wrote it; `guard`: what it was
    /// verified with, if it was).
    pub(super) fn append_validated(
        &self,
        config: &LogConfig,
        batch: &[u8],
        marker: Option<Marker>,
        origin: AppendOrigin,
        guard: Option<VerificationGuard>,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        // The broker edits only the header: a copy of it is edited and written
        // before the client's records.
        let Some((head, rest)) = batch.split_first_chunk::<{ batch::BATCH_HEADER_LEN }>() else {
            return Err(Error::CorruptMessage("record batch is truncated"));
        };
        let mut head = *head;
        let log_append_time = if config.log_append_time {
            batch::set_log_append_time(&mut head, rest, now_ms);
            now_ms
        } else {
            -1
        };
        let header = BatchHeader::parse(&head).ok_or(Error::CorruptMessage("record batch is truncated"))?;
        // Appends are serialised by `append_lock`, and the partition's state is
        // locked only around the write, not across it: fetches read while the
        // `pwrite` runs, and see the batch once it is accounted for.
        let _appending = self.append_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut log = self.lock();
        if let Some(marker) = marker {
            log.producers.check_marker(header.producer_id, marker)?;
        }
        if let SequenceCheck::Duplicate(base_offset) = log.producers.check(&header, origin, guard)? {
            return Ok(AppendInfo {
                base_offset,
                log_start_offset: log.log_start_offset,
                log_end_offset: log.log_end_offset(),
                flush_due: false,
                log_append_time,
            });
        }
        let base_offset = log.log_end_offset();
        if self.should_roll(config, &log.active, batch.len(), &header, base_offset, now_ms) {
            log.roll(&self.dir, roll::preallocation(config))?;
        }
        // The batch carries the epoch of the leader that wrote it: the latest
        // this log knows (0 until a leader change says otherwise).
        let leader_epoch = log.epochs.latest_epoch().unwrap_or(0);
        batch::assign_offsets(&mut head, base_offset, leader_epoch);
        let header = BatchHeader {
            base_offset,
            partition_leader_epoch: leader_epoch,
            ..header
        };
        let write = log.active.next_write()?;
        drop(log);
        let written = write.write(&head, rest);
        let mut log = self.lock();
        if let Err((e, cut_off)) = written {
            log.active.write_failed(cut_off);
            return Err(e.into());
        }
        let len = batch.len();
        log.active
            .appended(&write, len, &header, config.index_interval_bytes, now_ms.max(0) as u64);
        if let Some(txn) = log.producers.update(&header, marker) {
            if let Some(entry) = aborted_entry(&log.producers, txn) {
                log.active.add_aborted_txn(entry)?;
            }
        }
        log.unflushed_messages += header.records_count as u64;
        assign_epoch(&mut log.epochs, &header);
        let info = AppendInfo {
            base_offset,
            log_start_offset: log.log_start_offset,
            log_end_offset: log.log_end_offset(),
            flush_due: log.unflushed_messages >= config.flush_interval_messages.max(1) as u64,
            log_append_time,
        };
        drop(log);
        Ok(info)
    }

    /// Make everything up to `offset` durable. Concurrent callers share fsyncs:
    /// each one that gets the lock syncs all data appended so far.
    pub async fn flush_to(self: &Arc<Self>, offset: i64, now_ms: i64) -> io::Result<()> {
        if self.flushed_offset.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        let _turn = self.flush_lock.lock().await;
        if self.flushed_offset.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        let (files, sealed, dir_dirty, leo) = {
            let mut log = self.lock();
            let (mut files, sealed) = log.unflushed_files()?;
            files.push(log.active.file().try_clone()?);
            let dirty = std::mem::take(&mut log.dir_dirty);
            log.unflushed_messages = 0;
            log.last_flush_ms = now_ms;
            (files, sealed, dirty, log.log_end_offset())
        };
        let dir = self.dir.clone();
        let synced = tokio::task::spawn_blocking(move || -> io::Result<()> {
            let started = std::time::Instant::now();
            for f in &files {
                f.sync_data()?;
            }
            if dir_dirty {
                crate::util::fs::sync_dir(&dir)?;
            }
            crate::util::fsync_timing::observed(started.elapsed().as_secs_f64());
            Ok(())
        })
        .await
        .map_err(io::Error::other)?;
        if let Err(e) = synced {
            // Nothing was made durable; the next flush must try the directory again.
            self.lock().dir_dirty |= dir_dirty;
            return Err(e);
        }
        self.lock().flushed(&sealed);
        self.flushed_offset.fetch_max(leo, Ordering::AcqRel);
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// How many fsync rounds this partition has done.
    pub fn fsync_count(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// Whether `flush.ms` has passed with data still unflushed.
    pub fn flush_overdue(&self, now_ms: i64) -> bool {
        let interval_ms = self.config().flush_interval_ms;
        if interval_ms == i64::MAX {
            return false;
        }
        let log = self.lock();
        log.log_end_offset() > self.flushed_offset.load(Ordering::Acquire)
            && now_ms.saturating_sub(log.last_flush_ms) >= interval_ms
    }

    /// Clean shutdown: seal the active segment's indexes, fsync everything, and
    /// snapshot the producer state so it survives the restart.
    ///
    /// Every step is tried even when an earlier one fails (a full disk must not stop
    /// a shutdown half-way); the first error is returned, and the caller then leaves
    /// no clean-shutdown marker, so the next start recovers this partition.
    pub fn close(&self) -> io::Result<()> {
        let _appending = self.append_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut log = self.lock();
        let mut first_error = None;
        let mut note = |what: &str, r: io::Result<()>| {
            if let Err(e) = r {
                tracing::error!(dir = %self.dir.display(), error = %e, "{what} failed during shutdown");
                first_error.get_or_insert(e);
            }
        };
        match log.unflushed_files() {
            Ok((files, sealed)) => {
                let mut synced = true;
                for f in &files {
                    let r = f.sync_data();
                    synced &= r.is_ok();
                    note("fsync of a sealed segment", r);
                }
                if synced {
                    log.flushed(&sealed);
                }
            }
            Err(e) => note("opening sealed segments for fsync", Err(e)),
        }
        note("closing the active segment", log.active.close());
        let leo = log.log_end_offset();
        note(
            "the producer-state snapshot",
            log.producers.write_snapshot(&self.dir, leo),
        );
        match first_error {
            Some(e) => Err(e),
            None => {
                self.flushed_offset.fetch_max(leo, Ordering::AcqRel);
                Ok(())
            }
        }
    }

    /// Number of segments (sealed and active).
    pub fn segment_count(&self) -> usize {
        self.lock().sealed.len() + 1
    }
}

mod cleaner;
mod files;
mod follower;
mod load;
mod read;
mod retention;
mod roll;
mod truncate;
mod txn;

pub use cleaner::CleanStats;
pub use follower::FollowerAppendInfo;

#[cfg(test)]
mod config_tests;
#[cfg(test)]
mod epoch_tests;
#[cfg(test)]
mod replication_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_tests;
