//! Offsets committed in transactions: pending until the marker, unstable for
//! require_stable fetches, dropped on abort, and the same after a restart.

use super::*;
use crate::log::config::LogConfig;
use crate::record::control::{Marker, MarkerType};

fn offset(o: i64) -> OffsetCommitValue {
    OffsetCommitValue {
        offset: o,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp: 0,
    }
}

fn tp(p: i32) -> TopicPartition {
    ("in".to_string(), p)
}

/// The logs of `dir` and a group coordinator on them.
fn open(dir: &std::path::Path) -> (Arc<LogManager>, GroupShard) {
    let logs = Arc::new(LogManager::open(dir, LogConfig::default(), 0).unwrap());
    let c = GroupShard::open(&logs, GroupConfig::default(), 0).unwrap();
    (logs, c)
}

/// The committed offset of partition `p` for group "g", or the error.
fn fetched(c: &GroupShard, p: i32, require_stable: bool) -> Result<Option<i64>> {
    let mut all = c.fetch_offsets("g", Some(vec![tp(p)]), require_stable);
    all.remove(0).1.map(|v| v.map(|v| v.offset))
}

/// The marker the transaction coordinator writes, then its notice to the group
/// coordinator (what `broker::Markers` does).
fn end(logs: &LogManager, c: &GroupShard, pid: i64, epoch: i16, kind: MarkerType) {
    let log = logs.partition(OFFSETS_TOPIC, 0).unwrap();
    let marker = Marker {
        kind,
        coordinator_epoch: 0,
    };
    log.append_marker(pid, epoch, marker, 0).unwrap();
    c.complete_txn(pid, kind == MarkerType::Commit);
}

/// A TxnOffsetCommit the transaction coordinator has verified (just now).
async fn txn_commit(c: &GroupShard, pid: i64, epoch: i16, p: i32, o: i64) -> Result<()> {
    let producer = VerifiedProducer {
        id: pid,
        epoch,
        guard: c.verification_guard(pid),
    };
    let results = c
        .txn_commit(
            "g",
            producer,
            MemberRef::new("", None, -1),
            vec![(tp(p), offset(o))],
            |_, _| true,
            0,
        )
        .await?;
    results.into_iter().next().unwrap().1
}

#[tokio::test]
async fn transactional_offsets_count_once_committed_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (logs, c) = open(dir.path());
        c.commit(
            "g",
            MemberRef::new("", None, -1),
            vec![(tp(0), offset(5))],
            |_, _| true,
            0,
        )
        .await
        .unwrap();

        // Producer 7 commits 10 in a transaction: pending, unstable.
        txn_commit(&c, 7, 0, 0, 10).await.unwrap();
        assert_eq!(fetched(&c, 0, false).unwrap(), Some(5));
        assert!(matches!(fetched(&c, 0, true), Err(Error::UnstableOffsetCommit(..))));
        end(&logs, &c, 7, 0, MarkerType::Commit);
        assert_eq!(fetched(&c, 0, true).unwrap(), Some(10));

        // Producer 7's next transaction (partition 1) aborts.
        txn_commit(&c, 7, 0, 1, 99).await.unwrap();
        end(&logs, &c, 7, 0, MarkerType::Abort);
        assert_eq!(fetched(&c, 1, true).unwrap(), None);

        // Producer 8 leaves one open: a stale epoch is fenced by the log.
        txn_commit(&c, 8, 3, 2, 20).await.unwrap();
        assert!(matches!(
            txn_commit(&c, 8, 2, 2, 21).await,
            Err(Error::InvalidProducerEpoch { .. })
        ));
    }
    let (logs, c) = open(dir.path());
    assert_eq!(fetched(&c, 0, true).unwrap(), Some(10), "committed in a transaction");
    assert_eq!(fetched(&c, 1, true).unwrap(), None, "aborted");
    assert!(
        matches!(fetched(&c, 2, true), Err(Error::UnstableOffsetCommit(..))),
        "still open"
    );
    end(&logs, &c, 8, 3, MarkerType::Commit);
    assert_eq!(fetched(&c, 2, true).unwrap(), Some(20));
}

/// A TxnOffsetCommit verified before its transaction ended, arriving after the
/// marker, is refused: otherwise its offsets would stay pending (unstable) for
/// good and the acknowledged commit would never count.
#[tokio::test]
async fn a_commit_verified_before_the_marker_is_refused_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, c) = open(dir.path());
    txn_commit(&c, 7, 0, 0, 10).await.unwrap();
    let late = c.verification_guard(7);
    end(&logs, &c, 7, 0, MarkerType::Commit);
    let refused = c
        .txn_commit(
            "g",
            VerifiedProducer {
                id: 7,
                epoch: 0,
                guard: late,
            },
            MemberRef::new("", None, -1),
            vec![(tp(0), offset(11))],
            |_, _| true,
            0,
        )
        .await;
    assert!(matches!(refused, Err(Error::InvalidTxnState(_))), "{refused:?}");
    assert_eq!(
        fetched(&c, 0, true).unwrap(),
        Some(10),
        "stable, the late offset not taken"
    );
}

async fn plain_commit(c: &GroupShard, p: i32, o: i64) {
    let results = c
        .commit(
            "g",
            MemberRef::new("", None, -1),
            vec![(tp(p), offset(o))],
            |_, _| true,
            0,
        )
        .await
        .unwrap();
    results.into_iter().next().unwrap().1.unwrap();
}

/// When a transaction's offsets complete, each partition keeps the later of its
/// records (Kafka's replayEndTransactionMarker), live and after a restart.
#[tokio::test]
async fn the_later_record_wins_when_a_transaction_commits() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (logs, c) = open(dir.path());
        // Partition 0: transactional 10, then a plain 20; the commit keeps 20.
        txn_commit(&c, 7, 0, 0, 10).await.unwrap();
        plain_commit(&c, 0, 20).await;
        // Partition 1: a plain 30, then transactional 40; the commit takes 40.
        plain_commit(&c, 1, 30).await;
        txn_commit(&c, 7, 0, 1, 40).await.unwrap();
        end(&logs, &c, 7, 0, MarkerType::Commit);
        assert_eq!(fetched(&c, 0, true).unwrap(), Some(20));
        assert_eq!(fetched(&c, 1, true).unwrap(), Some(40));
    }
    let (_logs, c) = open(dir.path());
    assert_eq!(fetched(&c, 0, true).unwrap(), Some(20), "after a restart");
    assert_eq!(fetched(&c, 1, true).unwrap(), Some(40), "after a restart");
}

/// OffsetDelete and DeleteGroups remove offsets still pending in a
/// transaction too: the tombstone ends them, so the transaction's commit does
/// not bring them back, live or after a restart.
#[tokio::test]
async fn deleting_offsets_or_the_group_drops_pending_ones() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (logs, c) = open(dir.path());
        txn_commit(&c, 7, 0, 0, 10).await.unwrap();
        txn_commit(&c, 7, 0, 1, 11).await.unwrap();
        let deleted = c.delete_offsets("g", vec![tp(0)], 0).await.unwrap();
        assert!(deleted[0].1.is_ok());
        assert_eq!(fetched(&c, 0, true).unwrap(), None, "stable: nothing pending");
        assert!(matches!(fetched(&c, 1, true), Err(Error::UnstableOffsetCommit(..))));
        end(&logs, &c, 7, 0, MarkerType::Commit);
        assert_eq!(fetched(&c, 0, true).unwrap(), None, "not brought back by the commit");
        assert_eq!(fetched(&c, 1, true).unwrap(), Some(11));

        // A group whose only offset is pending can be deleted, and it goes.
        txn_commit(&c, 8, 0, 2, 12).await.unwrap();
        c.delete_group("g", 0).await.unwrap();
        end(&logs, &c, 8, 0, MarkerType::Commit);
        assert_eq!(fetched(&c, 2, true).unwrap(), None);
    }
    let (_logs, c) = open(dir.path());
    for p in 0..3 {
        assert_eq!(fetched(&c, p, true).unwrap(), None, "partition {p} after a restart");
    }
}

#[tokio::test]
async fn a_consumer_group_takes_transactional_offsets_without_a_member_identity() {
    use crate::group::consumer::group::HeartbeatArgs;
    let dir = tempfile::tempdir().unwrap();
    let (logs, c) = open(dir.path());
    logs.create_topic("in", 1, &Default::default(), 0).unwrap();
    let joined = c
        .consumer_heartbeat(
            "g",
            HeartbeatArgs {
                member_id: "m".into(),
                rebalance_timeout_ms: 1_000,
                subscribed_topic_names: Some(vec!["in".into()]),
                owned: Some(Default::default()),
                ..Default::default()
            },
            0,
        )
        .await
        .unwrap();
    assert_eq!(joined.member_epoch, 1);
    // sendOffsetsToTransaction(offsets, groupId): epoch −1, no member id.
    txn_commit(&c, 9, 0, 0, 42).await.unwrap();
    end(&logs, &c, 9, 0, MarkerType::Commit);
    assert_eq!(fetched(&c, 0, true).unwrap(), Some(42));
    // With the member's identity, a stale epoch is ILLEGAL_GENERATION (KIP-447).
    let producer = VerifiedProducer {
        id: 10,
        epoch: 0,
        guard: c.verification_guard(10),
    };
    let stale = c
        .txn_commit(
            "g",
            producer,
            MemberRef::new("m", None, 0),
            vec![(tp(0), offset(50))],
            |_, _| true,
            0,
        )
        .await;
    assert!(matches!(stale, Err(Error::IllegalGeneration { .. })));
}

/// A marker that lands while a new leader loads the partition (after the
/// load read the log) still completes the transaction's offsets.
#[tokio::test]
async fn a_transaction_ended_while_its_shard_loads_completes() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, c) = open(dir.path());
    txn_commit(&c, 9, 0, 0, 42).await.unwrap();
    drop(c);
    let router = crate::group::router::GroupCoordinator::new(
        GroupConfig::default(),
        crate::group::router::Catalog::local(&logs),
    );
    assert!(router.begin_load(0, 1));
    assert!(matches!(router.shard("g"), Err(Error::CoordinatorLoadInProgress(0))));
    // The marker is not in the log the load reads: only its notice arrives.
    router.complete_txn(0, 9, true);
    let log = logs.partition(OFFSETS_TOPIC, 0).unwrap();
    router.finish_load(0, 1, Arc::new(LocalLog(log)), 0).unwrap();
    assert_eq!(fetched(&router.shard("g").unwrap(), 0, true).unwrap(), Some(42));
    // Loaded again at the same epoch: nothing to do; at another, reloaded.
    assert!(!router.begin_load(0, 1));
    router.resign(0);
    assert!(matches!(router.shard("g"), Err(Error::NotCoordinator)));
}
