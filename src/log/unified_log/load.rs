//! Loading a partition from its directory: the segments (the last one
//! recovered batch by batch after a crash), producer state from the newest
//! snapshot brought forward, the leader epoch cache checked against the batches,
//! the log start offset. Used at start and again after a truncation.

use super::files::{remove_retired, report_gaps};
use super::*;

/// Producer state as of `offset`, the base of the first segment not in `sealed`:
/// the newest snapshot at or below it, brought forward through the batches of
/// the sealed segments from there (from the log start without one).
pub(super) fn producers_at(
    dir: &Path,
    sealed: &BTreeMap<i64, SealedSegment>,
    offset: i64,
) -> io::Result<ProducerStateManager> {
    let (from, mut producers) = ProducerStateManager::newest_snapshot_at_or_below(dir, offset).unwrap_or_default();
    if from == offset {
        return Ok(producers);
    }
    for seg in sealed.values().filter(|s| s.next_offset() > from) {
        segment::scan(&seg.file(), 0, seg.size(), segment::Check::Framing, |b| {
            if b.header.base_offset >= from {
                producers.update(&b.header, b.marker);
            }
        })?;
    }
    Ok(producers)
}

/// Record in `epochs` the epoch of a batch in the log (a new epoch starts at
/// its base offset).
pub(super) fn assign_epoch(epochs: &mut LeaderEpochCache, header: &BatchHeader) {
    epoch_write(
        epochs
            .assign(header.partition_leader_epoch, header.base_offset)
            .map(|_| ()),
    );
}

/// The epoch cache in memory is right whether or not its checkpoint file could
/// be written (a full disk): the file is a summary of the batches, trimmed and
/// rebuilt from them at every start, so a failed write is reported, not fatal.
pub(super) fn epoch_write(written: io::Result<()>) {
    if let Err(e) = written {
        tracing::warn!(error = %e, "could not write the leader epoch checkpoint");
    }
}

/// The partition's state as its directory holds it (see [`UnifiedLog::open`]).
pub(super) fn load(dir: &Path, config: &LogConfig, clean: bool, now_ms: i64) -> Result<PartitionLog> {
    cleaner::recover_swaps(dir)?;
    remove_retired(dir)?;
    let bases = list_segments(dir)?;
    let interval = config.index_interval_bytes;
    let mut producers = ProducerStateManager::default();
    let mut epochs = LeaderEpochCache::open(dir)?;
    let mut recovered: Vec<BatchHeader> = Vec::new();
    let mut sealed = BTreeMap::new();
    let active = match bases.split_last() {
        None => {
            let first = ActiveSegment::create(dir, 0)?;
            first.preallocate(roll::preallocation(config));
            first
        }
        Some((&last, older)) => {
            for &base in older {
                let seg = LogSegment::open(dir, base, Open::Load, interval, |_| {})?;
                sealed.insert(base, SealedSegment::from_opened(seg));
            }
            // A damaged sealed segment ends where the next one begins.
            let mut next_base = last;
            for seg in sealed.values_mut().rev() {
                seg.limit_next_offset(next_base);
                if seg.damaged_at().is_some() {
                    seg.assume_next_offset(next_base);
                }
                next_base = seg.base_offset;
            }
            let mode = if clean { Open::Load } else { Open::Recover };
            // After a crash, producer state is the snapshot taken where the
            // active segment begins (at its roll, or the clean start before
            // it) — or an older one brought forward through the sealed
            // segments — brought up to date by the batches recovery finds.
            if !clean {
                producers = producers_at(dir, &sealed, last)?;
            }
            // After a clean shutdown, producer state comes from the snapshot
            // taken then (below), unless damage makes this a recovery after all.
            let mut recovered_after_damage = false;
            let mut aborted = Vec::new();
            let mut seg = LogSegment::open(dir, last, mode, interval, |b| {
                recovered.push(b.header);
                if let Some(txn) = producers.update(&b.header, b.marker) {
                    aborted.extend(aborted_entry(&producers, txn));
                }
            })?;
            if !clean {
                // The aborted transactions of the recovered segment, from its
                // markers (the index may have missed the last ones).
                seg.clear_aborted_txns()?;
                for entry in aborted {
                    seg.add_aborted_txn(entry)?;
                }
            }
            if clean {
                // Nothing past the end offset recorded at the clean shutdown.
                if let Some(end) = ProducerStateManager::snapshot_offset(dir) {
                    seg.limit_next_offset(end.max(last));
                }
            }
            if seg.damaged_at().is_none() && !seg.is_empty() && !seg.fully_verified() {
                // Loaded after a clean shutdown without reading all of it: it
                // may hold damage not seen yet. Appending after that would put
                // new records where a later crash recovery, which cuts at the
                // first bad batch, would take them away. So the log goes on in
                // a new segment, and the old one is only ever read.
                let end = seg.next_offset();
                sealed.insert(last, SealedSegment::from_opened(seg));
                seg = ActiveSegment::create(dir, end)?.into_inner();
            } else if seg.damaged_at().is_some() {
                // Damage in the last segment after a clean shutdown: its end
                // offset was recorded with the producer snapshot. Keep it whole
                // as a sealed segment and go on in a new one; without that
                // record, recover it as after a crash.
                match ProducerStateManager::snapshot_offset(dir).filter(|&o| o >= seg.next_offset()) {
                    Some(end) => {
                        seg.assume_next_offset(end);
                        sealed.insert(last, SealedSegment::from_opened(seg));
                        seg = ActiveSegment::create(dir, end)?.into_inner();
                    }
                    None => {
                        drop(seg);
                        producers = producers_at(dir, &sealed, last)?;
                        seg = LogSegment::open(dir, last, Open::Recover, interval, |b| {
                            recovered.push(b.header);
                            producers.update(&b.header, b.marker);
                        })?;
                        recovered_after_damage = true;
                    }
                }
            }
            if clean && !recovered_after_damage {
                producers = match ProducerStateManager::read_snapshot(dir, seg.next_offset()) {
                    Some(p) => p,
                    None => {
                        let mut p = producers_at(dir, &sealed, seg.base_offset)?;
                        segment::scan(&seg.file(), 0, seg.size(), segment::Check::Framing, |b| {
                            p.update(&b.header, b.marker);
                        })?;
                        p
                    }
                };
            }
            // The epochs of the batches read again (recovery, or indexes
            // rebuilt) replace what the cache says from the segment's start on,
            // as Kafka's segment recovery does.
            if !recovered.is_empty() {
                epoch_write(epochs.truncate_from_end(last));
                recovered.iter().for_each(|h| assign_epoch(&mut epochs, h));
            }
            ActiveSegment::from_opened(seg)
        }
    };
    // The snapshot stays: taken at the clean shutdown's end offset, which is
    // where the new active segment begins, it is what a crash recovery of
    // that segment starts from.
    report_gaps(dir, config, sealed.values().map(|s| &**s).chain([&*active]));
    let first_base = sealed.keys().next().copied().unwrap_or(active.base_offset);
    let log_start_offset = retention::read_log_start(dir)
        .unwrap_or(first_base)
        .max(first_base)
        .min(active.next_offset());
    let leo = active.next_offset();
    // Without a sound checkpoint file (a log written before epochs were
    // kept, a lost or damaged file) the batches say where each epoch began:
    // their headers are read once, here.
    if !epochs.trusted() && leo > log_start_offset {
        tracing::warn!(dir = %dir.display(), "rebuilding the leader epoch cache from the log");
        epoch_write(epochs.clear());
        for seg in sealed.values().map(|s| &**s).chain([&*active]) {
            segment::scan(&seg.file(), 0, seg.size(), segment::Check::Framing, |b| {
                assign_epoch(&mut epochs, &b.header)
            })?;
        }
    }
    // The epochs as the log now holds them: none past its end (a recovery
    // cut a torn tail), none wholly before its start.
    epoch_write(epochs.truncate_from_end(leo));
    epoch_write(epochs.truncate_from_start(log_start_offset));
    Ok(PartitionLog {
        sealed,
        active,
        log_start_offset,
        producers,
        unflushed_segments: Vec::new(),
        dir_dirty: true,
        unflushed_messages: 0,
        last_flush_ms: now_ms,
        cleaned_up_to: 0,
        epochs,
        replicated_hw: None,
    })
}
