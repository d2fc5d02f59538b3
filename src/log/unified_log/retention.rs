//! Deleting from the front of a partition: DeleteRecords, and retention by time
//! and size. Both advance the log start offset, which is kept in the partition's
//! `log-start-offset` file (the offset as decimal text) when it moves past the
//! first segment's base offset; Fetch and ListOffsets honour it.

use super::*;

pub(super) const LOG_START_FILE: &str = "log-start-offset";

/// The persisted log start offset, if any.
pub(super) fn read_log_start(dir: &Path) -> Option<i64> {
    std::fs::read_to_string(dir.join(LOG_START_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl PartitionLog {
    /// Where the sealed segment at `base` ends in offset space: the next segment's
    /// base offset. (Not its own next offset: compaction may have removed its last
    /// records, or all of them, and the offsets up to the next segment are still
    /// its own — a log start among them must keep it, as Kafka decides by the next
    /// segment's base offset too.)
    pub(super) fn segment_end(&self, base: i64) -> i64 {
        self.sealed
            .range(base + 1..)
            .next()
            .map_or(self.active.base_offset, |(&next, _)| next)
    }

    /// Take the sealed segments that end at or before `offset` out of the log.
    fn take_segments_below(&mut self, offset: i64) -> Vec<SealedSegment> {
        let mut doomed = Vec::new();
        while let Some(&base) = self.sealed.keys().next() {
            if self.segment_end(base) > offset {
                break;
            }
            doomed.extend(self.sealed.remove(&base));
        }
        doomed
    }

    /// Move the log start offset forward to `offset` and persist it. Memory
    /// changes only once the file is written, so a failure leaves both as they were.
    fn advance_log_start(&mut self, dir: &Path, offset: i64) -> io::Result<()> {
        if offset > self.log_start_offset {
            crate::util::fs::write_atomically(&dir.join(LOG_START_FILE), offset.to_string().as_bytes())?;
            self.log_start_offset = offset;
            // Epochs wholly below the new start are gone (best effort: the
            // cache is rebuilt at the next start if this write fails).
            if let Err(e) = self.epochs.truncate_from_start(offset) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not write the leader epoch checkpoint");
            }
        }
        Ok(())
    }
}

/// Delete the files of segments the log no longer holds: after
/// `file.delete.delay.ms` (renamed `*.deleted` meanwhile, as Kafka does, so that
/// reads already under way finish), or at once when it is 0.
pub(super) fn delete_files(partition: &UnifiedLog, doomed: Vec<SealedSegment>, now_ms: i64) {
    let delay = partition.config().file_delete_delay_ms;
    for seg in doomed {
        let done = if delay <= 0 {
            seg.delete_files()
        } else {
            seg.retire_files().map(|paths| {
                let due = now_ms.saturating_add(delay);
                let mut retired = partition.retired.lock().unwrap_or_else(|e| e.into_inner());
                retired.extend(paths.into_iter().map(|p| (p, due)));
            })
        };
        if let Err(e) = done {
            tracing::error!(topic = %partition.topic, partition = partition.index, base = seg.base_offset, error = %e, "cannot delete segment files");
        }
    }
}

impl UnifiedLog {
    /// Delete the retired segment files whose `file.delete.delay.ms` is over.
    pub fn delete_retired(&self, now_ms: i64) {
        let due: Vec<PathBuf> = {
            let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
            let (due, later) = std::mem::take(&mut *retired)
                .into_iter()
                .partition(|(_, at)| *at <= now_ms);
            *retired = later;
            due.into_iter().map(|(p, _)| p).collect()
        };
        for path in due {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::error!(file = %path.display(), error = %e, "cannot delete a retired segment file");
                }
            }
        }
    }

    /// DeleteRecords: make `offset` (−1: the high watermark) the new log start
    /// offset, deleting segments that end before it. Returns the new low watermark.
    pub fn delete_records(&self, offset: i64) -> Result<i64> {
        let mut log = self.lock();
        let high_watermark = log.high_watermark();
        let target = if offset == -1 { high_watermark } else { offset };
        if target < 0 || target > high_watermark {
            return Err(Error::OffsetOutOfRange {
                offset,
                log_start_offset: log.log_start_offset,
                log_end_offset: high_watermark,
            });
        }
        log.advance_log_start(&self.dir, target)?;
        let low = log.log_start_offset;
        let doomed = log.take_segments_below(low);
        drop(log);
        delete_files(self, doomed, crate::util::clock::now_ms());
        Ok(low)
    }

    /// Delete whole segments past `retention.ms` (by their newest timestamp, or
    /// their file's modification time when no record has one) and,
    /// oldest first, while the partition exceeds `retention.bytes`. An expired
    /// active segment is rolled first, so it can go too. Returns how many segments
    /// were deleted.
    pub fn apply_retention(&self, now_ms: i64) -> Result<usize> {
        let config = self.config();
        if !config.cleanup_delete {
            return Ok(0);
        }
        // It may roll the active segment: no append may be writing to it.
        let _appending = self.append_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut log = self.lock();
        let expired = |seg: &LogSegment| {
            config.retention_ms >= 0 && !seg.is_empty() && seg.largest_timestamp() < now_ms - config.retention_ms
        };
        if log.sealed.values().all(|s| expired(s)) && expired(&log.active) {
            log.roll(&self.dir, super::roll::preallocation(&config))?;
        }
        let mut cut = log.log_start_offset;
        for seg in log.sealed.values() {
            // An empty sealed segment (compacted away) holds nothing to keep.
            if !(seg.is_empty() || expired(seg)) {
                break;
            }
            cut = cut.max(log.segment_end(seg.base_offset));
        }
        if config.retention_bytes >= 0 {
            let mut total: u64 = log.segments().map(|s| s.size()).sum();
            total -= log
                .sealed
                .values()
                .take_while(|s| log.segment_end(s.base_offset) <= cut)
                .map(|s| s.size())
                .sum::<u64>();
            let time_cut = cut;
            for seg in log
                .sealed
                .values()
                .skip_while(|s| log.segment_end(s.base_offset) <= time_cut)
            {
                if total.saturating_sub(seg.size()) < config.retention_bytes as u64 {
                    break;
                }
                total -= seg.size();
                cut = log.segment_end(seg.base_offset);
            }
        }
        // Nothing that is not replicated yet: a follower may still need it.
        cut = cut.min(log.high_watermark());
        // The first segment that stays, and so the new log start offset: persisted
        // before any segment leaves, so a failure (a full disk, no file
        // descriptors left) leaves every segment in the log, none orphaned on disk.
        let first_left = log
            .sealed
            .values()
            .find(|s| log.segment_end(s.base_offset) > cut)
            .map_or(log.active.base_offset, |s| s.base_offset);
        if log.sealed.keys().next().is_none_or(|&base| log.segment_end(base) > cut) {
            return Ok(0);
        }
        log.advance_log_start(&self.dir, first_left)?;
        let doomed = log.take_segments_below(cut);
        drop(log);
        let n = doomed.len();
        tracing::info!(topic = %self.topic, partition = self.index, segments = n, "retention deleted segments");
        delete_files(self, doomed, now_ms);
        Ok(n)
    }

    /// Bytes on disk in this partition's segments.
    pub fn size_bytes(&self) -> u64 {
        self.lock().segments().map(|s| s.size()).sum()
    }
}
