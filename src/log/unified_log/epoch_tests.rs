//! Unit tests of leader epochs in the partition log: batches carry their
//! leader's epoch, the cache records where each began, and both survive restarts,
//! crashes and a lost checkpoint file.
use super::tests::config;
use super::*;
use crate::log::epoch_cache::{EpochEntry, CHECKPOINT_FILE};
use crate::record::batch::tests::sample_batch;

fn open(dir: &Path, clean: bool) -> UnifiedLog {
    UnifiedLog::open("t", 0, dir, config(), clean, 0).unwrap()
}

fn append(p: &UnifiedLog, records: i32) {
    p.append(&sample_batch(records, 1_000), 0).unwrap();
}

/// (base offset, leader epoch) of every batch in the log.
fn batch_epochs(p: &UnifiedLog) -> Vec<(i64, i32)> {
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let bytes = p.read(offset, 1 << 20).unwrap();
        if bytes.is_empty() {
            return all;
        }
        for (_, h) in batch::Batches::new(&bytes) {
            all.push((h.base_offset, h.partition_leader_epoch));
            offset = h.last_offset() + 1;
        }
    }
}

/// (epoch, start offset) of every entry of the log's epoch cache.
pub(super) fn entries(p: &UnifiedLog) -> Vec<(i32, i64)> {
    p.lock()
        .epochs
        .entries()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect()
}

#[test]
fn batches_carry_the_leaders_epoch_and_the_cache_where_each_began() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), true);
    assert_eq!(entries(&p), vec![], "an empty log has no epochs");
    assert_eq!(p.end_offset_for_epoch(0), (-1, -1));
    append(&p, 3);
    append(&p, 2);
    assert_eq!(entries(&p), vec![(0, 0)]);
    assert!(dir.path().join(CHECKPOINT_FILE).exists());
    // A leader change: epoch 3 from the log end (5) on.
    p.start_leader_epoch(3).unwrap();
    p.start_leader_epoch(2).unwrap();
    assert_eq!(p.latest_epoch(), 3, "an older epoch changes nothing");
    append(&p, 4);
    assert_eq!(batch_epochs(&p), vec![(0, 0), (3, 0), (5, 3)]);
    assert_eq!(entries(&p), vec![(0, 0), (3, 5)]);
    // OffsetForLeaderEpoch's answers.
    assert_eq!(p.end_offset_for_epoch(3), (3, 9), "the latest ends at the log end");
    assert_eq!(p.end_offset_for_epoch(0), (0, 5));
    assert_eq!(p.end_offset_for_epoch(1), (0, 5), "unknown: the epoch below it");
    assert_eq!(p.end_offset_for_epoch(4), (-1, -1), "newer than any");
    assert_eq!(p.epoch_for_offset(4), Some(0));
    assert_eq!(p.epoch_for_offset(5), Some(3));
    // Transaction markers carry the epoch too.
    let marker = crate::record::control::Marker {
        kind: crate::record::control::MarkerType::Abort,
        coordinator_epoch: 0,
    };
    p.append_marker(7, 0, marker, 0).unwrap();
    assert_eq!(batch_epochs(&p).last(), Some(&(9, 3)));
}

#[test]
fn epochs_survive_a_clean_restart_and_a_crash() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let p = open(dir.path(), true);
        append(&p, 2);
        p.start_leader_epoch(1).unwrap();
        append(&p, 2);
        if clean {
            p.close().unwrap();
        }
        drop(p);
        let p = open(dir.path(), clean);
        assert_eq!(entries(&p), vec![(0, 0), (1, 2)], "clean: {clean}");
        append(&p, 1);
        assert_eq!(batch_epochs(&p).last(), Some(&(4, 1)));
    }
}

#[test]
fn a_lost_checkpoint_is_rebuilt_and_an_old_log_is_at_epoch_zero() {
    // After a crash the batches of the active segment say where epochs began.
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), true);
    append(&p, 2);
    p.start_leader_epoch(4).unwrap();
    append(&p, 3);
    drop(p);
    std::fs::remove_file(dir.path().join(CHECKPOINT_FILE)).unwrap();
    let p = open(dir.path(), false);
    assert_eq!(entries(&p), vec![(0, 0), (4, 2)]);
    drop(p);
    // No file at a clean start (a log written before epochs were kept): every
    // segment's batches are read for their epochs.
    std::fs::remove_file(dir.path().join(CHECKPOINT_FILE)).unwrap();
    let p = open(dir.path(), true);
    assert_eq!(
        p.lock().epochs.earliest(),
        Some(EpochEntry {
            epoch: 0,
            start_offset: 0
        })
    );
    assert_eq!(entries(&p), vec![(0, 0), (4, 2)]);
    // A damaged file is not trusted either.
    drop(p);
    std::fs::write(dir.path().join(CHECKPOINT_FILE), "garbage").unwrap();
    let p = open(dir.path(), false);
    assert_eq!(entries(&p), vec![(0, 0), (4, 2)]);
}

#[test]
fn the_log_start_moving_drops_older_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), true);
    append(&p, 2);
    p.start_leader_epoch(1).unwrap();
    append(&p, 2);
    p.start_leader_epoch(2).unwrap();
    append(&p, 2);
    p.delete_records(3).unwrap();
    assert_eq!(entries(&p), vec![(1, 3), (2, 4)]);
    drop(p);
    let p = open(dir.path(), false);
    assert_eq!(entries(&p), vec![(1, 3), (2, 4)]);
}
