//! Unit tests of a partition's transaction state: the last stable offset, the
//! aborted-transaction index, markers, and their recovery after a crash.
use super::tests::config;
use super::*;
use crate::record::batch::{encode_batch, TRANSACTIONAL_BIT};
use crate::record::control::MarkerType;
use crate::record::records::{build_batch, NewRecord, ProducerIds};

/// `n` records of producer `pid` (epoch 0) from sequence `seq`, transactional or not.
pub(super) fn batch_of(pid: i64, seq: i32, n: usize, transactional: bool) -> Vec<u8> {
    let records = vec![NewRecord::default(); n];
    let ids = ProducerIds {
        id: pid,
        epoch: 0,
        first_sequence: seq,
    };
    let b = build_batch(&records, Some(ids));
    let mut h = BatchHeader::parse(&b).unwrap();
    if transactional {
        h.attributes |= TRANSACTIONAL_BIT;
    }
    encode_batch(&h, &b[batch::BATCH_HEADER_LEN..])
}

/// Append a transactional batch its coordinator verified just now.
pub(super) fn verified(p: &UnifiedLog, batch: &[u8]) -> Result<AppendInfo> {
    let guard = p.verification_guard(BatchHeader::parse(batch).unwrap().producer_id);
    p.append_verified(batch, Some(guard), 0)
}

pub(super) fn marker(kind: MarkerType) -> Marker {
    Marker {
        kind,
        coordinator_epoch: 0,
    }
}

#[test]
fn the_lso_waits_for_open_transactions_and_aborts_are_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), config(), true, 0).unwrap();
    p.append(&batch_of(9, 0, 2, false), 0).unwrap(); // 0-1: not transactional
    assert_eq!(p.last_stable_offset(), 2);
    verified(&p, &batch_of(1, 0, 3, true)).unwrap(); // 2-4: producer 1
    verified(&p, &batch_of(2, 0, 2, true)).unwrap(); // 5-6: producer 2
    assert_eq!(p.last_stable_offset(), 2, "producer 1's transaction is open");
    // Producer 1 may not write outside its transaction meanwhile.
    assert!(matches!(
        p.append(&batch_of(1, 3, 1, false), 0),
        Err(Error::InvalidTxnState(_))
    ));
    let abort = p.append_marker(1, 0, marker(MarkerType::Abort), 0).unwrap(); // 7
    assert_eq!(abort.base_offset, 7);
    assert_eq!(p.last_stable_offset(), 5, "producer 2's is still open");
    p.append_marker(2, 0, marker(MarkerType::Commit), 0).unwrap(); // 8
    assert_eq!(p.last_stable_offset(), 9);
    let aborted = p.aborted_transactions(0, 9);
    assert_eq!(
        aborted,
        vec![AbortedTxn {
            producer_id: 1,
            first_offset: 2,
            last_offset: 7,
            last_stable_offset: 5,
        }],
        "the abort, not the commit"
    );
    assert!(p.aborted_transactions(8, 9).is_empty(), "ended before the fetch");
    assert!(p.aborted_transactions(0, 2).is_empty(), "began after the fetch");
    // A control batch from a client is refused.
    let forged = control::marker_batch(5, 0, marker(MarkerType::Commit), 0).unwrap();
    assert!(matches!(p.append(&forged, 0), Err(Error::InvalidRecord(_))));
}

/// A batch verified before its transaction ended but arriving after the
/// marker must not open a transaction no one will end (the LSO would stay put
/// for good): its guard went with the marker.
#[test]
fn a_batch_verified_before_the_marker_is_refused_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), config(), true, 0).unwrap();
    verified(&p, &batch_of(1, 0, 2, true)).unwrap(); // 0-1
    let late = p.verification_guard(1); // a second batch, verified...
    p.append_marker(1, 0, marker(MarkerType::Commit), 0).unwrap(); // 2
    let refused = p.append_verified(&batch_of(1, 2, 1, true), Some(late), 0); // ...arrives late
    assert!(matches!(refused, Err(Error::InvalidTxnState(_))), "{refused:?}");
    assert_eq!(p.last_stable_offset(), 3, "no transaction is open");
    // The same when the batch would open the producer's next transaction,
    // which has a guard of its own by then.
    let stale = p.verification_guard(1);
    p.append_marker(1, 0, marker(MarkerType::Abort), 0).unwrap(); // 3
    let _next = p.verification_guard(1);
    let refused = p.append_verified(&batch_of(1, 2, 1, true), Some(stale), 0);
    assert!(matches!(refused, Err(Error::InvalidTxnState(_))), "{refused:?}");
    // Without a guard, or with none at all: refused too.
    assert!(p.append(&batch_of(1, 2, 1, true), 0).is_err());
    // Within an open transaction, later batches need no fresh guard.
    verified(&p, &batch_of(1, 2, 1, true)).unwrap(); // 4
    p.append_verified(&batch_of(1, 3, 1, true), Some(stale), 0).unwrap(); // 5
    assert_eq!(p.last_stable_offset(), 4);
}

#[test]
fn transaction_state_and_the_abort_index_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    {
        let p = UnifiedLog::open("t", 0, dir.path(), config(), true, 0).unwrap();
        verified(&p, &batch_of(1, 0, 2, true)).unwrap(); // 0-1
        p.append_marker(1, 0, marker(MarkerType::Abort), 0).unwrap(); // 2
        verified(&p, &batch_of(3, 0, 2, true)).unwrap(); // 3-4, left open
                                                         // The index file is lost in the crash (as if never written).
        drop(p);
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "txnindex") {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    let p = UnifiedLog::open("t", 0, dir.path(), config(), false, 0).unwrap();
    assert_eq!(p.last_stable_offset(), 3, "producer 3's transaction is still open");
    assert_eq!(
        p.aborted_transactions(0, 5),
        vec![AbortedTxn {
            producer_id: 1,
            first_offset: 0,
            last_offset: 2,
            last_stable_offset: 3,
        }]
    );
    p.append_marker(3, 0, marker(MarkerType::Commit), 0).unwrap();
    assert_eq!(p.last_stable_offset(), 6);
}

#[test]
fn read_committed_reads_stop_at_the_last_stable_offset() {
    let dir = tempfile::tempdir().unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), config(), true, 0).unwrap();
    p.append(&batch_of(9, 0, 2, false), 0).unwrap(); // 0-1
    verified(&p, &batch_of(1, 0, 2, true)).unwrap(); // 2-3, open
    p.append(&batch_of(9, 2, 2, false), 0).unwrap(); // 4-5
    let lso = p.last_stable_offset();
    assert_eq!(lso, 2);
    let below = p.read_slice_below(0, 1 << 20, lso).unwrap().unwrap();
    let all = p.read_slice(0, 1 << 20).unwrap().unwrap();
    let bases = |s: &crate::record::file_slice::FileSlice| -> Vec<i64> {
        batch::Batches::new(&s.read().unwrap())
            .map(|(_, h)| h.base_offset)
            .collect()
    };
    assert_eq!(bases(&below), [0], "only what is stable");
    assert_eq!(bases(&all), [0, 2, 4], "read_uncommitted sees everything");
    assert!(
        p.read_slice_below(2, 1 << 20, lso).unwrap().is_none(),
        "nothing stable from the LSO on"
    );
    p.append_marker(1, 0, marker(MarkerType::Commit), 0).unwrap(); // 6
    let lso = p.last_stable_offset();
    assert_eq!(lso, 7);
    let now = p.read_slice_below(2, 1 << 20, lso).unwrap().unwrap();
    assert_eq!(bases(&now), [2, 4, 6], "committed data and its marker");
}

#[test]
fn compaction_drops_aborted_records_not_the_values_they_would_have_replaced() {
    use super::tests::{all_records, compacted_config, keyed_batch};
    let dir = tempfile::tempdir().unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), compacted_config(), true, 0).unwrap();
    p.append(&keyed_batch(&[("k", Some("committed"))], 1_000), 0).unwrap(); // 0
                                                                            // Producer 1's transaction writes k, then aborts.
    let ids = ProducerIds {
        id: 1,
        epoch: 0,
        first_sequence: 0,
    };
    let record = NewRecord {
        key: Some("k".into()),
        value: Some("aborted".into()),
        timestamp: 1_001,
        headers: Vec::new(),
    };
    let b = build_batch(&[record], Some(ids));
    let mut h = BatchHeader::parse(&b).unwrap();
    h.attributes |= TRANSACTIONAL_BIT;
    verified(&p, &encode_batch(&h, &b[batch::BATCH_HEADER_LEN..])).unwrap(); // 1
    for i in 0..4 {
        p.append(&keyed_batch(&[("pad", Some("x"))], 1_002 + i), 0).unwrap();
    }
    // While it is open, nothing from it on is cleaned.
    p.clean(10_000).unwrap();
    assert!(all_records(&p).iter().any(|r| r.0 == 1), "undecided data is kept");
    p.append_marker(1, 0, marker(MarkerType::Abort), 0).unwrap();
    for i in 0..8 {
        p.append(&keyed_batch(&[("pad", Some("y"))], 2_000 + i), 0).unwrap();
    }
    p.clean(10_000).unwrap();
    let left = all_records(&p);
    assert!(
        left.iter().any(|r| r.0 == 0 && r.1 == "k"),
        "the committed value of k stays: {left:?}"
    );
    assert!(!left.iter().any(|r| r.0 == 1), "the aborted record goes");
    // The abort is still known to read_committed fetches.
    assert_eq!(p.aborted_transactions(0, p.log_end_offset()).len(), 1);
}

/// The offsets of the transaction markers left in the log.
fn marker_offsets(p: &UnifiedLog) -> Vec<i64> {
    let mut out = Vec::new();
    super::tests::for_each_batch(p, |h, _| {
        if h.is_control() {
            out.push(h.base_offset);
        }
    });
    out
}

/// A transactional batch of one keyed record from producer `pid`.
fn txn_record(p: &UnifiedLog, pid: i64, key: &str, value: &str) {
    let ids = ProducerIds {
        id: pid,
        epoch: 0,
        first_sequence: 0,
    };
    let record = NewRecord {
        key: Some(key.to_string().into()),
        value: Some(value.to_string().into()),
        timestamp: 1_000,
        headers: Vec::new(),
    };
    let b = build_batch(&[record], Some(ids));
    let mut h = BatchHeader::parse(&b).unwrap();
    h.attributes |= TRANSACTIONAL_BIT;
    verified(p, &encode_batch(&h, &b[batch::BATCH_HEADER_LEN..])).unwrap();
}

/// Markers leave a compacted log once nothing of their transaction is left
/// before them and they are older than delete.retention.ms (10 s here): an
/// ABORT marker with its index entry, a COMMIT marker whose record was
/// compacted away; a COMMIT marker whose record stays, stays.
#[test]
fn compaction_drops_markers_of_emptied_transactions_after_the_delete_horizon() {
    use super::tests::{all_records, compacted_config, keyed_batch};
    let dir = tempfile::tempdir().unwrap();
    let p = UnifiedLog::open("t", 0, dir.path(), compacted_config(), true, 0).unwrap();
    txn_record(&p, 1, "k", "old"); // 0
    p.append_marker(1, 0, marker(MarkerType::Commit), 0).unwrap(); // 1
    txn_record(&p, 2, "k2", "aborted"); // 2
    p.append_marker(2, 0, marker(MarkerType::Abort), 0).unwrap(); // 3
    txn_record(&p, 3, "k3", "kept"); // 4
    p.append_marker(3, 0, marker(MarkerType::Commit), 0).unwrap(); // 5
    p.append(&keyed_batch(&[("k", Some("new"))], 1_000), 0).unwrap(); // 6
    for i in 0..8 {
        p.append(&keyed_batch(&[("pad", Some("x"))], 1_001 + i), 0).unwrap();
    }
    // Within the horizon every marker stays, though the records went.
    p.clean(5_000).unwrap();
    assert_eq!(marker_offsets(&p), [1, 3, 5]);
    assert!(!all_records(&p).iter().any(|r| r.0 == 0 || r.0 == 2));
    assert_eq!(p.aborted_transactions(0, p.log_end_offset()).len(), 1);
    // Past it, the next cleaning (new data made the log dirty again) drops
    // the emptied transactions' markers.
    for i in 0..8 {
        p.append(&keyed_batch(&[("pad", Some("y"))], 2_000 + i), 0).unwrap();
    }
    p.clean(20_000).unwrap();
    assert_eq!(marker_offsets(&p), [5], "producer 3's record is still there");
    assert!(all_records(&p).iter().any(|r| r.0 == 4 && r.1 == "k3"));
    assert!(all_records(&p).iter().any(|r| r.0 == 6 && r.1 == "k"));
    assert!(p.aborted_transactions(0, p.log_end_offset()).is_empty());
    assert_eq!(p.last_stable_offset(), p.log_end_offset());
}
