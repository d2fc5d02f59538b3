//! The coordinator's decisions, with a marker writer that records (or fails).
use std::cell::{Cell, RefCell};
use std::sync::Arc;

use super::*;
use crate::log::config::LogConfig;
use crate::log::manager::LogManager;

#[derive(Default)]
struct Markers {
    written: RefCell<Vec<(TopicPartition, i64, i16, MarkerType)>>,
    failing: Cell<bool>,
}

impl MarkerWriter for Markers {
    fn write_marker(&self, p: &TopicPartition, pid: i64, epoch: i16, marker: Marker) -> Result<()> {
        if self.failing.get() {
            return Err(Error::CoordinatorNotAvailable("partition unavailable"));
        }
        self.written.borrow_mut().push((p.clone(), pid, epoch, marker.kind));
        Ok(())
    }
}

fn coordinator(dir: &std::path::Path) -> TransactionCoordinator {
    let logs = Arc::new(LogManager::open(dir, LogConfig::default(), 0).unwrap());
    TransactionCoordinator::new(TransactionStateManager::open(logs).unwrap(), MAX_TIMEOUT_MS)
}

fn ids() -> impl Fn() -> Result<i64> {
    let next = Cell::new(1000);
    move || {
        next.set(next.get() + 1);
        Ok(next.get())
    }
}

fn tp(t: &str, p: i32) -> TopicPartition {
    (t.to_string(), p)
}

#[test]
fn re_initialising_fences_the_older_producer() {
    let dir = tempfile::tempdir().unwrap();
    let (c, m, next) = (coordinator(dir.path()), Markers::default(), ids());
    assert!(matches!(
        c.init_producer_id("t", MAX_TIMEOUT_MS + 1, None, &next, &m, 0),
        Err(Error::InvalidTransactionTimeout { .. })
    ));
    let (pid, e0) = c.init_producer_id("t", 60_000, None, &next, &m, 0).unwrap();
    assert_eq!(e0, 0);
    let (same, e1) = c.init_producer_id("t", 60_000, None, &next, &m, 1).unwrap();
    assert_eq!((same, e1), (pid, 1), "same id, next epoch");
    assert!(matches!(
        c.add_partitions("t", pid, 0, &[tp("a", 0)], 2),
        Err(Error::ProducerFenced(_))
    ));
    assert!(matches!(
        c.add_partitions("t", 7, 1, &[tp("a", 0)], 2),
        Err(Error::InvalidProducerIdMapping(_))
    ));
    // KIP-360: the producer asks to go on from where it is.
    let (_, e2) = c.init_producer_id("t", 60_000, Some((pid, 1)), &next, &m, 3).unwrap();
    assert_eq!(e2, 2);
    assert_eq!(
        c.init_producer_id("t", 60_000, Some((pid, 1)), &next, &m, 4).unwrap(),
        (pid, 2),
        "a retry"
    );
    assert!(matches!(
        c.init_producer_id("t", 60_000, Some((pid, 0)), &next, &m, 5),
        Err(Error::ProducerFenced(_))
    ));
}

#[test]
fn a_commit_writes_its_markers_then_completes() {
    let dir = tempfile::tempdir().unwrap();
    let (c, m, next) = (coordinator(dir.path()), Markers::default(), ids());
    let (pid, e) = c.init_producer_id("t", 60_000, None, &next, &m, 0).unwrap();
    assert!(
        matches!(c.end_txn("t", pid, e, true, &m, 1), Err(Error::InvalidTxnState(_))),
        "nothing open"
    );
    c.add_partitions("t", pid, e, &[tp("a", 0), tp("b", 1)], 1).unwrap();
    c.add_partitions("t", pid, e, &[tp("a", 0)], 2).unwrap();
    c.verify("t", pid, e, &tp("b", 1)).unwrap();
    assert!(matches!(
        c.verify("t", pid, e, &tp("c", 0)),
        Err(Error::InvalidTxnState(_))
    ));
    c.end_txn("t", pid, e, true, &m, 3).unwrap();
    let written = m.written.borrow().clone();
    assert_eq!(
        written,
        vec![
            (tp("a", 0), pid, e, MarkerType::Commit),
            (tp("b", 1), pid, e, MarkerType::Commit)
        ]
    );
    let meta = c.metadata("t").unwrap().unwrap();
    assert_eq!(meta.state, TransactionState::CompleteCommit);
    assert!(meta.partitions.is_empty());
    c.end_txn("t", pid, e, true, &m, 4).unwrap();
    assert_eq!(m.written.borrow().len(), 2, "a retried commit writes nothing");
    assert!(matches!(
        c.end_txn("t", pid, e, false, &m, 5),
        Err(Error::InvalidTxnState(_))
    ));
    // The next transaction starts afresh.
    c.add_partitions("t", pid, e, &[tp("c", 0)], 6).unwrap();
    assert_eq!(c.metadata("t").unwrap().unwrap().partitions.len(), 1);
}

#[test]
fn a_new_producer_aborts_the_open_transaction_of_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let (c, m, next) = (coordinator(dir.path()), Markers::default(), ids());
    let (pid, e) = c.init_producer_id("t", 60_000, None, &next, &m, 0).unwrap();
    c.add_partitions("t", pid, e, &[tp("a", 0)], 1).unwrap();
    assert!(matches!(
        c.init_producer_id("t", 60_000, None, &next, &m, 2),
        Err(Error::ConcurrentTransactions(_))
    ));
    assert_eq!(
        m.written.borrow()[0],
        (tp("a", 0), pid, e + 1, MarkerType::Abort),
        "fenced epoch"
    );
    assert_eq!(c.metadata("t").unwrap().unwrap().state, TransactionState::CompleteAbort);
    let (_, again) = c.init_producer_id("t", 60_000, None, &next, &m, 3).unwrap();
    assert_eq!(again, e + 2);
    assert!(matches!(
        c.end_txn("t", pid, e, false, &m, 4),
        Err(Error::ProducerFenced(_))
    ));
}

#[test]
fn a_decision_whose_markers_fail_completes_later_and_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let m = Markers::default();
    let next = ids();
    let (pid, e) = {
        let c = coordinator(dir.path());
        let (pid, e) = c.init_producer_id("t", 60_000, None, &next, &m, 0).unwrap();
        c.add_partitions("t", pid, e, &[tp("a", 0)], 1).unwrap();
        m.failing.set(true);
        c.end_txn("t", pid, e, false, &m, 2).unwrap();
        assert_eq!(
            c.metadata("t").unwrap().unwrap().state,
            TransactionState::PrepareAbort,
            "decided"
        );
        assert!(matches!(
            c.add_partitions("t", pid, e, &[tp("a", 0)], 3),
            Err(Error::ConcurrentTransactions(_))
        ));
        assert!(matches!(
            c.end_txn("t", pid, e, false, &m, 3),
            Err(Error::ConcurrentTransactions(_))
        ));
        (pid, e)
    };
    // The broker restarts; the decision is in __transaction_state.
    m.failing.set(false);
    let c = coordinator(dir.path());
    assert_eq!(c.metadata("t").unwrap().unwrap().state, TransactionState::PrepareAbort);
    c.complete_pending(&m, 10);
    assert_eq!(m.written.borrow()[0], (tp("a", 0), pid, e, MarkerType::Abort));
    assert_eq!(c.metadata("t").unwrap().unwrap().state, TransactionState::CompleteAbort);
}

#[test]
fn transactions_past_their_timeout_are_aborted_and_their_producer_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let (c, m, next) = (coordinator(dir.path()), Markers::default(), ids());
    let (pid, e) = c.init_producer_id("t", 1_000, None, &next, &m, 0).unwrap();
    c.add_partitions("t", pid, e, &[tp("a", 0)], 100).unwrap();
    assert!(c.abort_timed_out(&m, 1_100).is_empty());
    assert_eq!(c.abort_timed_out(&m, 1_101), vec!["t".to_string()]);
    assert_eq!(m.written.borrow()[0], (tp("a", 0), pid, e + 1, MarkerType::Abort));
    assert!(matches!(
        c.end_txn("t", pid, e, true, &m, 1_200),
        Err(Error::ProducerFenced(_))
    ));
}

/// Markers to a deleted topic fail as the partition does; the rest succeed.
struct GoneTopic(Markers);

impl MarkerWriter for GoneTopic {
    fn write_marker(&self, p: &TopicPartition, pid: i64, epoch: i16, marker: Marker) -> Result<()> {
        if p.0 == "deleted" {
            return Err(Error::UnknownTopicOrPartition {
                topic: p.0.clone(),
                partition: p.1,
            });
        }
        self.0.write_marker(p, pid, epoch, marker)
    }
}

#[test]
fn a_partition_deleted_during_the_transaction_needs_no_marker() {
    let dir = tempfile::tempdir().unwrap();
    let (c, m, next) = (coordinator(dir.path()), GoneTopic(Markers::default()), ids());
    let (pid, e) = c.init_producer_id("t", 60_000, None, &next, &m, 0).unwrap();
    c.add_partitions("t", pid, e, &[tp("deleted", 0), tp("kept", 0)], 1)
        .unwrap();
    c.end_txn("t", pid, e, true, &m, 2).unwrap();
    assert_eq!(
        c.metadata("t").unwrap().unwrap().state,
        TransactionState::CompleteCommit
    );
    assert_eq!(m.0.written.borrow().len(), 1, "the kept partition's marker");
}

#[test]
fn idle_transactional_ids_expire_and_stay_gone_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (c, m, next) = (coordinator(dir.path()), Markers::default(), ids());
        let (idle, e) = c.init_producer_id("idle", 60_000, None, &next, &m, 0).unwrap();
        c.add_partitions("idle", idle, e, &[tp("a", 0)], 10).unwrap();
        c.end_txn("idle", idle, e, true, &m, 20).unwrap();
        let (busy, e) = c.init_producer_id("busy", 60_000, None, &next, &m, 0).unwrap();
        c.add_partitions("busy", busy, e, &[tp("a", 0)], 10).unwrap();
        assert!(c.expire_ids(1_000, 1_019).is_empty(), "not idle long enough");
        // An open transaction is never expired (its timeout aborts it first).
        assert_eq!(c.expire_ids(1_000, 1_020), vec!["idle".to_string()]);
        assert!(c.metadata("idle").unwrap().is_none());
        assert!(c.metadata("busy").unwrap().is_some());
    }
    let (c, m, next) = (coordinator(dir.path()), Markers::default(), ids());
    assert!(c.metadata("idle").unwrap().is_none(), "the tombstone is replayed");
    let (pid, epoch) = c.init_producer_id("idle", 60_000, None, &next, &m, 2_000).unwrap();
    assert_eq!(epoch, 0, "a returning id starts afresh");
    assert!(pid > 1000);
}
