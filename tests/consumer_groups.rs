//! Consumer groups of the next-generation protocol (KIP-848) with librdkafka's
//! `group.protocol=consumer`: the broker assigns, members reconcile one by one,
//! revocation before assignment, session expiry, regex subscriptions, static
//! members, commits across a restart, and a classic group upgraded member by
//! member.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use common::group::{create_topic, eventually, fill, Event, GroupMember};
use common::*;
use strom::config::Config;

/// Short heartbeats and sessions so the tests run in seconds (Kafka's lower
/// bounds are for production; the test sets the fields directly).
fn fast(c: &mut Config) {
    c.group.initial_rebalance_delay_ms = 0;
    c.group.min_session_timeout_ms = 1000;
    c.group.consumer.heartbeat_interval_ms = 250;
    c.group.consumer.session_timeout_ms = 3000;
}

/// Run the `strom` binary with `args`.
async fn strom_cli(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn all_records(members: &[&GroupMember]) -> Vec<(i32, i64, Vec<u8>)> {
    members.iter().flat_map(|m| m.records()).collect()
}

fn tagged(members: &[&GroupMember], tag: &str) -> Vec<(i32, i64, Vec<u8>)> {
    all_records(members)
        .into_iter()
        .filter(|r| r.2.starts_with(tag.as_bytes()))
        .collect()
}

fn union(members: &[&GroupMember]) -> BTreeSet<i32> {
    members.iter().flat_map(|m| m.assignment()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_get_two_partitions_each_and_read_every_record_once() {
    let broker = TestBroker::start_with(fast).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kip848-orders", 6).await;
    let members: Vec<GroupMember> = (0..3)
        .map(|_| GroupMember::start_consumer_protocol(&bootstrap, "orders-848", &["kip848-orders"], &[]))
        .collect();
    let refs: Vec<&GroupMember> = members.iter().collect();
    eventually(30, "two partitions each", || {
        refs.iter().all(|m| m.assignment().len() == 2)
    })
    .await;
    assert_eq!(union(&refs), (0..6).collect());

    let p = producer(&bootstrap, &[]);
    fill(&p, "kip848-orders", 6, 50, "first").await;
    eventually(30, "300 records consumed", || tagged(&refs, "first").len() >= 300).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let consumed = tagged(&refs, "first");
    assert_eq!(consumed.len(), 300, "every record exactly once");
    let unique: HashSet<_> = consumed.iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(unique.len(), 300);

    // The CLI shows the type, the epochs, each member's assignment and target.
    let out = strom_cli(&[
        "groups",
        "describe",
        "orders-848",
        "--json",
        "--bootstrap-server",
        &bootstrap,
    ])
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["type"], "consumer");
    assert_eq!(v["state"], "Stable");
    assert_eq!(v["protocol"], "uniform");
    assert!(v["groupEpoch"].as_i64().unwrap() >= 1);
    let details = v["memberDetails"].as_array().unwrap();
    assert_eq!(details.len(), 3);
    for m in details {
        assert_eq!(m["assignment"].as_array().unwrap().len(), 2, "{m}");
        assert_eq!(m["assignment"], m["targetAssignment"]);
        assert_eq!(m["memberType"], "consumer");
    }
    assert_eq!(v["partitions"].as_array().unwrap().len(), 6);
    let listed = strom_cli(&["groups", "list", "--bootstrap-server", &bootstrap]).await;
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("orders-848") && l.contains("consumer") && l.contains("Stable")),
        "{text}"
    );
    for mut m in members {
        m.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_member_gets_a_partition_only_after_its_owner_revoked_it() {
    let broker = TestBroker::start_with(fast).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kip848-move", 6).await;
    let mut first: Vec<GroupMember> = (0..2)
        .map(|_| GroupMember::start_consumer_protocol(&bootstrap, "movers", &["kip848-move"], &[]))
        .collect();
    eventually(30, "three partitions each", || {
        first.iter().all(|m| m.assignment().len() == 3)
    })
    .await;
    let seen_before: Vec<usize> = first.iter().map(|m| m.events().len()).collect();
    let newcomer = GroupMember::start_consumer_protocol(&bootstrap, "movers", &["kip848-move"], &[]);
    let all: Vec<&GroupMember> = first.iter().chain([&newcomer]).collect();
    eventually(30, "two partitions each", || {
        all.iter().all(|m| m.assignment().len() == 2)
    })
    .await;
    assert_eq!(union(&all), (0..6).collect());
    // Every partition the newcomer got was revoked by its owner first.
    for (at, event) in newcomer.sequenced() {
        let Event::Assigned(parts) = event else { continue };
        for p in parts {
            let revoked_before = first
                .iter()
                .flat_map(|m| m.sequenced())
                .any(|(when, e)| matches!(&e, Event::Revoked(r) if r.contains(&p)) && when < at);
            assert!(
                revoked_before,
                "partition {p} assigned to the newcomer before its owner revoked it"
            );
        }
    }
    // The first two never lost a partition they kept (incremental, no stop).
    for (m, before) in first.iter().zip(seen_before) {
        let revoked: usize = m.events()[before..]
            .iter()
            .map(|e| match e {
                Event::Revoked(r) => r.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(revoked, 1, "each gave up exactly one partition: {:?}", m.events());
    }
    drop(all);
    for mut m in first.drain(..).chain([newcomer]) {
        m.stop().await;
    }
}

/// Join `group` with a raw ConsumerGroupHeartbeat and never heartbeat again: a
/// member killed with -9. Returns the partitions it was given.
async fn join_and_go_silent(addr: std::net::SocketAddr, group: &str, topic: &str) -> usize {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let mut w = common::wire::Wire::connect(addr).await;
    let mut hb = ConsumerGroupHeartbeatRequest::default();
    hb.group_id = GroupId(StrBytes::from_string(group.to_string()));
    hb.member_id = StrBytes::from_static_str("silent-member-0000000001");
    hb.member_epoch = 0;
    hb.rebalance_timeout_ms = 60_000;
    hb.subscribed_topic_names = Some(vec![TopicName(StrBytes::from_string(topic.to_string()))]);
    hb.topic_partitions = Some(vec![]);
    let r = w.call(1, &hb).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    r.assignment
        .map_or(0, |a| a.topic_partitions.iter().map(|t| t.partitions.len()).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_members_partitions_move_after_its_session_times_out() {
    let broker = TestBroker::start_with(fast).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kip848-kill", 4).await;
    // The silent member joins first and takes all four partitions.
    assert_eq!(join_and_go_silent(broker.addr(), "killed", "kip848-kill").await, 4);
    let started = std::time::Instant::now();
    let mut healthy = GroupMember::start_consumer_protocol(&bootstrap, "killed", &["kip848-kill"], &[]);
    // Its half stays with the silent member (never revoked) until the 3 s
    // session ends; then the healthy member has all four.
    eventually(30, "all four partitions", || healthy.assignment().len() == 4).await;
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "moved before the session timed out"
    );
    healthy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regex_subscription_picks_up_a_topic_created_later() {
    let broker = TestBroker::start_with(fast).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kip848-re-a", 2).await;
    create_topic(&bootstrap, "kip848-other", 2).await;
    let mut m = GroupMember::start_consumer_protocol(&bootstrap, "regexes", &["^kip848-re-.*"], &[]);
    let p = producer(&bootstrap, &[]);
    fill(&p, "kip848-re-a", 2, 5, "a").await;
    fill(&p, "kip848-other", 2, 5, "other").await;
    eventually(30, "records of the matching topic", || tagged(&[&m], "a").len() == 10).await;
    create_topic(&bootstrap, "kip848-re-b", 3).await;
    fill(&p, "kip848-re-b", 3, 5, "b").await;
    eventually(30, "records of the topic created later", || {
        tagged(&[&m], "b").len() == 15
    })
    .await;
    assert!(tagged(&[&m], "other").is_empty(), "a topic the pattern does not match");
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_restarts_without_a_reassignment() {
    let broker = TestBroker::start_with(fast).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kip848-static", 4).await;
    let a =
        GroupMember::start_consumer_protocol(&bootstrap, "statics", &["kip848-static"], &[("group.instance.id", "a")]);
    let mut b =
        GroupMember::start_consumer_protocol(&bootstrap, "statics", &["kip848-static"], &[("group.instance.id", "b")]);
    eventually(30, "two partitions each", || {
        a.assignment().len() == 2 && b.assignment().len() == 2
    })
    .await;
    let had = a.assignment();
    let b_events = b.events().len();
    // a closes (a static member leaves with epoch −2) and comes back within its session.
    let mut a = a;
    a.stop().await;
    let mut again =
        GroupMember::start_consumer_protocol(&bootstrap, "statics", &["kip848-static"], &[("group.instance.id", "a")]);
    eventually(30, "the same two partitions", || again.assignment() == had).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(again.assignment(), had);
    assert_eq!(b.events().len(), b_events, "b saw no rebalance: {:?}", b.events());
    assert_eq!(b.assignment().len(), 2);
    again.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_and_the_group_survive_a_broker_restart() {
    let mut broker = TestBroker::start_with(fast).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kip848-resume", 2).await;
    let p = producer(&bootstrap, &[]);
    fill(&p, "kip848-resume", 2, 50, "before").await;
    drop(p);
    let mut first = GroupMember::start_consumer_protocol(&bootstrap, "resumers", &["kip848-resume"], &[]);
    eventually(30, "100 records", || first.records().len() == 100).await;
    first.stop().await; // commits on close

    broker.restart(fast).await;
    let bootstrap = broker.bootstrap();
    // Still a consumer-protocol group after the restart.
    let mut w = common::wire::Wire::connect(broker.addr()).await;
    let listed = w.call(5, &kafka_protocol::messages::ListGroupsRequest::default()).await;
    let g = listed
        .groups
        .iter()
        .find(|g| g.group_id.as_str() == "resumers")
        .expect("the group");
    assert_eq!(g.group_type.as_str(), "consumer");
    let p = producer(&bootstrap, &[]);
    fill(&p, "kip848-resume", 2, 20, "after").await;
    let mut second = GroupMember::start_consumer_protocol(&bootstrap, "resumers", &["kip848-resume"], &[]);
    eventually(30, "the 40 new records", || second.records().len() >= 40).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(tagged(&[&second], "before").is_empty(), "nothing read twice");
    assert_eq!(second.records().len(), 40);
    second.stop().await;
}

async fn group_type(addr: std::net::SocketAddr, group: &str) -> String {
    let mut w = common::wire::Wire::connect(addr).await;
    let listed = w.call(5, &kafka_protocol::messages::ListGroupsRequest::default()).await;
    listed
        .groups
        .iter()
        .find(|g| g.group_id.as_str() == group)
        .map(|g| g.group_type.to_string())
        .unwrap_or_default()
}

/// Classic members as librdkafka runs them (a short session for the test).
fn classic(bootstrap: &str, group: &str, topic: &str) -> GroupMember {
    GroupMember::start(bootstrap, group, topic, &[("session.timeout.ms", "3000")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_group_upgraded_member_by_member_keeps_its_offsets() {
    let broker = TestBroker::start_with(fast).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kip848-mig", 4).await;
    let p = producer(&bootstrap, &[]);
    fill(&p, "kip848-mig", 4, 25, "before").await;
    let mut old1 = classic(&bootstrap, "migrating", "kip848-mig");
    let mut old2 = classic(&bootstrap, "migrating", "kip848-mig");
    eventually(30, "100 records by the classic group", || {
        tagged(&[&old1, &old2], "before").len() >= 100
    })
    .await;
    eventually(30, "two partitions each", || {
        old1.assignment().len() == 2 && old2.assignment().len() == 2
    })
    .await;
    assert_eq!(group_type(broker.addr(), "migrating").await, "classic");

    // Rolling restart, one member at a time, onto group.protocol=consumer.
    old1.stop().await;
    eventually(30, "the other classic member has all four", || {
        old2.assignment().len() == 4
    })
    .await;
    let new1 = GroupMember::start_consumer_protocol(&bootstrap, "migrating", &["kip848-mig"], &[]);
    eventually(30, "the new member shares with the classic one", || {
        new1.assignment().len() == 2 && old2.assignment().len() == 2
    })
    .await;
    assert_eq!(group_type(broker.addr(), "migrating").await, "consumer");
    assert_eq!(union(&[&new1, &old2]), (0..4).collect());
    old2.stop().await;
    let new2 = GroupMember::start_consumer_protocol(&bootstrap, "migrating", &["kip848-mig"], &[]);
    eventually(30, "two partitions each on the new protocol", || {
        new1.assignment().len() == 2 && new2.assignment().len() == 2
    })
    .await;
    fill(&p, "kip848-mig", 4, 10, "after").await;
    eventually(30, "the 40 new records", || {
        tagged(&[&new1, &new2], "after").len() >= 40
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        tagged(&[&new1, &new2], "before").is_empty(),
        "the committed offsets were kept"
    );
    assert_eq!(tagged(&[&new1, &new2], "after").len(), 40);
    for mut m in [new1, new2] {
        m.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_turns_classic_again_when_its_last_consumer_protocol_member_leaves() {
    let broker = TestBroker::start_with(fast).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kip848-down", 4).await;
    let mut old = classic(&bootstrap, "downgrading", "kip848-down");
    eventually(30, "the classic member has all four", || old.assignment().len() == 4).await;
    let mut new = GroupMember::start_consumer_protocol(&bootstrap, "downgrading", &["kip848-down"], &[]);
    eventually(30, "two each", || {
        new.assignment().len() == 2 && old.assignment().len() == 2
    })
    .await;
    assert_eq!(group_type(broker.addr(), "downgrading").await, "consumer");
    new.stop().await;
    eventually(30, "the classic member has all four again", || {
        old.assignment().len() == 4
    })
    .await;
    assert_eq!(group_type(broker.addr(), "downgrading").await, "classic");
    let p = producer(&bootstrap, &[]);
    fill(&p, "kip848-down", 4, 5, "later").await;
    eventually(30, "records after the downgrade", || {
        tagged(&[&old], "later").len() == 20
    })
    .await;
    old.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_classic_member_restarts_on_the_consumer_protocol_under_its_instance_id() {
    let broker = TestBroker::start_with(fast).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kip848-static-up", 4).await;
    let statics = |id| [("session.timeout.ms", "3000"), ("group.instance.id", id)];
    let mut old = GroupMember::start(&bootstrap, "static-up", "kip848-static-up", &statics("s1"));
    let other = GroupMember::start(&bootstrap, "static-up", "kip848-static-up", &statics("s2"));
    eventually(30, "two each", || {
        old.assignment().len() == 2 && other.assignment().len() == 2
    })
    .await;
    // s1 restarts with group.protocol=consumer and the same instance id (a
    // static member's close does not leave the group).
    old.stop().await;
    let new = GroupMember::start_consumer_protocol(
        &bootstrap,
        "static-up",
        &["kip848-static-up"],
        &[("group.instance.id", "s1")],
    );
    eventually(30, "the new process has two partitions", || new.assignment().len() == 2).await;
    assert_eq!(group_type(broker.addr(), "static-up").await, "consumer");
    let p = producer(&bootstrap, &[]);
    fill(&p, "kip848-static-up", 4, 5, "up").await;
    eventually(30, "all 20 records between them", || {
        tagged(&[&new, &other], "up").len() == 20
    })
    .await;
    for mut m in [new, other] {
        m.stop().await;
    }
}
