//! The log cleaner: compaction of `cleanup.policy=compact` topics, as Kafka does it.
//!
//! Once the share of the log not yet compacted reaches `min.cleanable.dirty.ratio`,
//! the sealed segments older than `min.compaction.lag.ms` are rewritten keeping,
//! per key, only the record with the greatest offset. Tombstones (null values) are
//! dropped once older than `delete.retention.ms`. Offsets never change (gaps are
//! left); batches keep their codec, base offset, last offset delta and producer
//! fields; records are copied as their original bytes.
//!
//! Swapping a cleaned segment in is crash-safe, in Kafka's steps: the new file is
//! written as `{base}.log.cleaned`, fsynced and renamed to `{base}.log.swap`; then
//! the old segment's files are deleted and the `.swap` renamed to `{base}.log`. At
//! start a left-over `.cleaned` is deleted (the old segment is intact) and a
//! left-over `.swap` completes the swap (see [`recover_swaps`]).

use std::collections::HashMap;
use std::io::Write;

use bytes::Bytes;

use super::*;
use crate::protocol::batch_records;

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
    crate::util::sync_dir(dir)
}

/// Every batch of a segment file, with its bytes.
fn batches_of(file: &File, size: u64) -> io::Result<Vec<(BatchHeader, Bytes)>> {
    let mut raw = vec![0u8; size as usize];
    file.read_exact_at(&mut raw, 0)?;
    let raw = Bytes::from(raw);
    let mut out = Vec::new();
    for (pos, h) in records::Batches::new(&raw) {
        out.push((h, raw.slice(pos..pos + h.total_size())));
    }
    Ok(out)
}

impl Partition {
    /// Compact this partition if it is compacted and dirty enough.
    pub fn clean(&self, now_ms: i64) -> Result<CleanStats> {
        let config = self.config();
        if !config.cleanup_compact {
            return Ok(CleanStats::default());
        }
        let (segments, dirty_from) = {
            let log = self.lock();
            let horizon = now_ms - config.min_compaction_lag_ms;
            let segments: Vec<Cleanable> = log
                .sealed
                .values()
                .take_while(|s| s.max_timestamp() <= horizon)
                .map(|s| Cleanable {
                    base: s.base_offset,
                    file: s.file(),
                    size: s.size(),
                })
                .collect();
            (segments, log.cleaned_up_to)
        };
        let total: u64 = segments.iter().map(|s| s.size).sum();
        let dirty: u64 = segments.iter().filter(|s| s.base >= dirty_from).map(|s| s.size).sum();
        if total == 0 || dirty == 0 || (dirty as f64) < config.min_cleanable_dirty_ratio * total as f64 {
            return Ok(CleanStats::default());
        }
        // Pass 1: the latest offset of every key in the cleanable range.
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        for seg in &segments {
            for (h, batch) in batches_of(&seg.file, seg.size)? {
                for r in batch_records::records(&batch, &h)? {
                    if let Some(key) = r.key {
                        latest.insert(key, h.base_offset + r.offset_delta as i64);
                    }
                }
            }
        }
        // Pass 2: rewrite each segment with what survives.
        let tombstone_horizon = now_ms - config.delete_retention_ms;
        let mut stats = CleanStats::default();
        for seg in &segments {
            let mut out: Vec<u8> = Vec::with_capacity(seg.size as usize);
            for (h, batch) in batches_of(&seg.file, seg.size)? {
                let all = batch_records::records(&batch, &h)?;
                let kept: Vec<_> = all
                    .iter()
                    .filter(|r| {
                        let offset = h.base_offset + r.offset_delta as i64;
                        let newest = r.key.as_ref().and_then(|k| latest.get(k)) == Some(&offset);
                        newest && !(r.value_is_null && h.max_timestamp < tombstone_horizon)
                    })
                    .cloned()
                    .collect();
                stats.records_kept += kept.len();
                stats.records_dropped += all.len() - kept.len();
                if kept.len() == all.len() {
                    out.extend_from_slice(&batch);
                } else if !kept.is_empty() {
                    out.extend_from_slice(&batch_records::rebuild(&h, &kept)?);
                }
            }
            self.swap_in(seg.base, &out)?;
            stats.segments += 1;
        }
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

    /// Replace sealed segment `base` by `data`, crash-safely (see the module docs).
    fn swap_in(&self, base: i64, data: &[u8]) -> Result<()> {
        let cleaned = path_with(&self.dir, base, ".cleaned");
        let swap = path_with(&self.dir, base, ".swap");
        {
            let mut f = File::create(&cleaned)?;
            f.write_all(data)?;
            f.sync_all()?;
        }
        std::fs::rename(&cleaned, &swap)?;
        crate::util::sync_dir(&self.dir)?;
        let mut log = self.lock();
        let Some(old) = log.sealed.remove(&base) else {
            // Deleted by retention or DeleteRecords meanwhile: nothing to replace.
            drop(log);
            std::fs::remove_file(&swap)?;
            return Ok(());
        };
        old.delete_files()?;
        std::fs::rename(&swap, segment::segment_path(&self.dir, base, "log"))?;
        crate::util::sync_dir(&self.dir)?;
        let interval = self.config().index_interval_bytes;
        let reopened = LogSegment::open(&self.dir, base, Open::Load, interval, |_| {})?;
        log.sealed.insert(base, SealedSegment::from_opened(reopened));
        Ok(())
    }
}
