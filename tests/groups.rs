//! Consumer groups with librdkafka (the rdkafka crate): balancing, rebalancing,
//! expiry, committed offsets across restarts, static members, cooperative-sticky.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use common::group::{create_topic, eventually, fill, Event, GroupMember};
use common::*;
use rdkafka::producer::FutureProducer;
use strom::config::Config;

fn fast_groups(c: &mut Config) {
    c.group.initial_rebalance_delay_ms = 0;
    c.group.min_session_timeout_ms = 1000;
}

/// One "end" record to each partition, and wait until the group has read them all:
/// every record sent before them (in each partition's order) has been delivered by
/// then, so counts taken afterwards are final.
async fn read_to_the_end(p: &FutureProducer, topic: &str, partitions: i32, members: &[&GroupMember]) {
    fill(p, topic, partitions, 1, "end").await;
    eventually(30, "the end records", || {
        count_tagged(members, "end") == partitions as usize
    })
    .await;
}

fn all_records(members: &[&GroupMember]) -> Vec<(i32, i64, Vec<u8>)> {
    members.iter().flat_map(|m| m.records()).collect()
}

fn count_tagged(members: &[&GroupMember], tag: &str) -> usize {
    all_records(members)
        .iter()
        .filter(|r| r.2.starts_with(tag.as_bytes()))
        .map(|r| r.2.clone())
        .collect::<HashSet<_>>()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_consumers_split_six_partitions_and_rebalance_when_one_leaves() {
    let broker = TestBroker::start_with(fast_groups).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "g-orders", 6).await;
    let mut members: Vec<GroupMember> = (0..3)
        .map(|_| GroupMember::start(&bootstrap, "order-service", "g-orders", &[]))
        .collect();
    eventually(30, "two partitions each", || {
        members.iter().all(|m| m.assignment().len() == 2)
    })
    .await;
    let union: BTreeSet<i32> = members.iter().flat_map(|m| m.assignment()).collect();
    assert_eq!(union, (0..6).collect());

    let p = producer(&bootstrap, &[]);
    fill(&p, "g-orders", 6, 50, "first").await;
    let refs: Vec<&GroupMember> = members.iter().collect();
    eventually(30, "300 records consumed", || all_records(&refs).len() >= 300).await;
    read_to_the_end(&p, "g-orders", 6, &refs).await;
    let consumed: Vec<_> = all_records(&refs)
        .into_iter()
        .filter(|r| r.2.starts_with(b"first"))
        .collect();
    assert_eq!(consumed.len(), 300, "every record exactly once");
    let unique: HashSet<_> = consumed.iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(unique.len(), 300);

    // One member leaves: the other two take over its partitions.
    let mut leaving = members.pop().unwrap();
    leaving.stop().await;
    eventually(30, "three partitions each", || {
        members.iter().all(|m| m.assignment().len() == 3)
    })
    .await;
    fill(&p, "g-orders", 6, 20, "second").await;
    let refs: Vec<&GroupMember> = members.iter().collect();
    eventually(30, "all new records consumed", || count_tagged(&refs, "second") == 120).await;
    for mut m in members {
        m.stop().await;
    }
}

/// Join `group` as a raw protocol member subscribed to `topic`, take the
/// assignment, and return without ever heartbeating: a consumer killed with -9.
async fn join_and_go_silent(addr: std::net::SocketAddr, group: &str, topic: &str, session_ms: i32) -> String {
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    let mut sub = ConsumerProtocolSubscription::default();
    sub.topics = vec![StrBytes::from_string(topic.to_string())];
    let mut meta = BytesMut::new();
    meta.put_i16(0);
    sub.encode(&mut meta, 0).unwrap();
    let mut w = common::wire::Wire::connect(addr).await;
    let mut join = JoinGroupRequest::default();
    join.group_id = GroupId(StrBytes::from_string(group.to_string()));
    join.session_timeout_ms = session_ms;
    join.rebalance_timeout_ms = 10_000;
    join.protocol_type = StrBytes::from_static_str("consumer");
    let mut range = JoinGroupRequestProtocol::default();
    range.name = StrBytes::from_static_str("range");
    range.metadata = meta.freeze();
    join.protocols = vec![range];
    let first = w.call(5, &join).await;
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    join.member_id = first.member_id.clone();
    let joined = w.call(5, &join).await;
    assert_eq!(joined.error_code, 0);
    let mut sync = SyncGroupRequest::default();
    sync.group_id = join.group_id.clone();
    sync.generation_id = joined.generation_id;
    sync.member_id = joined.member_id.clone();
    if joined.leader == joined.member_id {
        let mut a = SyncGroupRequestAssignment::default();
        a.member_id = joined.member_id.clone();
        sync.assignments = vec![a];
    }
    let synced = w.call(3, &sync).await;
    assert_eq!(synced.error_code, 0);
    joined.member_id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_heartbeating_is_expired_and_its_partitions_move() {
    let broker = TestBroker::start_with(fast_groups).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "g-expire", 4).await;
    let mut healthy = GroupMember::start(&bootstrap, "expiry", "g-expire", &[]);
    eventually(30, "all four partitions", || healthy.assignment().len() == 4).await;
    join_and_go_silent(broker.addr(), "expiry", "g-expire", 2000).await;
    eventually(30, "the healthy member gives up two", || {
        healthy.assignment().len() == 2
    })
    .await;
    // No heartbeat from the silent one: after its 2 s session it is expired and
    // the healthy member gets everything back.
    eventually(30, "all four partitions again", || healthy.assignment().len() == 4).await;
    healthy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_survive_a_broker_restart_and_consumers_resume_from_them() {
    let mut broker = TestBroker::start_with(fast_groups).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "g-resume", 2).await;
    let p = producer(&bootstrap, &[]);
    fill(&p, "g-resume", 2, 50, "before").await;
    drop(p);
    let mut first = GroupMember::start(&bootstrap, "resumer", "g-resume", &[]);
    eventually(30, "100 records", || first.records().len() == 100).await;
    first.stop().await; // commits on close

    broker.restart(fast_groups).await;
    let bootstrap = broker.bootstrap();
    let p = producer(&bootstrap, &[]);
    fill(&p, "g-resume", 2, 20, "after").await;
    let mut second = GroupMember::start(&bootstrap, "resumer", "g-resume", &[]);
    eventually(30, "the 40 new records", || second.records().len() >= 40).await;
    read_to_the_end(&p, "g-resume", 2, &[&second]).await;
    let seen: Vec<_> = second
        .records()
        .into_iter()
        .filter(|r| !r.2.starts_with(b"end"))
        .collect();
    assert_eq!(seen.len(), 40, "resumed from the committed offsets");
    assert!(seen.iter().all(|r| r.2.starts_with(b"after")));
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_restarts_without_a_rebalance() {
    let broker = TestBroker::start_with(fast_groups).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "g-static", 4).await;
    let static_conf = [("group.instance.id", "inventory-1"), ("session.timeout.ms", "10000")];
    let mut first = GroupMember::start(&bootstrap, "static-g", "g-static", &static_conf);
    eventually(30, "the static member has everything", || first.assignment().len() == 4).await;
    let mut other = GroupMember::start(&bootstrap, "static-g", "g-static", &[]);
    eventually(30, "two partitions each", || {
        first.assignment().len() == 2 && other.assignment().len() == 2
    })
    .await;
    let before = first.assignment();
    let other_events = other.events().len();
    let groups = &broker.running.as_ref().unwrap().broker.groups;
    let generation = groups.shard("static-g").unwrap().describe("static-g").generation_id;
    // A static member does not leave on close; its restart takes over its place.
    first.stop().await;
    let mut restarted = GroupMember::start(&bootstrap, "static-g", "g-static", &static_conf);
    eventually(30, "the restarted member has its partitions back", || {
        restarted.assignment() == before
    })
    .await;
    // A rebalance always starts a new generation; the static member's return did not.
    let after = groups.shard("static-g").unwrap().describe("static-g");
    assert_eq!(
        (after.generation_id, after.state),
        (generation, "Stable"),
        "no rebalance"
    );
    assert_eq!(other.events().len(), other_events, "the other member saw no rebalance");
    assert_eq!(other.assignment().len(), 2);
    restarted.stop().await;
    other.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_moves_only_the_partitions_that_change_owner() {
    let broker = TestBroker::start_with(fast_groups).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "g-coop", 6).await;
    let coop = [("partition.assignment.strategy", "cooperative-sticky")];
    let mut first = GroupMember::start(&bootstrap, "coop-g", "g-coop", &coop);
    eventually(30, "all six on the first member", || first.assignment().len() == 6).await;
    let mut second = GroupMember::start(&bootstrap, "coop-g", "g-coop", &coop);
    eventually(30, "three each", || {
        first.assignment().len() == 3 && second.assignment().len() == 3
    })
    .await;
    let events = first.events();
    let revoked: Vec<&BTreeSet<i32>> = events
        .iter()
        .filter_map(|e| match e {
            Event::Revoked(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(revoked.len(), 1, "one incremental revocation: {events:?}");
    assert_eq!(
        revoked[0].len(),
        3,
        "only the moved partitions were revoked: {events:?}"
    );
    assert!(revoked[0].is_disjoint(&first.assignment()));
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_consumers_commit_without_joining() {
    use rdkafka::consumer::{CommitMode, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let broker = TestBroker::start_with(fast_groups).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "g-simple", 2).await;
    let c = consumer(&bootstrap); // group.id strom-tests, assign() only
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("g-simple", 0, Offset::Offset(7)).unwrap();
    tpl.add_partition_offset("g-simple", 1, Offset::Offset(3)).unwrap();
    c.commit(&tpl, CommitMode::Sync).unwrap();
    let other = consumer(&bootstrap);
    let mut query = TopicPartitionList::new();
    query.add_partition("g-simple", 0);
    query.add_partition("g-simple", 1);
    let committed = other.committed_offsets(query, Duration::from_secs(10)).unwrap();
    assert_eq!(
        committed.find_partition("g-simple", 0).unwrap().offset(),
        Offset::Offset(7)
    );
    assert_eq!(
        committed.find_partition("g-simple", 1).unwrap().offset(),
        Offset::Offset(3)
    );
}
