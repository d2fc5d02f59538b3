//! The log cleaner: compaction of `cleanup.policy=compact` topics, as Kafka does it.
//!
//! Once the share of the log not yet compacted reaches `min.cleanable.dirty.ratio`,
//! or its oldest dirty record is older than `max.compaction.lag.ms` (on compacted
//! topics the active segment also rolls by then, so its records become cleanable),
//! the sealed segments older than `min.compaction.lag.ms` are rewritten keeping,
//! per key, only the record with the greatest offset. Tombstones (null values) are
//! dropped once older than `delete.retention.ms`. Offsets never change (gaps are
//! left); batches keep their codec, base offset, last offset delta and producer
//! fields; records are copied as their original bytes. Only data below the last
//! stable offset is cleaned; records of aborted transactions are dropped (they
//! are no value of their key). A transaction marker goes once no batch of its
//! transaction is left before it and it is older than `delete.retention.ms`
//! (Kafka's delete horizon, which gives a reader time to see it): an ABORT
//! marker after its records were dropped (with its `.txnindex` entry), a COMMIT
//! marker after compaction emptied its batches.
//!
//! Swapping a cleaned segment in is crash-safe, in Kafka's steps: the new file is
//! written as `{base}.log.cleaned`, fsynced and renamed to `{base}.log.swap`; then
//! the old segment's files are deleted and the `.swap` renamed to `{base}.log`. At
//! start a left-over `.cleaned` is deleted (the old segment is intact) and a
//! left-over `.swap` completes the swap (see [`recover_swaps`]).

use std::collections::{HashMap, HashSet};
use std::io::Write;

use super::*;
use crate::record::control::{self, MarkerType};
use crate::record::records::{self, Walk};

/// What one cleaning pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanStats {
    pub segments: usize,
    pub records_kept: usize,
    pub records_dropped: usize,
}

/// One sealed segment as the cleaner sees it.
struct Cleanable {
    base: i64,
    file: Arc<File>,
    size: u64,
}

fn path_with(dir: &Path, base: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base:020}.log{suffix}"))
}

/// Finish or undo swaps interrupted by a crash, before the segments are opened.
pub(super) fn recover_swaps(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if name.ends_with(".log.cleaned") {
            tracing::warn!(file = %path.display(), "removing an unfinished cleaned segment");
            std::fs::remove_file(&path)?;
        } else if let Some(base) = name.strip_suffix(".log.swap").and_then(|b| b.parse::<i64>().ok()) {
            tracing::warn!(file = %path.display(), "completing an interrupted segment swap");
            for ext in ["index", "timeindex"] {
                let _ = std::fs::remove_file(segment::segment_path(dir, base, ext));
            }
            std::fs::rename(&path, segment::segment_path(dir, base, "log"))?;
        }
    }
    crate::util::fs::sync_dir(dir)
}

/// The batches of a segment file one at a time, each read on its own: memory is
/// one batch, never the segment.
struct BatchReader<'a> {
    file: &'a File,
    position: u64,
    size: u64,
}

impl BatchReader<'_> {
    fn next_batch(&mut self) -> Result<Option<(BatchHeader, Vec<u8>)>> {
        if self.position + batch::BATCH_HEADER_LEN as u64 > self.size {
            return Ok(None);
        }
        let mut head = [0u8; batch::BATCH_HEADER_LEN];
        self.file.read_exact_at(&mut head, self.position)?;
        let Some(h) = BatchHeader::parse(&head)
            .filter(|h| h.batch_length as usize >= batch::BATCH_HEADER_LEN - batch::LOG_OVERHEAD)
        else {
            return Err(Error::CorruptMessage("damaged batch in a segment being cleaned"));
        };
        if self.position + h.total_size() as u64 > self.size {
            return Err(Error::CorruptMessage("damaged batch in a segment being cleaned"));
        }
        let mut batch = vec![0u8; h.total_size()];
        self.file.read_exact_at(&mut batch, self.position)?;
        self.position += h.total_size() as u64;
        Ok(Some((h, batch)))
    }
}

fn batches(seg: &Cleanable) -> BatchReader<'_> {
    BatchReader {
        file: &seg.file,
        position: 0,
        size: seg.size,
    }
}

/// A key as the cleaner remembers it: 128 bits of SipHash, as Kafka keeps an MD5
/// of each key in its dedupe buffer, so the map costs the same per key whatever
/// the keys' sizes.
fn key_hash(key: &[u8]) -> u128 {
    use std::hash::{Hash, Hasher};
    let half = |seed: u64| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        key.hash(&mut h);
        h.finish() as u128
    };
    (half(0x5374_726f_6d21) << 64) | half(0x636c_6561_6e21)
}

/// Most keys the cleaner's map holds (Kafka: log.cleaner.dedupe.buffer.size,
/// 128 MiB, at 24 bytes a key); cleaning stops at the segment that fills it and
/// goes on from there the next time.
const MAX_KEYS: usize = (128 << 20) / 24;

impl UnifiedLog {
    /// Compact this partition if it is compacted and dirty enough.
    pub fn clean(&self, now_ms: i64) -> Result<CleanStats> {
        let config = self.config();
        if !config.cleanup_compact {
            return Ok(CleanStats::default());
        }
        let (segments, dirty_from, first_dirty_timestamp) = {
            let log = self.lock();
            let horizon = now_ms - config.min_compaction_lag_ms;
            // Only decided, replicated data: nothing at or past the first open
            // transaction or the high watermark.
            let stable = log
                .producers
                .first_unstable_offset()
                .unwrap_or(i64::MAX)
                .min(log.high_watermark());
            let segments: Vec<Cleanable> = log
                .sealed
                .values()
                .take_while(|s| s.max_timestamp() <= horizon && log.segment_end(s.base_offset) <= stable)
                .map(|s| Cleanable {
                    base: s.base_offset,
                    file: s.file(),
                    size: s.size(),
                })
                .collect();
            let first_dirty = log
                .sealed
                .range(log.cleaned_up_to..)
                .next()
                .map(|(_, s)| s.first_batch_timestamp());
            (segments, log.cleaned_up_to, first_dirty.unwrap_or(-1))
        };
        let total: u64 = segments.iter().map(|s| s.size).sum();
        let dirty: u64 = segments.iter().filter(|s| s.base >= dirty_from).map(|s| s.size).sum();
        // max.compaction.lag.ms: dirty records older than it are compacted now,
        // however small the dirty share (Kafka's "compaction delay").
        let overdue = config.max_compaction_lag_ms > 0
            && first_dirty_timestamp >= 0
            && first_dirty_timestamp < now_ms.saturating_sub(config.max_compaction_lag_ms);
        let dirty_enough = dirty as f64 >= config.min_cleanable_dirty_ratio * total as f64;
        if total == 0 || dirty == 0 || !(dirty_enough || overdue) {
            return Ok(CleanStats::default());
        }
        // Aborted transactions' records are no value of their key: they are
        // left out of the map and dropped (their markers are kept).
        let aborted = segments
            .first()
            .map(|first| self.aborted_transactions(first.base, i64::MAX))
            .unwrap_or_default();
        let is_aborted = |h: &BatchHeader| {
            h.is_transactional()
                && !h.is_control()
                && aborted.iter().any(|a| {
                    a.producer_id == h.producer_id && a.first_offset <= h.base_offset && h.base_offset <= a.last_offset
                })
        };
        // Pass 1: the latest offset of every key, over as many whole segments as
        // the map can hold.
        let max_uncompressed = records::max_uncompressed(config.message_max_bytes);
        let mut latest: HashMap<u128, i64> = HashMap::new();
        let mut covered = 0;
        for seg in &segments {
            let mut reader = batches(seg);
            while let Some((h, batch)) = reader.next_batch()? {
                if h.is_control() || is_aborted(&h) {
                    continue;
                }
                records::walk(&batch, &h, max_uncompressed, |r| {
                    if let Some(key) = r.key {
                        latest.insert(key_hash(key), h.base_offset + r.offset_delta as i64);
                    }
                    Ok(Walk::Continue)
                })?;
            }
            covered += 1;
            if latest.len() >= MAX_KEYS {
                break;
            }
        }
        // Pass 2: rewrite each segment with what survives, batch by batch.
        let tombstone_horizon = now_ms - config.delete_retention_ms;
        let mut stats = CleanStats::default();
        // Producers with a batch of their (committed) transaction kept since
        // their last marker: that marker must stay.
        let mut kept_in_txn: HashSet<i64> = HashSet::new();
        for seg in &segments[..covered] {
            let cleaned = path_with(&self.dir, seg.base, ".cleaned");
            let mut out = std::io::BufWriter::new(File::create(&cleaned)?);
            let mut reader = batches(seg);
            let mut dropped_aborts = Vec::new();
            while let Some((h, batch)) = reader.next_batch()? {
                if h.is_control() {
                    let marker = control::read_marker(&batch, &h);
                    let has_data = kept_in_txn.remove(&h.producer_id);
                    let past_horizon = h.max_timestamp < tombstone_horizon;
                    match marker.map(|m| m.kind) {
                        Some(MarkerType::Abort) if past_horizon => dropped_aborts.push(h.base_offset),
                        Some(MarkerType::Commit) if past_horizon && !has_data => {}
                        _ => out.write_all(&batch)?,
                    }
                    continue;
                }
                if is_aborted(&h) {
                    stats.records_dropped += h.records_count.max(0) as usize;
                    continue;
                }
                // The kept records' raw bytes, back to back: at most the batch's
                // (bounded) decompressed size.
                let (mut all, mut kept, mut plain) = (0, 0, Vec::new());
                records::walk(&batch, &h, max_uncompressed, |r| {
                    all += 1;
                    let offset = h.base_offset + r.offset_delta as i64;
                    let newest = r.key.and_then(|k| latest.get(&key_hash(k))) == Some(&offset);
                    let expired_tombstone = r.value.is_none() && h.max_timestamp < tombstone_horizon;
                    if newest && !expired_tombstone {
                        kept += 1;
                        plain.extend_from_slice(r.raw);
                    }
                    Ok(Walk::Continue)
                })?;
                stats.records_kept += kept;
                stats.records_dropped += all - kept;
                if kept > 0 && h.is_transactional() {
                    kept_in_txn.insert(h.producer_id);
                }
                if kept == all {
                    out.write_all(&batch)?;
                } else if kept > 0 {
                    out.write_all(&records::rebuild_from_raw(&h, &plain, kept)?)?;
                }
            }
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            self.swap_in(seg.base, &dropped_aborts)?;
            stats.segments += 1;
        }
        let segments = &segments[..covered];
        let mut log = self.lock();
        log.cleaned_up_to = segments.last().map(|s| s.base + 1).unwrap_or(log.cleaned_up_to);
        drop(log);
        tracing::info!(
            topic = %self.topic,
            partition = self.index,
            segments = stats.segments,
            kept = stats.records_kept,
            dropped = stats.records_dropped,
            "compacted"
        );
        Ok(stats)
    }

    /// Replace sealed segment `base` by its fsynced `.cleaned` file, crash-safely
    /// (see the module docs). `dropped_aborts`: the offsets of the ABORT markers
    /// left out, whose aborted transactions leave the index too.
    fn swap_in(&self, base: i64, dropped_aborts: &[i64]) -> Result<()> {
        let cleaned = path_with(&self.dir, base, ".cleaned");
        let swap = path_with(&self.dir, base, ".swap");
        std::fs::rename(&cleaned, &swap)?;
        crate::util::fs::sync_dir(&self.dir)?;
        let mut log = self.lock();
        let Some(old) = log.sealed.remove(&base) else {
            // Deleted by retention or DeleteRecords meanwhile: nothing to replace.
            drop(log);
            std::fs::remove_file(&swap)?;
            return Ok(());
        };
        // The old files make way for the new one (renamed `*.deleted`, or gone);
        // its aborted transactions stay with it, but for those whose marker went.
        let aborted: Vec<AbortedTxn> = old
            .aborted_txns()
            .iter()
            .filter(|a| !dropped_aborts.contains(&a.last_offset))
            .copied()
            .collect();
        retention::delete_files(self, vec![old], crate::util::clock::now_ms());
        std::fs::rename(&swap, segment::segment_path(&self.dir, base, "log"))?;
        crate::util::fs::sync_dir(&self.dir)?;
        let interval = self.config().index_interval_bytes;
        // A new file, indexes to build: read it all (which also checks it).
        let mut reopened = LogSegment::open(&self.dir, base, Open::Recover, interval, |_| {})?;
        for entry in aborted {
            reopened.add_aborted_txn(entry)?;
        }
        log.sealed.insert(base, SealedSegment::from_opened(reopened));
        Ok(())
    }
}
