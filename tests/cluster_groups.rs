//! Group coordinators in a cluster (issue 17, stage 7): a group's coordinator
//! is the leader of the `__consumer_offsets` partition its id hashes to; the
//! topic is created by the controller on the first FindCoordinator and
//! replicated like any other; commits are answered once the in-sync replicas
//! have them; when the coordinator's broker is killed, the partition's new
//! leader loads the groups from its replica and no committed offset is lost.
//! Three strom processes on 127.0.1.1–3 and etcd on 127.0.2.1–3.
#![cfg(feature = "cluster")]

mod common;

use std::time::{Duration, Instant};

use common::cluster::*;
use common::etcd::Etcd;
use common::group::GroupMember;
use common::wire::*;
use kafka_protocol::messages::{FindCoordinatorRequest, GroupId, OffsetFetchRequest};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::FutureRecord;

const OFFSETS_PARTITIONS: i32 = 6;

/// (error code, node id) of FindCoordinator for `group`, asked of `node`.
async fn find_coordinator(c: &Cluster, node: i32, group: &str) -> (i16, i32) {
    let mut w = Wire::connect(c.addr(node)).await;
    let mut r = FindCoordinatorRequest::default();
    r.key = StrBytes::from_string(group.to_string());
    let answer = w.call(3, &r).await;
    (answer.error_code, answer.node_id.0)
}

/// The coordinator every broker of `nodes` names for `group`, once they agree.
async fn until_coordinator(c: &Cluster, nodes: &[i32], group: &str) -> i32 {
    let started = Instant::now();
    loop {
        let mut named = Vec::new();
        for n in nodes {
            named.push(find_coordinator(c, *n, group).await);
        }
        if named.iter().all(|(e, id)| *e == 0 && *id == named[0].1) && nodes.contains(&named[0].1) {
            return named[0].1;
        }
        assert!(started.elapsed() < LONG, "coordinator of {group}: {named:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (error code, sum of the committed offsets) of `group`, asked of `node`.
async fn committed(c: &Cluster, node: i32, group: &str) -> (i16, i64) {
    let mut w = Wire::connect(c.addr(node)).await;
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(StrBytes::from_string(group.to_string()));
    r.topics = None;
    let answer = w.call(6, &r).await;
    let sum = answer
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.committed_offset.max(0))
        .sum();
    (answer.error_code, sum)
}

async fn until_committed(c: &Cluster, node: i32, group: &str, expected: i64) {
    let started = Instant::now();
    loop {
        let got = committed(c, node, group).await;
        if got == (0, expected) {
            return;
        }
        assert!(started.elapsed() < LONG, "{group} at {node}: {got:?}, not {expected}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn fill(bootstrap: &str, tag: &str, partitions: i32, per_partition: i32) {
    let producer = common::producer(bootstrap, &[("enable.idempotence", "true")]);
    for p in 0..partitions {
        for i in 0..per_partition {
            let value = format!("{tag}-{p}-{i}");
            let record = FutureRecord::to("orders").partition(p).key("k").payload(&value);
            producer
                .send(record, Duration::from_secs(30))
                .await
                .unwrap_or_else(|(e, _)| panic!("{value}: {e}"));
        }
    }
}

async fn until_consumed(member: &GroupMember, count: usize, what: &str) {
    let started = Instant::now();
    while member.records().len() < count {
        assert!(
            started.elapsed() < LONG,
            "{what}: {} of {count}",
            member.records().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn group_coordinators_follow_the_offsets_leaders() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    let partitions_setting = format!("offsets.topic.num.partitions={OFFSETS_PARTITIONS}");
    let (mut c, _) = ready_with(&etcd, "groups", 3, &["--override", &partitions_setting]).await;
    let all = bootstrap(&c, &[1, 2, 3]);
    let mut w = Wire::connect(c.addr(1)).await;
    create_replicated_topic(&mut w, "orders", 4, 3, &[]).await;
    until_told(&c, &[1, 2, 3], "orders", |v| {
        v.as_ref()
            .is_some_and(|ps| ps.len() == 4 && ps.values().all(|p| p.isr.len() == 3))
    })
    .await;
    fill(&all, "before", 4, 10).await;

    // The first FindCoordinator has the offsets topic made; then every
    // broker names the leader of the partition "shop" hashes to.
    let coordinator = until_coordinator(&c, &[1, 2, 3], "shop").await;
    let offsets = partitions(&c, 1, "__consumer_offsets").await.expect("offsets topic");
    assert_eq!(offsets.len(), OFFSETS_PARTITIONS as usize);
    assert!(offsets.values().all(|p| p.replicas.len() == 3), "{offsets:?}");
    let shard = strom::util::hash::coordinator_partition("shop", OFFSETS_PARTITIONS);
    assert_eq!(offsets[&shard].leader, coordinator);
    // Leadership of the offsets partitions is spread, so are the groups.
    let leaders: std::collections::BTreeSet<i32> = offsets.values().map(|p| p.leader).collect();
    assert_eq!(leaders.len(), 3, "{offsets:?}");
    for node in (1..=3).filter(|n| *n != coordinator) {
        assert_eq!(committed(&c, node, "shop").await.0, 16, "NOT_COORDINATOR at {node}");
    }

    // A classic group consumes everything and commits (auto-commit, and at close).
    let mut member = GroupMember::start(&all, "shop", "orders", &[]);
    until_consumed(&member, 40, "the classic group").await;
    member.stop().await;
    until_committed(&c, coordinator, "shop", 40).await;

    // strom's tools find the coordinator and the leaders themselves,
    // whichever broker they are given.
    let other = (1..=3).find(|n| *n != coordinator).unwrap();
    let bs = c.addr(other).to_string();
    let (ok, out, err) = common::strom_cli(&["groups", "describe", "shop", "--json", "--bootstrap-server", &bs], "");
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["totalLag"], 0, "{v}");
    let ends: Vec<i64> = v["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["logEndOffset"].as_i64().expect("every log end, from its leader"))
        .collect();
    assert_eq!(ends, vec![10; 4], "{v}");
    let (ok, out, err) = common::strom_cli(&["groups", "list", "--bootstrap-server", &bs], "");
    assert!(ok && out.contains("shop"), "{out}{err}");
    let (ok, _, err) = common::strom_cli(&["topics", "describe", "orders", "--bootstrap-server", &bs], "");
    assert!(ok, "{err}");
    let lines: String = (0..8).map(|i| format!("k{i}:cli-{i}\n")).collect();
    let (ok, _, err) = common::strom_cli(&["produce", "orders", "-K", ":", "--bootstrap-server", &bs], &lines);
    assert!(ok, "{err}");
    let (ok, out, err) = common::strom_cli(
        &["consume", "orders", "--from-beginning", "--bootstrap-server", &bs],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 48, "every partition read from its leader");
    assert_eq!(out.lines().filter(|l| l.starts_with("cli-")).count(), 8);

    // The coordinator's broker dies: the partition's new leader coordinates
    // the group, with every offset committed before.
    c.stop(coordinator).expect("running").kill9();
    let survivors: Vec<i32> = (1..=3).filter(|n| *n != coordinator).collect();
    let successor = until_coordinator(&c, &survivors, "shop").await;
    assert_ne!(successor, coordinator);
    until_committed(&c, successor, "shop", 40).await;

    // The group resumes where it committed: only the records since (the
    // tools' 8 and 20 more).
    let survivors_bootstrap = bootstrap(&c, &survivors);
    fill(&survivors_bootstrap, "after", 4, 5).await;
    let mut member = GroupMember::start(&survivors_bootstrap, "shop", "orders", &[]);
    until_consumed(&member, 28, "the group after failover").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let records = member.records();
    assert!(
        records.iter().all(|r| !r.2.starts_with(b"before")),
        "records consumed again after the failover: {:?}",
        records.iter().filter(|r| r.2.starts_with(b"before")).count()
    );
    assert_eq!(records.len(), 28);
    member.stop().await;
    until_committed(&c, successor, "shop", 68).await;

    // A consumer-protocol group (KIP-848) through the survivors: its
    // subscription resolves against the cluster's topics.
    let mut kip848 = GroupMember::start_consumer_protocol(&survivors_bootstrap, "kip848", &["orders"], &[]);
    until_consumed(&kip848, 68, "the consumer-protocol group").await;
    kip848.stop().await;
    let coordinator848 = until_coordinator(&c, &survivors, "kip848").await;
    until_committed(&c, coordinator848, "kip848", 68).await;

    // Producer ids are reserved in the cluster: no two brokers hand out the
    // same one (more than a block's worth from one of them).
    let mut ids = std::collections::HashSet::new();
    for (node, count) in [(survivors[0], 1_100), (survivors[1], 300)] {
        let mut w = Wire::connect(c.addr(node)).await;
        let mut given = 0;
        while given < count {
            let mut r = kafka_protocol::messages::InitProducerIdRequest::default();
            r.producer_id = kafka_protocol::messages::ProducerId(-1);
            r.producer_epoch = -1;
            r.transactional_id = None;
            r.transaction_timeout_ms = 60_000;
            let answer = w.call(4, &r).await;
            match answer.error_code {
                0 => {
                    assert!(ids.insert(answer.producer_id.0), "id {} twice", answer.producer_id.0);
                    given += 1;
                }
                14 => tokio::time::sleep(Duration::from_millis(20)).await,
                other => panic!("InitProducerId at {node}: error {other}"),
            }
        }
    }
    c.terminate_all();
}
