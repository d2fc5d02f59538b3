//! The group and member state machines with time passed in: joins and epochs,
//! revocation before assignment, expiry, fencing by the rebalance timeout,
//! static members, and the same group rebuilt from its records.

use super::*;

fn topics() -> TopicsView {
    TopicsView::new([
        ("orders".to_string(), Uuid::from_bytes([1; 16]), 4, false),
        ("stock".to_string(), Uuid::from_bytes([2; 16]), 2, false),
    ])
}

fn config() -> ConsumerConfig {
    ConsumerConfig {
        heartbeat_interval_ms: 100,
        session_timeout_ms: 1_000,
        ..Default::default()
    }
}

fn join(member: &str, topics: &[&str]) -> HeartbeatArgs {
    HeartbeatArgs {
        member_id: member.to_string(),
        member_epoch: 0,
        rebalance_timeout_ms: 500,
        subscribed_topic_names: Some(topics.iter().map(|t| t.to_string()).collect()),
        owned: Some(Assignment::new()),
        ..Default::default()
    }
}

fn beat(member: &str, epoch: i32, owned: Option<Assignment>) -> HeartbeatArgs {
    HeartbeatArgs {
        member_id: member.to_string(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned,
        ..Default::default()
    }
}

fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

/// Every partition held (assigned or pending revocation) by at most one member.
fn assert_no_double_owner(g: &ConsumerGroup) {
    let mut seen = BTreeSet::new();
    for m in g.members.values() {
        for tp in m.held() {
            assert!(seen.insert(tp), "{tp:?} held twice: {:?}", g.members);
        }
    }
}

#[test]
fn a_group_from_join_to_stable_and_back() {
    let (c, t) = (config(), topics());
    let mut g = ConsumerGroup::new("g");
    let mut out = Vec::new();
    assert_eq!(g.state(), ConsumerGroupState::Empty);
    let a = g.heartbeat(join("a", &["orders"]), &c, &t, 0, &mut out).unwrap();
    assert_eq!((a.member_epoch, a.heartbeat_interval_ms), (1, 100));
    assert_eq!(count(a.assignment.as_ref().unwrap()), 4);
    assert_eq!(g.state(), ConsumerGroupState::Stable);
    // b joins: Reconciling until a revoked two.
    let b = g.heartbeat(join("b", &["orders"]), &c, &t, 10, &mut out).unwrap();
    assert_eq!(b.member_epoch, 2);
    assert_eq!(count(b.assignment.as_ref().unwrap()), 0);
    assert_eq!(g.state(), ConsumerGroupState::Reconciling);
    let a = g.heartbeat(beat("a", 1, None), &c, &t, 20, &mut out).unwrap();
    let kept = a.assignment.unwrap();
    assert_eq!((a.member_epoch, count(&kept)), (1, 2));
    assert_no_double_owner(&g);
    let a = g
        .heartbeat(beat("a", 1, Some(kept.clone())), &c, &t, 30, &mut out)
        .unwrap();
    assert_eq!(a.member_epoch, 2);
    let b = g.heartbeat(beat("b", 2, None), &c, &t, 40, &mut out).unwrap();
    assert_eq!(count(b.assignment.as_ref().unwrap()), 2);
    assert_eq!(g.state(), ConsumerGroupState::Stable);
    assert_no_double_owner(&g);
    // b leaves: Assigning until the next heartbeat computes the target.
    let left = g.leave("b", None, -1, &c, 50, &mut out).unwrap();
    assert_eq!(left.member_epoch, -1);
    assert_eq!(g.state(), ConsumerGroupState::Assigning);
    let a = g.heartbeat(beat("a", 2, None), &c, &t, 60, &mut out).unwrap();
    assert_eq!((a.member_epoch, count(a.assignment.as_ref().unwrap())), (3, 4));
}

#[test]
fn silent_members_expire_and_slow_revokers_are_fenced() {
    let (c, t) = (config(), topics());
    let mut g = ConsumerGroup::new("g");
    let mut out = Vec::new();
    g.heartbeat(join("a", &["orders"]), &c, &t, 0, &mut out).unwrap();
    g.heartbeat(join("b", &["orders"]), &c, &t, 0, &mut out).unwrap();
    // a is asked to revoke (rebalance timeout 500 ms) and never confirms, but
    // keeps heartbeating: fenced by the rebalance timeout, not the session.
    g.heartbeat(beat("a", 1, None), &c, &t, 100, &mut out).unwrap();
    assert_eq!(g.members["a"].rec.state, MemberState::UnrevokedPartitions);
    g.heartbeat(beat("a", 1, None), &c, &t, 400, &mut out).unwrap();
    g.heartbeat(beat("b", 2, None), &c, &t, 400, &mut out).unwrap();
    assert!(g.tick(500, &mut out).is_empty());
    assert_eq!(g.tick(601, &mut out), ["a"]);
    // b, alone, gets everything; then goes silent past its session.
    let b = g.heartbeat(beat("b", 2, None), &c, &t, 700, &mut out).unwrap();
    assert_eq!(count(b.assignment.as_ref().unwrap()), 4);
    assert!(g.tick(1_699, &mut out).is_empty());
    assert_eq!(g.tick(1_700, &mut out), ["b"]);
    assert_eq!(g.state(), ConsumerGroupState::Empty);
}

#[test]
fn epochs_are_checked() {
    let (c, t) = (config(), topics());
    let mut g = ConsumerGroup::new("g");
    let mut out = Vec::new();
    g.heartbeat(join("a", &["orders"]), &c, &t, 0, &mut out).unwrap();
    assert!(matches!(
        g.heartbeat(beat("a", 2, None), &c, &t, 1, &mut out),
        Err(Error::FencedMemberEpoch(_))
    ));
    assert!(matches!(
        g.heartbeat(beat("x", 1, None), &c, &t, 1, &mut out),
        Err(Error::UnknownMemberId(_))
    ));
    // Rejoining with epoch 0 (after a fence) starts the member over.
    let again = g.heartbeat(join("a", &["orders"]), &c, &t, 2, &mut out).unwrap();
    assert_eq!(count(again.assignment.as_ref().unwrap()), 4);
    let capped = ConsumerConfig {
        max_size: 1,
        ..config()
    };
    assert!(matches!(
        g.heartbeat(join("b", &["orders"]), &capped, &t, 3, &mut out),
        Err(Error::GroupMaxSizeReached(_))
    ));
}

#[test]
fn a_static_member_comes_back_to_its_partitions() {
    let (c, t) = (config(), topics());
    let mut g = ConsumerGroup::new("g");
    let mut out = Vec::new();
    let static_join = |id: &str| HeartbeatArgs {
        instance_id: Some("i".to_string()),
        ..join(id, &["orders", "stock"])
    };
    let first = g.heartbeat(static_join("a1"), &c, &t, 0, &mut out).unwrap();
    g.heartbeat(join("b", &["orders", "stock"]), &c, &t, 0, &mut out)
        .unwrap();
    let mut confirm = beat("a1", first.member_epoch, None);
    confirm.instance_id = Some("i".to_string());
    let a = g.heartbeat(confirm.clone(), &c, &t, 10, &mut out).unwrap();
    confirm.owned = a.assignment.clone();
    g.heartbeat(confirm, &c, &t, 20, &mut out).unwrap();
    let epoch_before = g.group_epoch;
    let had = g.members["a1"].rec.assigned.clone();
    assert!(matches!(
        g.heartbeat(static_join("a2"), &c, &t, 25, &mut out),
        Err(Error::UnreleasedInstanceId(_))
    ));
    g.leave("a1", Some("i"), -2, &c, 30, &mut out).unwrap();
    assert_eq!(g.members["a1"].rec.epoch, -2);
    let back = g.heartbeat(static_join("a2"), &c, &t, 40, &mut out).unwrap();
    assert_eq!(back.assignment.unwrap(), had);
    assert_eq!(g.group_epoch, epoch_before, "no rebalance");
    assert!(!g.members.contains_key("a1"));
    // Away too long: the session ends it.
    g.leave("a2", Some("i"), -2, &c, 50, &mut out).unwrap();
    assert!(g.tick(1_051, &mut out).contains(&"a2".to_string()));
    assert!(g.static_member("i").is_none());
}

#[test]
fn regex_subscriptions_follow_topics() {
    let c = config();
    let mut g = ConsumerGroup::new("g");
    let mut out = Vec::new();
    let args = HeartbeatArgs {
        subscribed_topic_names: Some(vec![]),
        subscribed_topic_regex: Some("ord.*".to_string()),
        ..join("a", &[])
    };
    let a = g.heartbeat(args, &c, &topics(), 0, &mut out).unwrap();
    assert_eq!(count(a.assignment.as_ref().unwrap()), 4);
    let more = TopicsView::new([
        ("orders".to_string(), Uuid::from_bytes([1; 16]), 4, false),
        ("orders-eu".to_string(), Uuid::from_bytes([3; 16]), 3, false),
    ]);
    let a = g
        .heartbeat(beat("a", a.member_epoch, None), &c, &more, 10, &mut out)
        .unwrap();
    assert_eq!(count(a.assignment.as_ref().unwrap()), 7);
    assert_eq!(a.member_epoch, 2);
}

#[test]
fn the_records_rebuild_the_same_group() {
    let (c, t) = (config(), topics());
    let mut g = ConsumerGroup::new("g");
    let mut out = Vec::new();
    g.heartbeat(join("a", &["orders"]), &c, &t, 0, &mut out).unwrap();
    g.heartbeat(join("b", &["orders", "stock"]), &c, &t, 0, &mut out)
        .unwrap();
    g.heartbeat(beat("a", 1, None), &c, &t, 10, &mut out).unwrap();
    g.heartbeat(join("c", &["stock"]), &c, &t, 20, &mut out).unwrap();
    g.leave("c", None, -1, &c, 30, &mut out).unwrap();
    let mut rebuilt = ConsumerGroup::new("g");
    for r in out.clone() {
        // Through the bytes, as they are stored.
        let key = r.key().unwrap();
        let mut k = crate::record::reader::ByteReader::new(&key);
        let kind = k.i16().unwrap();
        rebuilt.replay(ConsumerRecord::decode(kind, &mut k, r.value()).unwrap());
    }
    assert_eq!(rebuilt.members, g.members);
    assert_eq!(rebuilt.target, g.target);
    assert_eq!(
        (rebuilt.group_epoch, rebuilt.assignment_epoch),
        (g.group_epoch, g.assignment_epoch)
    );
    assert_eq!(rebuilt.subscribed, g.subscribed);
    // Deleting: tombstones leave nothing behind.
    let mut gone = rebuilt.clone();
    for r in g.tombstones() {
        gone.replay(r);
    }
    assert!(gone.members.is_empty() && gone.target.is_empty());
}
