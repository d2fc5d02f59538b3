//! Unit tests of the partition log: appends, reads, rolls, recovery, timestamps,
//! idempotence, group commit.
use super::*;
use crate::record::batch::tests::sample_batch;
use crate::record::records;

pub(super) fn config() -> LogConfig {
    LogConfig {
        index_interval_bytes: 200,
        ..LogConfig::default()
    }
}

fn append_n(p: &UnifiedLog, batches: usize, per_batch: i32) {
    for i in 0..batches {
        let b = sample_batch(per_batch, 1_000 + i as i64 * 10);
        p.append(&b, 0).unwrap();
    }
}

pub(super) fn read_all(p: &UnifiedLog, from: i64) -> Vec<i64> {
    let mut offset = from;
    let mut bases = Vec::new();
    loop {
        let bytes = p.read(offset, 1000).unwrap();
        if bytes.is_empty() {
            return bases;
        }
        for (_, h) in batch::Batches::new(&bytes) {
            bases.push(h.base_offset);
            offset = h.last_offset() + 1;
        }
    }
}

#[test]
fn appends_assign_offsets_and_reads_return_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), config(), true, 0).unwrap();
    append_n(&p, 50, 3);
    assert_eq!(p.log_end_offset(), 150);
    let bases = read_all(&p, 0);
    assert_eq!(bases, (0..50).map(|i| i * 3).collect::<Vec<_>>());
    // An offset inside a batch returns that whole batch.
    let b = p.read(31, 10).unwrap();
    let (_, h) = batch::Batches::new(&b).next().unwrap();
    assert_eq!(h.base_offset, 30);
    assert!(matches!(p.read(151, 10), Err(Error::OffsetOutOfRange { .. })));
    assert!(p.read(150, 10).unwrap().is_empty());
}

#[test]
fn segments_roll_on_size_and_reads_cross_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 1024,
        ..config()
    };
    let p = UnifiedLog::open("t", 0, dir.path(), cfg.clone(), true, 0).unwrap();
    append_n(&p, 40, 2);
    assert!(p.segment_count() > 3, "{} segments", p.segment_count());
    assert_eq!(read_all(&p, 0).len(), 40);
    p.close().unwrap();
    drop(p);
    let p = UnifiedLog::open("t", 0, dir.path(), cfg, true, 0).unwrap();
    assert_eq!(p.log_end_offset(), 80);
    assert_eq!(read_all(&p, 0).len(), 40);
    assert_eq!(read_all(&p, 41)[0], 40);
}

#[test]
fn segments_roll_on_age() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        roll_ms: 1000,
        ..config()
    };
    let p = UnifiedLog::open("t", 0, dir.path(), cfg, true, 0).unwrap();
    p.append(&sample_batch(1, 0), 10_000).unwrap();
    p.append(&sample_batch(1, 0), 10_500).unwrap();
    assert_eq!(p.segment_count(), 1);
    p.append(&sample_batch(1, 0), 11_000).unwrap();
    assert_eq!(p.segment_count(), 2);
}

#[test]
fn recovery_truncates_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), config(), true, 0).unwrap();
    append_n(&p, 10, 2);
    drop(p); // no clean close: a crash
    let log = segment::segment_path(dir.path(), 0, "log");
    let good = std::fs::metadata(&log).unwrap().len();
    let mut torn = std::fs::read(&log).unwrap();
    torn.extend_from_slice(&sample_batch(4, 0)[..30]);
    std::fs::write(&log, &torn).unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), config(), false, 0).unwrap();
    assert_eq!(std::fs::metadata(&log).unwrap().len(), good);
    assert_eq!(p.log_end_offset(), 20);
    assert_eq!(read_all(&p, 0).len(), 10);
    // New appends continue from the recovered end.
    p.append(&sample_batch(1, 0), 0).unwrap();
    assert_eq!(p.log_end_offset(), 21);
}

#[test]
fn recovery_truncates_a_corrupted_batch_and_what_follows() {
    let dir = tempfile::tempdir().unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), config(), true, 0).unwrap();
    append_n(&p, 10, 2);
    drop(p);
    let log = segment::segment_path(dir.path(), 0, "log");
    let mut data = std::fs::read(&log).unwrap();
    let batch_len = sample_batch(2, 0).len();
    data[batch_len * 7 + 70] ^= 0x55; // inside the 8th batch's records
    std::fs::write(&log, &data).unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), config(), false, 0).unwrap();
    assert_eq!(p.log_end_offset(), 14);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), (batch_len * 7) as u64);
}

#[test]
fn missing_or_corrupt_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 2048,
        ..config()
    };
    let p = UnifiedLog::open("t", 0, dir.path(), cfg.clone(), true, 0).unwrap();
    append_n(&p, 60, 2);
    p.close().unwrap();
    drop(p);
    std::fs::remove_file(segment::segment_path(dir.path(), 0, "index")).unwrap();
    std::fs::write(segment::segment_path(dir.path(), 0, "timeindex"), [7u8; 5]).unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), cfg, true, 0).unwrap();
    assert_eq!(read_all(&p, 0).len(), 60);
    assert_eq!(p.offset_for_timestamp(1_000).unwrap(), Some((1_000, 0)));
    assert!(
        std::fs::metadata(segment::segment_path(dir.path(), 0, "index"))
            .unwrap()
            .len()
            > 0
    );
}

#[test]
fn timestamps_find_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 1500,
        ..config()
    };
    let p = UnifiedLog::open("t", 0, dir.path(), cfg, true, 0).unwrap();
    // batch i has records with timestamps 1000+10i, 1000+10i+1, 1000+10i+2
    append_n(&p, 30, 3);
    assert_eq!(p.offset_for_timestamp(0).unwrap(), Some((1000, 0)));
    assert_eq!(p.offset_for_timestamp(1001).unwrap(), Some((1001, 1)));
    assert_eq!(p.offset_for_timestamp(1003).unwrap(), Some((1010, 3)));
    assert_eq!(p.offset_for_timestamp(1252).unwrap(), Some((1252, 77)));
    assert_eq!(p.offset_for_timestamp(5000).unwrap(), None);
    assert_eq!(p.max_timestamp().unwrap(), Some((1292, 89)));
}

#[test]
fn idempotent_retries_are_acknowledged_with_original_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), config(), true, 0).unwrap();
    let idempotent = |seq: i32| {
        let mut b = sample_batch(2, 0);
        b[43..51].copy_from_slice(&5i64.to_be_bytes());
        b[51..53].copy_from_slice(&0i16.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    };
    assert_eq!(p.append(&idempotent(0), 0).unwrap().base_offset, 0);
    assert_eq!(p.append(&idempotent(2), 0).unwrap().base_offset, 2);
    let dup = p.append(&idempotent(0), 0).unwrap();
    assert_eq!((dup.base_offset, dup.log_end_offset), (0, 4));
    assert!(matches!(
        p.append(&idempotent(6), 0),
        Err(Error::OutOfOrderSequence { .. })
    ));
    // The state survives a clean restart through the snapshot…
    p.close().unwrap();
    drop(p);
    let p = UnifiedLog::open("t", 0, dir.path(), config(), true, 0).unwrap();
    assert_eq!(p.append(&idempotent(2), 0).unwrap().base_offset, 2);
    drop(p);
    // …and a crash through recovery of the active segment.
    let p = UnifiedLog::open("t", 0, dir.path(), config(), false, 0).unwrap();
    assert_eq!(p.append(&idempotent(2), 0).unwrap().base_offset, 2);
    assert_eq!(p.append(&idempotent(4), 0).unwrap().base_offset, 4);
}

#[test]
fn bad_batches_are_rejected_without_touching_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        message_max_bytes: 100,
        ..config()
    };
    let p = UnifiedLog::open("t", 0, dir.path(), cfg, true, 0).unwrap();
    let big = sample_batch(10, 0);
    assert!(matches!(p.append(&big, 0), Err(Error::MessageTooLarge { .. })));
    let mut bad = sample_batch(1, 0);
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(matches!(p.append(&bad, 0), Err(Error::CorruptMessage(_))));
    let mut two = sample_batch(1, 0);
    two.extend(sample_batch(1, 0));
    assert!(matches!(p.append(&two, 0), Err(Error::InvalidRecord(_))));
    assert_eq!(p.log_end_offset(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_fsync_covers_every_batch_waiting_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = Arc::new(UnifiedLog::open("t", 0, dir.path(), config(), false, 0).unwrap());
    // Twenty acks=-1 producers append, then all wait for durability at once.
    let ends: Vec<i64> = (0..20)
        .map(|_| p.append(&sample_batch(1, 0), 0).unwrap().log_end_offset)
        .collect();
    let waits: Vec<_> = ends
        .into_iter()
        .map(|end| {
            let p = p.clone();
            tokio::spawn(async move { p.flush_to(end, 0).await })
        })
        .collect();
    for w in waits {
        w.await.unwrap().unwrap();
    }
    assert_eq!(p.fsync_count(), 1, "the first fsync covered all twenty");
    // Already durable: no new fsync.
    p.flush_to(20, 0).await.unwrap();
    assert_eq!(p.fsync_count(), 1);
    p.append(&sample_batch(1, 0), 0).unwrap();
    p.flush_to(21, 0).await.unwrap();
    assert_eq!(p.fsync_count(), 2);
}

#[tokio::test]
async fn flush_covers_everything_appended_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = Arc::new(UnifiedLog::open("t", 0, dir.path(), config(), false, 0).unwrap());
    append_n(&p, 3, 1);
    p.set_config(LogConfig {
        flush_interval_ms: 5,
        ..config()
    });
    assert!(p.flush_overdue(10));
    p.flush_to(3, 10).await.unwrap();
    assert!(!p.flush_overdue(20));
    p.flush_to(1, 20).await.unwrap();
}

#[test]
fn delete_records_advances_the_log_start_and_drops_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 1024,
        ..config()
    };
    let p = UnifiedLog::open("t", 0, dir.path(), cfg.clone(), true, 0).unwrap();
    append_n(&p, 40, 2);
    let before = p.segment_count();
    assert_eq!(p.delete_records(31).unwrap(), 31);
    assert!(p.segment_count() < before);
    assert!(matches!(p.read(30, 100), Err(Error::OffsetOutOfRange { .. })));
    assert_eq!(read_all(&p, 31)[0], 30, "the batch holding 31 is served whole");
    assert!(p.delete_records(81).is_err());
    assert_eq!(p.delete_records(10).unwrap(), 31, "never moves backwards");
    p.close().unwrap();
    drop(p);
    let p = UnifiedLog::open("t", 0, dir.path(), cfg, true, 0).unwrap();
    assert_eq!(p.log_start_offset(), 31, "persisted");
    assert_eq!(p.delete_records(-1).unwrap(), 80);
}

#[test]
fn retention_by_time_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 1024,
        retention_ms: -1,
        retention_bytes: 3000,
        ..config()
    };
    let p = UnifiedLog::open("t", 0, dir.path(), cfg.clone(), true, 0).unwrap();
    append_n(&p, 60, 2); // timestamps 1000..1590
    let size = p.size_bytes();
    assert!(size > 3000);
    assert!(p.apply_retention(10_000).unwrap() > 0);
    assert!(p.size_bytes() >= 3000 - 1024 && p.size_bytes() < size);
    assert!(p.log_start_offset() > 0);
    assert_eq!(p.log_end_offset(), 120);
    // Time: everything older than 100 ms before "now" goes, the active segment too.
    p.set_config(LogConfig {
        retention_ms: 100,
        retention_bytes: -1,
        ..cfg
    });
    p.apply_retention(1_000_000).unwrap();
    assert_eq!(p.log_start_offset(), 120);
    assert!(p.read(120, 100).unwrap().is_empty());
    assert!(matches!(p.read(0, 100), Err(Error::OffsetOutOfRange { .. })));
    // Compacted-only topics are not touched by retention.
    p.set_config(LogConfig {
        cleanup_delete: false,
        cleanup_compact: true,
        ..config()
    });
    assert_eq!(p.apply_retention(i64::MAX / 2).unwrap(), 0);
}

#[test]
fn retention_that_cannot_record_the_new_log_start_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 1024,
        retention_ms: -1,
        retention_bytes: 3000,
        ..config()
    };
    let p = UnifiedLog::open("t", 0, dir.path(), cfg, true, 0).unwrap();
    append_n(&p, 60, 2);
    let logs_on_disk = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
            .count()
    };
    let (segments, files) = (p.segment_count(), logs_on_disk());
    // The log start offset cannot be written: a directory stands where it goes.
    let blocker = dir.path().join(retention::LOG_START_FILE);
    std::fs::create_dir_all(blocker.join("x")).unwrap();
    assert!(p.apply_retention(10_000).is_err());
    assert_eq!(
        (p.segment_count(), logs_on_disk()),
        (segments, files),
        "nothing taken, nothing orphaned"
    );
    assert_eq!(p.log_start_offset(), 0);
    assert_eq!(read_all(&p, 0).len(), 60, "every batch still readable");
    std::fs::remove_dir_all(&blocker).unwrap();
    assert!(p.apply_retention(10_000).unwrap() > 0);
    assert_eq!(
        logs_on_disk(),
        p.segment_count(),
        "the deleted segments' files are gone"
    );
}

/// A batch of (key, value) records; a `None` value is a tombstone.
pub(super) fn keyed_batch(records: &[(&str, Option<&str>)], timestamp: i64) -> Vec<u8> {
    let records: Vec<records::NewRecord> = records
        .iter()
        .map(|(k, v)| records::NewRecord {
            key: Some(bytes::Bytes::from(k.to_string())),
            value: v.map(|v| bytes::Bytes::from(v.to_string())),
            timestamp,
            headers: Vec::new(),
        })
        .collect();
    records::build_batch(&records, None)
}

/// Every batch from the log start, in order.
pub(super) fn for_each_batch(p: &UnifiedLog, mut f: impl FnMut(&BatchHeader, bytes::Bytes)) {
    let mut offset = p.log_start_offset();
    loop {
        let data = bytes::Bytes::from(p.read(offset, 1 << 20).unwrap().to_vec());
        if data.is_empty() {
            return;
        }
        for (pos, h) in batch::Batches::new(&data) {
            f(&h, data.slice(pos..pos + h.total_size()));
            offset = h.last_offset() + 1;
        }
    }
}

/// (offset, key, is a tombstone) of every record from the start.
pub(super) fn all_records(p: &UnifiedLog) -> Vec<(i64, String, bool)> {
    let mut out = Vec::new();
    for_each_batch(p, |h, batch| {
        for r in records::records(&batch, h).unwrap() {
            out.push((
                h.base_offset + r.offset_delta as i64,
                String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).to_string(),
                r.value_is_null,
            ));
        }
    });
    out
}

pub(super) fn compacted_config() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        cleanup_compact: true,
        cleanup_delete: false,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 10_000,
        ..config()
    }
}

#[test]
fn compaction_keeps_the_latest_record_per_key_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), compacted_config(), true, 0).unwrap();
    let writes: &[(&str, Option<&str>)] = &[
        ("a", Some("a1")),
        ("b", Some("b1")),
        ("a", Some("a2")),
        ("c", Some("c1")),
        ("b", None),
        ("a", Some("a3")),
    ];
    for (i, w) in writes.iter().enumerate() {
        p.append(&keyed_batch(&[*w], 1_000 + i as i64), 0).unwrap();
    }
    // Seal everything written so far behind a few more segments.
    for i in 0..8 {
        p.append(&keyed_batch(&[("z", Some("filler"))], 2_000 + i), 0).unwrap();
    }
    let stats = p.clean(5_000).unwrap();
    assert!(stats.segments > 0 && stats.records_dropped > 0, "{stats:?}");
    let left: Vec<(i64, String)> = all_records(&p)
        .into_iter()
        .filter(|r| r.1 != "z")
        .map(|r| (r.0, r.1))
        .collect();
    // a's last write (offset 5), c (3) and b's tombstone (4, younger than
    // delete.retention.ms) survive, at their original offsets.
    assert_eq!(left, vec![(3, "c".into()), (4, "b".into()), (5, "a".into())]);
    assert_eq!(p.log_end_offset(), 14, "offsets are never reused");
    // Much later, when there is new data to compact, the tombstone itself goes.
    for i in 0..8 {
        p.append(&keyed_batch(&[("y", Some("filler"))], 3_000 + i), 0).unwrap();
    }
    p.clean(1_000_000).unwrap();
    let keys: Vec<String> = all_records(&p)
        .into_iter()
        .map(|r| r.1)
        .filter(|k| k != "z" && k != "y")
        .collect();
    assert_eq!(keys, vec!["c", "a"]);
    // New appends continue after the old end; reopening rebuilds the same log.
    p.append(&keyed_batch(&[("d", Some("d1"))], 9_000), 0).unwrap();
    p.close().unwrap();
    drop(p);
    let p = UnifiedLog::open("t", 0, dir.path(), compacted_config(), true, 0).unwrap();
    assert_eq!(p.log_end_offset(), 23);
    assert!(all_records(&p).iter().any(|r| r.0 == 22 && r.1 == "d"));
}

#[test]
fn a_log_start_in_a_segment_compaction_emptied_keeps_that_segment() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 200, // two one-record batches a segment
        ..compacted_config()
    };
    let p = UnifiedLog::open("t", 0, dir.path(), cfg, true, 0).unwrap();
    // One key written ten times: compaction empties every sealed segment, which
    // then end (by their own records) at their base offsets.
    for i in 0..10 {
        p.append(&keyed_batch(&[("k", Some("v"))], 1_000 + i), 0).unwrap();
    }
    p.clean(5_000).unwrap();
    let left: Vec<i64> = all_records(&p).iter().map(|r| r.0).collect();
    assert!(left.iter().all(|&o| o >= 6), "offsets 0..6 compacted away: {left:?}");
    // DeleteRecords to 3, inside the emptied segment [2, 4): it must stay, or the
    // log start would lie before the first segment and reads of it fail as damage.
    assert_eq!(p.delete_records(3).unwrap(), 3);
    assert!(
        p.read_slice(3, 1 << 20).unwrap().is_some(),
        "reads from the log start go on"
    );
    assert_eq!(all_records(&p).iter().map(|r| r.0).collect::<Vec<_>>(), left);
}

#[test]
fn a_crash_in_the_middle_of_cleaning_recovers_a_consistent_log() {
    let dir = tempfile::tempdir().unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), compacted_config(), true, 0).unwrap();
    for i in 0..12 {
        p.append(&keyed_batch(&[("k", Some("v"))], i), 0).unwrap();
    }
    let before = all_records(&p);
    p.close().unwrap();
    drop(p);
    let first = segment::segment_path(dir.path(), 0, "log");
    // 1. A half-written .cleaned file: dropped, the old segment stays.
    std::fs::write(dir.path().join(format!("{:020}.log.cleaned", 0)), b"partial garbage").unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), compacted_config(), true, 0).unwrap();
    assert_eq!(all_records(&p), before);
    assert!(!dir.path().join(format!("{:020}.log.cleaned", 0)).exists());
    drop(p);
    // 2. A .swap whose old segment was already deleted: the swap completes.
    let content = std::fs::read(&first).unwrap();
    std::fs::write(dir.path().join(format!("{:020}.log.swap", 0)), &content).unwrap();
    std::fs::remove_file(&first).unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), compacted_config(), true, 0).unwrap();
    assert_eq!(all_records(&p), before);
    assert!(first.exists());
    drop(p);
    // 3. A .swap next to the old segment: the swap replaces it.
    std::fs::write(dir.path().join(format!("{:020}.log.swap", 0)), &content).unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), compacted_config(), true, 0).unwrap();
    assert_eq!(all_records(&p), before);
    assert!(!dir.path().join(format!("{:020}.log.swap", 0)).exists());
}

/// Reads find batch boundaries from lengths and index hints only: for every start
/// offset and byte limit, exactly the whole batches that fit (at least one).
#[test]
fn reads_take_exactly_the_whole_batches_that_fit() {
    let dir = tempfile::tempdir().unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), config(), true, 0).unwrap();
    // Batches of 1..=7 records: sizes vary, and the index (every 200 bytes) has
    // entries that land inside every read.
    let mut layout = Vec::new(); // (base offset, size)
    for i in 0..60 {
        let b = sample_batch(1 + i % 7, 1_000);
        let info = p.append(&b, 0).unwrap();
        layout.push((info.base_offset, b.len()));
    }
    for start in 0..layout.len() {
        for max_bytes in [1, 60, 150, 333, 1000, 4096, 1 << 20] {
            let mut expected = layout[start].1;
            for &(_, size) in &layout[start + 1..] {
                if expected + size > max_bytes {
                    break;
                }
                expected += size;
            }
            let slice = p.read_slice(layout[start].0, max_bytes).unwrap().unwrap();
            assert_eq!(slice.len, expected, "start {start}, max_bytes {max_bytes}");
            let bytes = slice.read().unwrap();
            let batches: Vec<_> = batch::Batches::new(&bytes).collect();
            assert_eq!(batches[0].1.base_offset, layout[start].0);
            assert_eq!(
                batches.last().unwrap().0 + batches.last().unwrap().1.total_size(),
                bytes.len()
            );
        }
    }
}

/// LogAppendTime edits the header copy and recomputes the CRC over it and the
/// client's untouched records: what is stored validates.
#[test]
fn log_append_time_batches_are_stored_with_a_valid_crc() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        log_append_time: true,
        ..config()
    };
    let p = UnifiedLog::open("t", 0, dir.path(), cfg, true, 0).unwrap();
    let sent = sample_batch(3, 1_000);
    let info = p.append(&sent, 77_000).unwrap();
    assert_eq!(info.log_append_time, 77_000);
    let stored = p.read(0, 1 << 20).unwrap();
    let h = batch::next_batch(&stored).unwrap().unwrap();
    batch::validate_batch(&stored, &h).unwrap();
    assert_eq!((h.attributes & 0x08, h.max_timestamp), (0x08, 77_000));
    assert_eq!(&stored[batch::BATCH_HEADER_LEN..], &sent[batch::BATCH_HEADER_LEN..]);
}

#[tokio::test]
async fn a_failed_flush_leaves_its_segments_to_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let partition_dir = dir.path().join("t-0");
    std::fs::create_dir(&partition_dir).unwrap();
    let cfg = LogConfig {
        segment_bytes: 1024,
        ..config()
    };
    let p = Arc::new(UnifiedLog::open("t", 0, &partition_dir, cfg, true, 0).unwrap());
    append_n(&p, 100, 2);
    let unflushed = p.lock().unflushed_segments.len();
    assert!(unflushed > 2, "rolled: {unflushed}");
    // The directory's fsync fails: it is not where the log thinks it is.
    let moved = dir.path().join("moved");
    std::fs::rename(&partition_dir, &moved).unwrap();
    assert!(p.flush_to(p.log_end_offset(), 0).await.is_err());
    assert_eq!(p.lock().unflushed_segments.len(), unflushed, "still owed an fsync");
    std::fs::rename(&moved, &partition_dir).unwrap();
    p.flush_to(p.log_end_offset(), 0).await.unwrap();
    assert!(p.lock().unflushed_segments.is_empty());
}
