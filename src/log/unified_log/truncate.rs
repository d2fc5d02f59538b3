//! Cutting a partition's log from the end: what a follower does when its log
//! has parted from the new leader's (the suffix was written by a leader whose
//! writes did not survive, so nobody acknowledged it as replicated), and
//! starting over at another offset when the leader's log no longer overlaps.
//!
//! Only what lies above the high watermark is ever cut, which no consumer has
//! been given. The cut files are shortened or removed, the snapshots taken past
//! the cut go, and the partition is then loaded as after a crash: the new last
//! segment is recovered batch by batch (indexes, aborted transactions), producer
//! state is rebuilt from the newest snapshot at or below the cut, and the leader
//! epoch cache loses the epochs that began past it.

use super::*;

impl UnifiedLog {
    /// Remove every batch holding an offset at or past `offset`: a batch that
    /// straddles it goes whole (the log end becomes its base offset). Returns the
    /// new log end offset. A cut at or below the log start empties the log and
    /// starts it at `offset` ([`UnifiedLog::truncate_fully_and_start_at`]).
    pub fn truncate_to(&self, offset: i64, now_ms: i64) -> Result<i64> {
        let _appending = self.append_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut log = self.lock();
        let leo = log.log_end_offset();
        if offset >= leo {
            // Nothing to cut, but an epoch this replica began as leader without
            // writing a batch in it ends here: the new leader's batches from
            // here on belong to the epochs the new leader says (Kafka does the
            // same).
            log.epochs.truncate_from_end(leo)?;
            return Ok(leo);
        }
        if offset <= log.log_start_offset {
            self.start_over(&mut log, offset, now_ms)?;
            return Ok(offset);
        }
        let Some((seg_base, position, cut)) = log.find_cut(offset)? else {
            return Ok(leo);
        };
        tracing::info!(topic = %self.topic, partition = self.index, from = leo, to = cut, "truncating the log");
        // Segments wholly past the cut go; the one holding it is shortened.
        for seg in log.segments().filter(|s| s.base_offset > seg_base) {
            seg.delete_files()?;
        }
        let file = log.segments().find(|s| s.base_offset == seg_base).map(|s| s.file());
        if let Some(file) = file {
            file.set_len(position)?;
            file.sync_all()?;
        }
        ProducerStateManager::remove_snapshots_after(&self.dir, cut)?;
        crate::util::fs::sync_dir(&self.dir)?;
        self.reload(&mut log, cut, now_ms)?;
        Ok(log.log_end_offset())
    }

    /// Empty the log and start it at `offset` (Kafka's `truncateFullyAndStartAt`):
    /// a follower whose log is wholly behind the leader's log start, or wholly
    /// past what the leader has.
    pub fn truncate_fully_and_start_at(&self, offset: i64, now_ms: i64) -> Result<()> {
        let _appending = self.append_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut log = self.lock();
        self.start_over(&mut log, offset, now_ms)
    }

    fn start_over(&self, log: &mut PartitionLog, offset: i64, now_ms: i64) -> Result<()> {
        let offset = offset.max(0);
        tracing::info!(topic = %self.topic, partition = self.index, offset, "starting the log over");
        for seg in log.segments() {
            seg.delete_files()?;
        }
        ProducerStateManager::remove_snapshots(&self.dir)?;
        log.epochs.clear()?;
        crate::util::fs::write_atomically(&self.dir.join(retention::LOG_START_FILE), offset.to_string().as_bytes())?;
        ActiveSegment::create(&self.dir, offset)?;
        crate::util::fs::sync_dir(&self.dir)?;
        self.reload(log, offset, now_ms)
    }

    /// Load the partition again from its files (as after a crash), keeping what
    /// only memory knew: which sealed segments still need an fsync, and how far
    /// data is durable (never past `cut`).
    fn reload(&self, log: &mut PartitionLog, cut: i64, now_ms: i64) -> Result<()> {
        let config = self.config();
        let mut fresh = load(&self.dir, &config, false, now_ms)?;
        fresh.unflushed_segments = log
            .unflushed_segments
            .iter()
            .copied()
            .filter(|b| fresh.sealed.contains_key(b))
            .collect();
        fresh.unflushed_messages = log.unflushed_messages;
        fresh.last_flush_ms = log.last_flush_ms;
        fresh.cleaned_up_to = log.cleaned_up_to.min(cut);
        fresh.replicated_hw = log.replicated_hw;
        *log = fresh;
        self.flushed_offset.fetch_min(cut, Ordering::AcqRel);
        Ok(())
    }
}

impl PartitionLog {
    /// Where the log is cut to drop `offset`: the segment and file position of
    /// the first batch whose last offset is at or past it, and that batch's base
    /// offset (the new log end). None when no batch holds such an offset.
    fn find_cut(&self, offset: i64) -> io::Result<Option<(i64, u64, i64)>> {
        let (first, _) = self.segment_for(offset);
        let first = first.base_offset;
        for seg in self.segments().filter(|s| s.base_offset >= first) {
            let from = if seg.base_offset == first {
                seg.locate(offset)
            } else {
                0
            };
            if let Some(b) = segment::find_batch(&seg.file(), from, seg.size(), offset)? {
                return Ok(Some((seg.base_offset, b.position, b.header.base_offset)));
            }
        }
        Ok(None)
    }
}
