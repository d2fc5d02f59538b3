//! Unit tests of a partition's producer state: sequences, epochs, transactions,
//! verification guards and snapshots.

use super::*;
use crate::record::batch::tests::sample_batch;

fn batch(pid: i64, epoch: i16, seq: i32, count: i32, base_offset: i64) -> BatchHeader {
    let mut h = BatchHeader::parse(&sample_batch(1, 0)).unwrap();
    h.producer_id = pid;
    h.producer_epoch = epoch;
    h.base_sequence = seq;
    h.last_offset_delta = count - 1;
    h.records_count = count;
    h.base_offset = base_offset;
    h
}

#[test]
fn sequences_must_follow_on() {
    let mut s = ProducerStateManager::default();
    let b0 = batch(7, 0, 0, 3, 0);
    assert_eq!(s.check(&b0, AppendOrigin::Client, None).unwrap(), SequenceCheck::Append);
    s.update(&b0, None);
    let gap = batch(7, 0, 5, 1, 3);
    assert!(matches!(
        s.check(&gap, AppendOrigin::Client, None),
        Err(Error::OutOfOrderSequence {
            expected: 3,
            found: 5,
            ..
        })
    ));
    let b1 = batch(7, 0, 3, 2, 3);
    assert_eq!(s.check(&b1, AppendOrigin::Client, None).unwrap(), SequenceCheck::Append);
    s.update(&b1, None);
}

#[test]
fn retries_are_duplicates_with_original_offsets() {
    let mut s = ProducerStateManager::default();
    for i in 0..6 {
        s.update(&batch(1, 0, i * 2, 2, 100 + i as i64 * 2), None);
    }
    // The last five are remembered; the first has been forgotten.
    assert_eq!(
        s.check(&batch(1, 0, 2, 2, -1), AppendOrigin::Client, None).unwrap(),
        SequenceCheck::Duplicate(102)
    );
    assert_eq!(
        s.check(&batch(1, 0, 10, 2, -1), AppendOrigin::Client, None).unwrap(),
        SequenceCheck::Duplicate(110)
    );
    assert!(s.check(&batch(1, 0, 0, 2, -1), AppendOrigin::Client, None).is_err());
}

#[test]
fn epochs_fence_and_reset() {
    let mut s = ProducerStateManager::default();
    s.update(&batch(1, 3, 0, 1, 0), None);
    assert!(matches!(
        s.check(&batch(1, 2, 1, 1, 0), AppendOrigin::Client, None),
        Err(Error::InvalidProducerEpoch { .. })
    ));
    assert!(s.check(&batch(1, 4, 1, 1, 0), AppendOrigin::Client, None).is_err());
    assert_eq!(
        s.check(&batch(1, 4, 0, 1, 0), AppendOrigin::Client, None).unwrap(),
        SequenceCheck::Append
    );
    // Unknown producers may start anywhere.
    assert_eq!(
        s.check(&batch(99, 0, 42, 1, 0), AppendOrigin::Client, None).unwrap(),
        SequenceCheck::Append
    );
}

#[test]
fn sequence_wraps_at_i32_max() {
    let mut s = ProducerStateManager::default();
    s.update(&batch(1, 0, i32::MAX - 1, 2, 0), None);
    assert_eq!(
        s.check(&batch(1, 0, 0, 1, 2), AppendOrigin::Client, None).unwrap(),
        SequenceCheck::Append
    );
}

#[test]
fn snapshot_round_trips_and_rejects_stale_or_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = ProducerStateManager::default();
    s.update(&batch(1, 0, 0, 2, 10), None);
    s.update(&batch(2, 1, 0, 1, 12), None);
    s.write_snapshot(dir.path(), 13).unwrap();
    let back = ProducerStateManager::read_snapshot(dir.path(), 13).unwrap();
    assert_eq!(
        back.check(&batch(1, 0, 0, 2, -1), AppendOrigin::Client, None).unwrap(),
        SequenceCheck::Duplicate(10)
    );
    assert_eq!(back.describe(), s.describe(), "timestamps and epochs too");
    assert!(s.describe().iter().all(|p| p.last_timestamp >= 0));
    assert!(ProducerStateManager::read_snapshot(dir.path(), 14).is_none());
    let path = dir.path().join(SNAPSHOT_FILE);
    let mut raw = std::fs::read(&path).unwrap();
    raw[13] ^= 1;
    std::fs::write(&path, raw).unwrap();
    assert!(ProducerStateManager::read_snapshot(dir.path(), 13).is_none());
}

fn transactional(mut h: BatchHeader) -> BatchHeader {
    h.attributes |= crate::record::batch::TRANSACTIONAL_BIT;
    h
}

fn marker(pid: i64, epoch: i16, offset: i64) -> BatchHeader {
    let b = crate::record::control::marker_batch(
        pid,
        epoch,
        Marker {
            kind: MarkerType::Abort,
            coordinator_epoch: 0,
        },
        0,
    )
    .unwrap();
    let mut h = BatchHeader::parse(&b).unwrap();
    h.base_offset = offset;
    h
}

#[test]
fn open_transactions_set_the_first_unstable_offset_until_their_marker() {
    let mut s = ProducerStateManager::default();
    let abort = Some(Marker {
        kind: MarkerType::Abort,
        coordinator_epoch: 4,
    });
    s.update(&batch(9, 0, 0, 2, 0), None); // idempotent, not transactional
    assert_eq!(s.first_unstable_offset(), None);
    s.update(&transactional(batch(1, 0, 0, 2, 2)), None);
    s.update(&transactional(batch(2, 0, 0, 1, 4)), None);
    s.update(&transactional(batch(1, 0, 2, 1, 5)), None);
    assert_eq!(s.first_unstable_offset(), Some(2));
    // Outside its transaction, producer 1 may not write.
    assert!(matches!(
        s.check(&batch(1, 0, 3, 1, 6), AppendOrigin::Client, None),
        Err(Error::InvalidTxnState(_))
    ));
    // Not even with another epoch (a forged write would keep the marker out).
    assert!(matches!(
        s.check(&batch(1, 5, 0, 1, 6), AppendOrigin::Client, None),
        Err(Error::InvalidTxnState(_))
    ));
    // A marker carries no sequence: it passes the check and closes the
    // transaction, whose range it reports.
    assert_eq!(
        s.check(&marker(1, 0, 6), AppendOrigin::Client, None).unwrap(),
        SequenceCheck::Append
    );
    let done = s.update(&marker(1, 0, 6), abort).unwrap();
    assert_eq!(
        done,
        CompletedTxn {
            producer_id: 1,
            first_offset: 2,
            last_offset: 6,
            aborted: true
        }
    );
    assert_eq!(s.first_unstable_offset(), Some(4), "producer 2's is still open");
    assert_eq!(s.update(&marker(1, 0, 7), abort), None, "nothing open to close");
    // Open transactions survive a snapshot.
    let dir = tempfile::tempdir().unwrap();
    s.write_snapshot(dir.path(), 8).unwrap();
    let back = ProducerStateManager::read_snapshot(dir.path(), 8).unwrap();
    assert_eq!(back.first_unstable_offset(), Some(4));
    assert_eq!(ProducerStateManager::snapshot_offset(dir.path()), Some(8));
}

/// Write a snapshot of an older layout taken at offset 13: `magic` (none for the
/// first layout), then producer 1 (epoch 0) with `fields` after its epoch and one
/// batch, sequences 0–1 at offset 10. Returns what reads it back.
fn older_snapshot(magic: &[u8], fields: &[u8]) -> ProducerStateManager {
    let dir = tempfile::tempdir().unwrap();
    let mut out = magic.to_vec();
    out.extend_from_slice(&13i64.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&1i64.to_be_bytes());
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(fields);
    out.push(1);
    for v in [0i32, 1] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&10i64.to_be_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    std::fs::write(dir.path().join(SNAPSHOT_FILE), out).unwrap();
    assert_eq!(ProducerStateManager::snapshot_offset(dir.path()), Some(13));
    let s = ProducerStateManager::read_snapshot(dir.path(), 13).unwrap();
    assert_eq!(
        s.check(&batch(1, 0, 0, 2, -1), AppendOrigin::Client, None).unwrap(),
        SequenceCheck::Duplicate(10)
    );
    s
}

#[test]
fn snapshots_of_the_first_layout_are_still_read() {
    older_snapshot(&[], &[]);
}

#[test]
fn snapshots_without_last_timestamps_are_still_read() {
    // Coordinator epoch 0, no open transaction (−1).
    let fields: Vec<u8> = [0i32.to_be_bytes().as_slice(), (-1i64).to_be_bytes().as_slice()].concat();
    let s = older_snapshot(&SNAPSHOT_MAGIC_V2, &fields);
    assert_eq!(s.describe()[0].last_timestamp, -1);
}

/// A guard whose verification failed is withdrawn, so made-up producer ids
/// leave nothing behind; a producer with a transaction open keeps its own.
#[test]
fn failed_verifications_leave_no_guard() {
    let mut s = ProducerStateManager::default();
    for pid in 100..200 {
        let g = s.verification_guard(pid);
        s.release_verification_guard(pid, g);
    }
    assert!(s.guards.is_empty());
    let mut open = batch(1, 0, 0, 1, 5);
    open.attributes |= crate::record::batch::TRANSACTIONAL_BIT;
    let g = s.verification_guard(1);
    s.check(&open, AppendOrigin::Client, Some(g)).unwrap();
    s.update(&open, None);
    s.release_verification_guard(1, g);
    assert_eq!(s.guards.get(&1), Some(&g), "kept until the marker");
}

#[test]
fn markers_of_an_older_coordinator_are_fenced() {
    let mut s = ProducerStateManager::default();
    let at = |coordinator_epoch| Marker {
        kind: MarkerType::Abort,
        coordinator_epoch,
    };
    // No marker yet: any coordinator.
    assert!(s.check_marker(3, at(0)).is_ok());
    s.update(&transactional(batch(3, 0, 0, 1, 0)), None);
    s.update(&marker(3, 0, 1), Some(at(14)));
    assert!(s.check_marker(3, at(14)).is_ok(), "the same coordinator again");
    assert!(s.check_marker(3, at(15)).is_ok(), "a newer one");
    assert!(matches!(
        s.check_marker(3, at(0)),
        Err(Error::TransactionCoordinatorFenced {
            found: 0,
            current: 14,
            ..
        })
    ));
    assert!(s.check_marker(4, at(0)).is_ok(), "another producer");
}
