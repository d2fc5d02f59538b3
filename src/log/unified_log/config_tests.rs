//! Unit tests of the topic configs that change what a partition does:
//! timestamps, segment.jitter.ms, segment.index.bytes, preallocate,
//! file.delete.delay.ms, max.compaction.lag.ms.
use super::tests::{all_records, compacted_config, config, keyed_batch, read_all};
use super::*;
use crate::record::batch::tests::sample_batch;

/// Segment files (`*.log`) in the partition's directory.
fn segment_files(dir: &Path) -> usize {
    list_segments(dir).unwrap().len()
}

#[test]
fn timestamps_too_far_from_the_broker_clock_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        message_timestamp_after_max_ms: 1_000,
        message_timestamp_before_max_ms: 10_000,
        ..config()
    };
    let p = UnifiedLog::open("t", 0, dir.path(), cfg.clone(), true, 0).unwrap();
    let now = 1_000_000;
    let at = |t: i64| sample_batch(2, t);
    assert!(p.append(&at(now + 500), now).is_ok(), "within after.max.ms");
    assert!(p.append(&at(now - 9_000), now).is_ok(), "within before.max.ms");
    for t in [now + 2_000, now - 20_000] {
        let refused = p.append(&at(t), now);
        match &refused {
            Err(Error::RejectedRecords(r)) => {
                let indexes = &r.indexes;
                assert_eq!(*indexes, [0, 1], "both records named");
                assert!(
                    r.messages[0].starts_with(&format!("Timestamp {t} of message")),
                    "{}",
                    r.messages[0]
                );
            }
            other => panic!("{t}: {other:?}"),
        }
        assert_eq!(refused.unwrap_err().wire_code(), 32, "INVALID_TIMESTAMP");
    }
    // LogAppendTime topics replace the producer's timestamps: nothing to check.
    p.set_config(LogConfig {
        log_append_time: true,
        ..cfg
    });
    assert!(p.append(&at(now + 2_000), now).is_ok());
    assert_eq!(p.log_end_offset(), 6);
}

#[test]
fn segment_jitter_rolls_segments_at_different_ages() {
    // segment.ms 10 s; a segment 6 s old rolls only where its jitter (up to
    // 10 s) exceeds 4 s: some partitions, not all. Without jitter, none.
    let rolled = |jitter: i64| {
        (0..40)
            .filter(|i| {
                let dir = tempfile::tempdir().unwrap();
                let cfg = LogConfig {
                    roll_ms: 10_000,
                    segment_jitter_ms: jitter,
                    ..config()
                };
                let p = UnifiedLog::open(&format!("t{i}"), 0, dir.path(), cfg, true, 0).unwrap();
                p.append(&sample_batch(1, 1_000), 1_000).unwrap();
                p.append(&sample_batch(1, 7_000), 7_000).unwrap();
                segment_files(dir.path()) == 2
            })
            .count()
    };
    assert_eq!(rolled(0), 0);
    let some = rolled(10_000);
    assert!(some > 0 && some < 40, "{some} of 40 rolled");
}

#[test]
fn a_full_segment_index_rolls_the_segment() {
    // Every batch indexed; 48 bytes hold 6 offset entries and 4 time entries.
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        index_interval_bytes: 0,
        segment_index_bytes: 48,
        ..config()
    };
    let p = UnifiedLog::open("t", 0, dir.path(), cfg, true, 0).unwrap();
    for i in 0..12 {
        p.append(&sample_batch(1, 1_000 + i), 0).unwrap();
    }
    assert_eq!(segment_files(dir.path()), 3, "four batches a segment");
    let dir = tempfile::tempdir().unwrap();
    let p = UnifiedLog::open(
        "t",
        0,
        dir.path(),
        LogConfig {
            index_interval_bytes: 0,
            ..config()
        },
        true,
        0,
    )
    .unwrap();
    for i in 0..12 {
        p.append(&sample_batch(1, 1_000 + i), 0).unwrap();
    }
    assert_eq!(segment_files(dir.path()), 1, "the default index holds far more");
}

#[test]
fn preallocated_segments_reserve_their_size_and_give_back_the_rest_when_sealed() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        preallocate: true,
        segment_bytes: 8 << 20,
        roll_ms: 1_000,
        ..config()
    };
    let p = UnifiedLog::open("t", 0, dir.path(), cfg, true, 0).unwrap();
    let file = |base: i64| std::fs::metadata(segment::segment_path(dir.path(), base, "log")).unwrap();
    let reserved = file(0).blocks() * 512;
    if reserved < 8 << 20 {
        return; // a file system without fallocate: nothing to check
    }
    assert_eq!(file(0).len(), 0, "the length is what was written");
    p.append(&sample_batch(3, 1_000), 0).unwrap();
    p.append(&sample_batch(3, 1_000), 5_000).unwrap(); // rolls: older than segment.ms
    let sealed = file(0);
    assert!(sealed.blocks() * 512 < 1 << 20, "given back: {}", sealed.blocks() * 512);
    assert!(file(3).blocks() * 512 >= 8 << 20, "the new segment is reserved");
    assert_eq!(read_all(&p, 0), [0, 3], "both batches read back");
}

#[test]
fn deleted_segments_linger_for_file_delete_delay_ms() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 200,
        file_delete_delay_ms: 60_000,
        ..config()
    };
    let p = UnifiedLog::open("t", 0, dir.path(), cfg, true, 0).unwrap();
    for i in 0..6 {
        p.append(&sample_batch(2, 1_000 + i), 0).unwrap();
    }
    let before = segment_files(dir.path());
    assert!(before > 2);
    p.delete_records(p.log_end_offset()).unwrap();
    let deleted = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".deleted"))
            .count()
    };
    assert!(deleted(dir.path()) >= 3, "renamed, not yet removed");
    let now = crate::util::clock::now_ms();
    p.delete_retired(now + 30_000);
    assert!(deleted(dir.path()) >= 3, "the delay is not over");
    p.delete_retired(now + 61_000);
    assert_eq!(deleted(dir.path()), 0);
    // Left over at a restart (the delay not over): removed when the log opens.
    for i in 0..6 {
        p.append(&sample_batch(2, 2_000 + i), 0).unwrap();
    }
    p.delete_records(p.log_end_offset()).unwrap();
    assert!(deleted(dir.path()) > 0);
    p.close().unwrap();
    drop(p);
    let _p = UnifiedLog::open("t", 0, dir.path(), config(), true, 0).unwrap();
    assert_eq!(deleted(dir.path()), 0);
}

#[test]
fn max_compaction_lag_forces_a_clean_however_small_the_dirty_share() {
    // A dirty ratio of 1: after the first clean, new segments never make the
    // whole log dirty, so only max.compaction.lag.ms gets them compacted.
    let run = |max_lag: i64| {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            min_cleanable_dirty_ratio: 1.0,
            max_compaction_lag_ms: max_lag,
            ..compacted_config()
        };
        let p = UnifiedLog::open("t", 0, dir.path(), cfg, true, 0).unwrap();
        for i in 0..10 {
            p.append(&keyed_batch(&[("k", Some("v"))], 1_000 + i), 0).unwrap();
        }
        p.clean(10_000).unwrap();
        for i in 0..10 {
            p.append(&keyed_batch(&[("k", Some("v2"))], 20_000 + i), 0).unwrap();
        }
        p.clean(100_000).unwrap();
        all_records(&p).len()
    };
    let with_lag = run(50_000);
    let without = run(i64::MAX);
    assert!(
        with_lag < without,
        "{with_lag} records left with the lag, {without} without"
    );
}
