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

/// A classic JoinGroup's arguments: a "consumer" subscription to `topics`.
fn classic_join_args(member: &str, instance: Option<&str>, topics: &[&str]) -> crate::group::member::JoinArgs {
    use bytes::BufMut;
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let mut sub = ConsumerProtocolSubscription::default();
    sub.topics = topics.iter().map(|t| StrBytes::from_string(t.to_string())).collect();
    let mut meta = bytes::BytesMut::new();
    meta.put_i16(1);
    sub.encode(&mut meta, 1).unwrap();
    crate::group::member::JoinArgs {
        profile: crate::group::member::MemberProfile {
            member_id: member.to_string(),
            group_instance_id: instance.map(str::to_string),
            client_id: "classic".to_string(),
            client_host: "/127.0.0.1".to_string(),
            session_timeout_ms: 1_000,
            rebalance_timeout_ms: 500,
            protocols: vec![("range".to_string(), meta.freeze())],
        },
        protocol_type: "consumer".to_string(),
        require_known_member_id: true,
    }
}

#[test]
fn classic_members_inside_a_consumer_group() {
    use crate::group::member::MemberRef;
    let (c, t) = (config(), topics());
    let mut g = ConsumerGroup::new("g");
    let mut out = Vec::new();
    let a = g.heartbeat(join("a", &["orders"]), &c, &t, 0, &mut out).unwrap();
    // A consumer-protocol member's id is not a classic member's.
    assert!(matches!(
        g.classic_join(classic_join_args("a", None, &["orders"]), &c, &t, 1, &mut out),
        Err(Error::UnknownMemberId(_))
    ));
    // A new classic member first learns its id, then joins with no leader.
    let Err(Error::MemberIdRequired(id)) =
        g.classic_join(classic_join_args("", None, &["orders"]), &c, &t, 1, &mut out)
    else {
        panic!("MEMBER_ID_REQUIRED expected")
    };
    let joined = g
        .classic_join(classic_join_args(&id, None, &["orders"]), &c, &t, 2, &mut out)
        .unwrap();
    assert_eq!(joined.leader, "");
    assert_eq!(joined.generation_id, g.members[&id].rec.epoch);
    // a gives two up; the classic member's heartbeat says rejoin until it can get them.
    let kept = g
        .heartbeat(beat("a", a.member_epoch, None), &c, &t, 3, &mut out)
        .unwrap()
        .assignment
        .unwrap();
    g.heartbeat(beat("a", a.member_epoch, Some(kept)), &c, &t, 4, &mut out)
        .unwrap();
    let caller = MemberRef::new(&id, None, joined.generation_id);
    assert!(matches!(
        g.classic_heartbeat(caller, 5),
        Err(Error::RebalanceInProgress)
    ));
    let again = g
        .classic_join(classic_join_args(&id, None, &["orders"]), &c, &t, 6, &mut out)
        .unwrap();
    let synced = g
        .classic_sync(MemberRef::new(&id, None, again.generation_id), &t, 7)
        .unwrap();
    let got = crate::group::assignment::decode_assignment(&synced.assignment);
    assert_eq!(got.iter().map(|(_, ps)| ps.len()).sum::<usize>(), 2);
    assert!(g
        .classic_heartbeat(MemberRef::new(&id, None, again.generation_id), 8)
        .is_ok());
    assert!(matches!(
        g.classic_heartbeat(MemberRef::new(&id, None, again.generation_id + 1), 8),
        Err(Error::IllegalGeneration { .. })
    ));
    assert_no_double_owner(&g);
    // Only classic members left: the group can turn classic.
    assert!(g.to_classic(&t, 9).is_none());
    g.leave("a", None, -1, &c, 9, &mut out).unwrap();
    let classic = g.to_classic(&t, 10).expect("a classic group");
    assert_eq!(classic.members.len(), 1);
}

#[test]
fn a_classic_member_taking_over_an_absent_static_member_starts_at_epoch_zero() {
    use crate::group::member::MemberRef;
    let (c, t) = (config(), topics());
    let mut g = ConsumerGroup::new("g");
    let mut out = Vec::new();
    let s = HeartbeatArgs {
        instance_id: Some("i".to_string()),
        ..join("s1", &["orders"])
    };
    g.heartbeat(s, &c, &t, 0, &mut out).unwrap();
    g.leave("s1", Some("i"), -2, &c, 1, &mut out).unwrap();
    let joined = g
        .classic_join(classic_join_args("", Some("i"), &["orders"]), &c, &t, 2, &mut out)
        .unwrap();
    assert!(joined.generation_id > 0, "generation {}", joined.generation_id);
    let caller = MemberRef::new(&joined.member_id, Some("i"), joined.generation_id);
    let synced = g.classic_sync(caller, &t, 3).unwrap();
    assert_eq!(
        crate::group::assignment::decode_assignment(&synced.assignment)[0]
            .1
            .len(),
        4
    );
    assert!(g.classic_heartbeat(caller, 4).is_ok());
}

#[test]
fn a_classic_member_that_heartbeats_is_a_consumer_member_and_restarts_keep_revocation_deadlines() {
    let (c, t) = (config(), topics());
    let mut g = ConsumerGroup::new("g");
    let mut out = Vec::new();
    let joined = g
        .classic_join(classic_join_args("", Some("i"), &["orders"]), &c, &t, 0, &mut out)
        .unwrap();
    assert!(g.members[&joined.member_id].meta.classic.is_some());
    let mut hb = beat(&joined.member_id, joined.generation_id, None);
    hb.instance_id = Some("i".to_string());
    g.heartbeat(hb, &c, &t, 1, &mut out).unwrap();
    assert!(g.members[&joined.member_id].meta.classic.is_none());

    // A member owing a revocation when the broker stops still owes it after.
    g.heartbeat(join("b", &["orders"]), &c, &t, 2, &mut out).unwrap();
    let mut hb = beat(&joined.member_id, joined.generation_id, None);
    hb.instance_id = Some("i".to_string());
    g.heartbeat(hb, &c, &t, 3, &mut out).unwrap();
    assert_eq!(g.members[&joined.member_id].rec.state, MemberState::UnrevokedPartitions);
    let mut restarted = g.clone();
    restarted.restart_timers(&c, 10_000);
    assert!(restarted.tick(10_499, &mut out).is_empty());
    assert!(restarted.tick(10_500, &mut out).contains(&joined.member_id));
}

#[test]
fn a_static_classic_member_restarted_on_the_consumer_protocol_takes_its_slot_at_once() {
    let (c, t) = (config(), topics());
    let mut g = ConsumerGroup::new("g");
    let mut out = Vec::new();
    let classic = g
        .classic_join(classic_join_args("", Some("i"), &["orders"]), &c, &t, 0, &mut out)
        .unwrap();
    let had = g.members[&classic.member_id].rec.assigned.clone();
    // The same instance id, now with group.protocol=consumer: no
    // UNRELEASED_INSTANCE_ID while the classic process is still in the group.
    let args = HeartbeatArgs {
        instance_id: Some("i".to_string()),
        ..join("new-id", &["orders"])
    };
    let r = g.heartbeat(args, &c, &t, 1, &mut out).unwrap();
    assert_eq!(r.assignment.unwrap(), had);
    assert!(!g.members.contains_key(&classic.member_id));
    assert!(g.members["new-id"].meta.classic.is_none());
    // The old classic process coming back now meets a consumer member.
    assert!(matches!(
        g.classic_join(classic_join_args("", Some("i"), &["orders"]), &c, &t, 2, &mut out),
        Err(Error::UnreleasedInstanceId(_))
    ));
}
