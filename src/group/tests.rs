//! State-machine tests: every transition and error case, with time passed in.

use bytes::Bytes;

use super::member::{JoinArgs, JoinResult, MemberProfile, MemberRef, Pending, SyncResult};
use super::state::{Group, GroupConfig, GroupState};
use crate::error::Error;

fn config(delay: i64) -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: delay,
        ..GroupConfig::default()
    }
}

fn args(member_id: &str, protocols: &[(&str, &[u8])]) -> JoinArgs {
    JoinArgs {
        profile: MemberProfile {
            member_id: member_id.to_string(),
            group_instance_id: None,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocols: protocols
                .iter()
                .map(|(n, m)| (n.to_string(), Bytes::copy_from_slice(m)))
                .collect(),
        },
        protocol_type: "consumer".into(),
        require_known_member_id: true,
    }
}

const RANGE: &[(&str, &[u8])] = &[("range", b"r")];

/// The answer if there is one yet.
fn poll<T>(p: &mut Pending<T>) -> Option<Result<T, Error>> {
    match p {
        Pending::Ready(_) => match std::mem::replace(p, Pending::Ready(Err(Error::RebalanceInProgress))) {
            Pending::Ready(r) => Some(r),
            Pending::Wait(_) => unreachable!(),
        },
        Pending::Wait(rx) => rx.try_recv().ok(),
    }
}

/// Join with an empty id, get MEMBER_ID_REQUIRED, rejoin with the id given.
fn join_new(g: &mut Group, cfg: &GroupConfig, a: JoinArgs, now: i64) -> (String, Pending<JoinResult>) {
    let mut first = g.join(a.clone(), cfg, now);
    let id = match poll(&mut first) {
        Some(Err(Error::MemberIdRequired(id))) => id,
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    };
    let second = g.join(
        JoinArgs {
            profile: MemberProfile {
                member_id: id.clone(),
                ..a.profile
            },
            ..a
        },
        cfg,
        now,
    );
    (id, second)
}

fn joined(p: &mut Pending<JoinResult>) -> JoinResult {
    poll(p).expect("answered").expect("joined")
}

fn synced(p: &mut Pending<SyncResult>) -> SyncResult {
    poll(p).expect("answered").expect("synced")
}

/// A Stable group with one member; returns its id.
fn stable_single(g: &mut Group, cfg: &GroupConfig) -> String {
    let (id, mut p) = join_new(g, cfg, args("", RANGE), 0);
    let r = joined(&mut p);
    let mut s = g.sync(
        MemberRef::new(&id, None, r.generation_id),
        vec![(id.clone(), Bytes::from_static(b"all"))],
        0,
    );
    assert_eq!(synced(&mut s).assignment, Bytes::from_static(b"all"));
    id
}

#[test]
fn member_ids_fit_every_response_whatever_the_client_id() {
    let cfg = config(0);
    let mut g = Group::new("g");
    let mut a = args("", RANGE);
    a.profile.client_id = "c".repeat(40_000);
    let (id, _) = join_new(&mut g, &cfg, a, 0);
    assert!(id.len() <= 255 + 1 + 36, "{} bytes", id.len());
    assert!(id.starts_with("ccc"));
}

#[test]
fn first_join_requires_a_member_id_then_completes() {
    let cfg = config(0);
    let mut g = Group::new("g");
    let (id, mut p) = join_new(&mut g, &cfg, args("", RANGE), 0);
    let r = joined(&mut p);
    assert_eq!(g.state, GroupState::CompletingRebalance);
    assert_eq!((r.generation_id, r.leader.as_str()), (1, id.as_str()));
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(r.members.len(), 1, "the leader gets the member list");
}

#[test]
fn the_initial_rebalance_delay_holds_the_first_join() {
    let cfg = config(3_000);
    let mut g = Group::new("g");
    let (_, mut p) = join_new(&mut g, &cfg, args("", RANGE), 1_000);
    assert!(poll(&mut p).is_none());
    g.tick(&cfg, 3_999);
    assert!(poll(&mut p).is_none());
    g.tick(&cfg, 4_000);
    assert_eq!(joined(&mut p).generation_id, 1);
}

#[test]
fn followers_wait_for_the_leaders_assignment() {
    let cfg = config(0);
    let mut g = Group::new("g");
    let leader = stable_single(&mut g, &cfg);
    // A second member joins a Stable group: rebalance.
    let (follower, mut fp) = join_new(&mut g, &cfg, args("", RANGE), 10);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert!(poll(&mut fp).is_none(), "held until the leader rejoins");
    assert!(matches!(
        g.heartbeat(MemberRef::new(&leader, None, 1), 20),
        Err(Error::RebalanceInProgress)
    ));
    let mut lp = g.join(args(&leader, RANGE), &cfg, 30);
    let lr = joined(&mut lp);
    let fr = joined(&mut fp);
    assert_eq!((lr.generation_id, fr.generation_id), (2, 2));
    assert_eq!(lr.members.len(), 2);
    assert!(fr.members.is_empty());
    // The follower's sync waits; the leader's sync answers both.
    let mut fs = g.sync(MemberRef::new(&follower, None, 2), vec![], 40);
    assert!(poll(&mut fs).is_none());
    let assignments = vec![
        (leader.clone(), Bytes::from_static(b"p0")),
        (follower.clone(), Bytes::from_static(b"p1")),
    ];
    let mut ls = g.sync(MemberRef::new(&leader, None, 2), assignments, 50);
    assert_eq!(synced(&mut ls).assignment, Bytes::from_static(b"p0"));
    assert_eq!(synced(&mut fs).assignment, Bytes::from_static(b"p1"));
    assert_eq!(g.state, GroupState::Stable);
    assert!(g.take_dirty());
    g.heartbeat(MemberRef::new(&follower, None, 2), 60).unwrap();
}

#[test]
fn sync_and_heartbeat_errors() {
    let cfg = config(0);
    let mut g = Group::new("g");
    let id = stable_single(&mut g, &cfg);
    assert!(matches!(
        poll(&mut g.sync(MemberRef::new(&id, None, 9), vec![], 0)),
        Some(Err(Error::IllegalGeneration { found: 9, current: 1 }))
    ));
    assert!(matches!(
        poll(&mut g.sync(MemberRef::new("nobody", None, 1), vec![], 0)),
        Some(Err(Error::UnknownMemberId(_)))
    ));
    assert!(matches!(
        g.heartbeat(MemberRef::new(&id, None, 0), 0),
        Err(Error::IllegalGeneration { .. })
    ));
    assert!(matches!(
        g.heartbeat(MemberRef::new("nobody", None, 1), 0),
        Err(Error::UnknownMemberId(_))
    ));
    // Stable: a sync returns the assignment at once.
    assert_eq!(
        synced(&mut g.sync(MemberRef::new(&id, None, 1), vec![], 0)).assignment,
        Bytes::from_static(b"all")
    );
    // During a rebalance, sync says so.
    let _newcomer = join_new(&mut g, &cfg, args("", RANGE), 0);
    assert!(matches!(
        poll(&mut g.sync(MemberRef::new(&id, None, 1), vec![], 0)),
        Some(Err(Error::RebalanceInProgress))
    ));
}

#[test]
fn silent_members_expire_after_their_session_timeout() {
    let cfg = config(0);
    let mut g = Group::new("g");
    let id = stable_single(&mut g, &cfg);
    g.heartbeat(MemberRef::new(&id, None, 1), 5_000).unwrap();
    g.tick(&cfg, 14_999);
    assert_eq!(g.members.len(), 1);
    g.tick(&cfg, 15_000);
    assert!(g.members.is_empty());
    assert_eq!(g.state, GroupState::Empty);
    assert_eq!(g.generation_id, 2);
}

#[test]
fn sessions_start_again_after_the_broker_was_paused() {
    let cfg = config(0);
    let mut g = Group::new("g");
    let id = stable_single(&mut g, &cfg);
    g.heartbeat(MemberRef::new(&id, None, 1), 5_000).unwrap();
    // Paused from 6 s to 40 s: the member could not heartbeat meanwhile.
    g.restart_sessions(40_000);
    g.tick(&cfg, 49_999);
    assert_eq!(g.members.len(), 1, "a session from the resumption");
    g.tick(&cfg, 50_000);
    assert!(g.members.is_empty());
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() {
    let cfg = config(0);
    let mut g = Group::new("g");
    let stale = stable_single(&mut g, &cfg);
    let (newcomer, mut p) = join_new(&mut g, &cfg, args("", RANGE), 1_000);
    // The old member keeps heartbeating but never rejoins.
    for t in (2_000..31_000).step_by(2_000) {
        let _ = g.heartbeat(MemberRef::new(&stale, None, 1), t);
        g.tick(&cfg, t);
    }
    assert!(poll(&mut p).is_none());
    g.tick(&cfg, 31_000);
    let r = joined(&mut p);
    assert_eq!(r.leader, newcomer);
    assert_eq!(g.members.len(), 1);
    assert!(matches!(
        g.heartbeat(MemberRef::new(&stale, None, 2), 31_000),
        Err(Error::UnknownMemberId(_))
    ));
}

#[test]
fn leaving_triggers_a_rebalance_and_unknown_members_are_refused() {
    let cfg = config(0);
    let mut g = Group::new("g");
    let id = stable_single(&mut g, &cfg);
    assert!(matches!(
        g.leave("nobody", None, &cfg, 0),
        Err(Error::UnknownMemberId(_))
    ));
    g.leave(&id, None, &cfg, 0).unwrap();
    assert_eq!(g.state, GroupState::Empty);
    assert!(matches!(
        poll(&mut g.join(args("gone", RANGE), &cfg, 0)),
        Some(Err(Error::UnknownMemberId(_)))
    ));
}

#[test]
fn a_restarted_static_member_takes_its_place_without_a_rebalance() {
    let cfg = config(0);
    let mut g = Group::new("g");
    let mut a = args("", RANGE);
    a.profile.group_instance_id = Some("inst".into());
    let mut p = g.join(a.clone(), &cfg, 0); // static members need no MEMBER_ID_REQUIRED
    let r = joined(&mut p);
    let old = r.member_id.clone();
    synced(&mut g.sync(
        MemberRef::new(&old, Some("inst"), 1),
        vec![(old.clone(), Bytes::from_static(b"mine"))],
        0,
    ));
    g.take_dirty();

    let mut again = g.join(a.clone(), &cfg, 100);
    let r2 = joined(&mut again);
    assert_ne!(r2.member_id, old);
    assert_eq!(r2.generation_id, 1, "same generation: no rebalance");
    assert!(r2.skip_assignment, "the static leader keeps the assignment");
    assert_eq!(g.state, GroupState::Stable);
    assert!(g.take_dirty(), "the new member id is recorded");
    let new_id = r2.member_id;
    assert_eq!(
        synced(&mut g.sync(MemberRef::new(&new_id, Some("inst"), 1), vec![], 100)).assignment,
        Bytes::from_static(b"mine")
    );
    // The old incarnation is fenced.
    assert!(matches!(
        g.heartbeat(MemberRef::new(&old, Some("inst"), 1), 100),
        Err(Error::FencedInstanceId(_))
    ));
    // Leaving by instance id works.
    g.leave("", Some("inst"), &cfg, 200).unwrap();
    assert!(g.members.is_empty());
}

#[test]
fn protocols_must_be_compatible_and_sessions_in_range() {
    let cfg = config(0);
    let mut g = Group::new("g");
    stable_single(&mut g, &cfg);
    let mut other = args("", &[("roundrobin", b"x")]);
    assert!(matches!(
        poll(&mut g.join(other.clone(), &cfg, 0)),
        Some(Err(Error::InconsistentGroupProtocol))
    ));
    other.profile.protocols = RANGE
        .iter()
        .map(|(n, m)| (n.to_string(), Bytes::copy_from_slice(m)))
        .collect();
    other.profile.session_timeout_ms = 10;
    assert!(matches!(
        poll(&mut g.join(other, &cfg, 0)),
        Some(Err(Error::InvalidSessionTimeout(10)))
    ));
}

#[test]
fn the_protocol_most_members_prefer_wins() {
    let cfg = config(0);
    let mut g = Group::new("g");
    let both_rr_first: &[(&str, &[u8])] = &[("roundrobin", b"a"), ("range", b"b")];
    let both_range_first: &[(&str, &[u8])] = &[("range", b"a"), ("roundrobin", b"b")];
    let (_, mut p1) = join_new(&mut g, &cfg, args("", both_range_first), 0);
    let r1 = joined(&mut p1);
    assert_eq!(r1.protocol_name.as_deref(), Some("range"));
    let (_, mut p2) = join_new(&mut g, &cfg, args("", both_rr_first), 0);
    let (_, mut p3) = join_new(&mut g, &cfg, args("", both_rr_first), 0);
    let mut p1 = g.join(args(&r1.member_id, both_range_first), &cfg, 0);
    let r = joined(&mut p1);
    assert_eq!(r.protocol_name.as_deref(), Some("roundrobin"));
    assert_eq!(joined(&mut p2).generation_id, joined(&mut p3).generation_id);
}

#[test]
fn commits_are_checked_against_membership() {
    let cfg = config(0);
    let mut g = Group::new("g");
    g.validate_commit(MemberRef::new("", None, -1)).unwrap();
    let (id, mut p) = join_new(&mut g, &cfg, args("", RANGE), 0);
    joined(&mut p);
    assert!(matches!(
        g.validate_commit(MemberRef::new(&id, None, 1)),
        Err(Error::RebalanceInProgress)
    ));
    assert!(matches!(
        g.validate_commit(MemberRef::new("", None, -1)),
        Err(Error::UnknownMemberId(_))
    ));
    synced(&mut g.sync(MemberRef::new(&id, None, 1), vec![], 0));
    g.validate_commit(MemberRef::new(&id, None, 1)).unwrap();
    assert!(matches!(
        g.validate_commit(MemberRef::new(&id, None, 0)),
        Err(Error::IllegalGeneration { .. })
    ));
    assert!(matches!(g.mark_dead(), Err(Error::NonEmptyGroup(_))));
}

#[test]
fn transactional_commits_follow_kip_447() {
    let cfg = config(0);
    let mut g = Group::new("g");
    let (id, mut p) = join_new(&mut g, &cfg, args("", RANGE), 0);
    joined(&mut p);
    // Without group metadata (kafkajs, TxnOffsetCommit v0–2) a commit is
    // accepted even while the group has members and is rebalancing.
    g.validate_txn_commit(MemberRef::new("", None, -1)).unwrap();
    // With it, mid-rebalance commits of the current generation pass too: the
    // transaction, not the generation, keeps them safe.
    g.validate_txn_commit(MemberRef::new(&id, None, 1)).unwrap();
    assert!(matches!(
        g.validate_txn_commit(MemberRef::new(&id, None, 0)),
        Err(Error::IllegalGeneration { .. })
    ));
    assert!(matches!(
        g.validate_txn_commit(MemberRef::new("zombie", None, 1)),
        Err(Error::UnknownMemberId(_))
    ));
    // A known member naming an instance id the group does not know.
    assert!(matches!(
        g.validate_txn_commit(MemberRef::new(&id, Some("stranger"), 1)),
        Err(Error::UnknownMemberId(_))
    ));
}
