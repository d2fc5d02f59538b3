//! Moving replicas between brokers (issue 17 stage 10, KIP-455): a partition
//! with replicas {1,2,3} moves to {2,3,4} while an idempotent acks=all
//! producer writes to it, through `strom partitions reassign` sent to any
//! broker; no acknowledged record is lost, the leader moves into the target,
//! and the old replica's files are deleted. A move that cannot finish (its
//! new replica's broker is frozen) is listed and cancelled. Bad requests get
//! Kafka's codes. Four strom processes on 127.0.1.1–4, etcd on 127.0.2.1–3.
#![cfg(feature = "cluster")]

mod common;

use std::time::{Duration, Instant};

use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, BrokerId, CreateTopicsRequest};

use common::checker::*;
use common::cluster::*;
use common::etcd::Etcd;
use common::wire::*;

/// Create `topic` with one partition on exactly `replicas`.
async fn create_on(w: &mut Wire, topic: &str, replicas: &[i32]) {
    let mut a = CreatableReplicaAssignment::default();
    a.partition_index = 0;
    a.broker_ids = replicas.iter().copied().map(BrokerId).collect();
    let mut t = CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = -1;
    t.replication_factor = -1;
    t.assignments = vec![a];
    let mut r = CreateTopicsRequest::default();
    r.topics = vec![t];
    r.timeout_ms = 30_000;
    assert_eq!(w.call(5, &r).await.topics[0].error_code, 0);
}

/// AlterPartitionReassignments for partition 0 of `topic` (None: cancel); its code.
async fn reassign(w: &mut Wire, version: i16, topic: &str, target: Option<&[i32]>, resize: bool) -> i16 {
    let mut p = ReassignablePartition::default();
    p.partition_index = 0;
    p.replicas = target.map(|t| t.iter().copied().map(BrokerId).collect());
    let mut t = ReassignableTopic::default();
    t.name = name(topic);
    t.partitions = vec![p];
    let mut r = AlterPartitionReassignmentsRequest::default();
    r.timeout_ms = 30_000;
    r.allow_replication_factor_change = resize;
    r.topics = vec![t];
    let answer = w.call(version, &r).await;
    assert_eq!(answer.error_code, 0);
    answer.responses[0].partitions[0].error_code
}

/// `strom partitions reassign ARGS --bootstrap-server` broker `node`.
fn tool(c: &Cluster, node: i32, args: &[&str]) -> (bool, String, String) {
    let bs = c.addr(node).to_string();
    let mut all = vec!["partitions", "reassign"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--bootstrap-server", &bs]);
    common::strom_cli(&all, "")
}

/// Directories of partition 0 of `topic` on broker `node`, of any kind
/// (live, stray, being deleted).
fn any_dirs(c: &Cluster, node: i32, topic: &str) -> Vec<String> {
    let dir = c.dirs[node as usize - 1].path().join("data");
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&format!("{topic}-0")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_move_under_load_and_a_move_can_be_cancelled() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    // Followers stay in sync for 10 s without fetching: a frozen follower
    // holds an acks=all produce until the broker session (3 s) ends.
    let slow_lag = ["--override", "replica.lag.time.max.ms=10000"];
    let (mut c, controller) = ready_with(&etcd, "reassign", 4, &slow_lag).await;
    let mut w = Wire::connect(c.addr(4)).await;
    create_on(&mut w, "moving", &[1, 2, 3]).await;
    until_told(&c, &[1, 2, 3, 4], "moving", |v| {
        v.as_ref().is_some_and(|ps| ps[&0].isr.len() == 3)
    })
    .await;
    for node in [1, 2, 3] {
        until_local(&c, node, "moving", &[0]).await;
    }

    // Bad requests, through a broker that forwards them to the controller.
    assert_eq!(reassign(&mut w, 0, "nothing", Some(&[1]), true).await, 3);
    assert_eq!(reassign(&mut w, 0, "moving", Some(&[2, 2]), true).await, 39);
    assert_eq!(reassign(&mut w, 0, "moving", Some(&[2, 9]), true).await, 39);
    assert_eq!(reassign(&mut w, 0, "moving", Some(&[]), true).await, 39);
    assert_eq!(reassign(&mut w, 0, "moving", None, true).await, 85, "nothing to cancel");
    assert_eq!(reassign(&mut w, 1, "moving", Some(&[2, 3]), false).await, 38);
    assert_eq!(
        reassign(&mut w, 0, "moving", Some(&[1, 2, 3]), true).await,
        0,
        "already so"
    );

    // The move, while an idempotent acks=all producer writes.
    let producer = idempotent_producer(&bootstrap(&c, &[1, 2, 3, 4]));
    let mut acked = Acked::new();
    produce_acked(&producer, "moving", 1, 0, 100, &mut acked).await;
    let writer = {
        let producer = producer.clone();
        tokio::spawn(async move {
            let mut acked = Acked::new();
            for round in 0..10 {
                produce_acked(&producer, "moving", 1, 100 + round * 30, 30, &mut acked).await;
            }
            acked
        })
    };
    let (ok, out, err) = tool(&c, 4, &["--topic", "moving", "--partition", "0", "--replicas", "2,3,4"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("Reassignment of moving-0 started"), "{out}");
    let moved = until_told(&c, &[1, 2, 3, 4], "moving", |v| {
        v.as_ref()
            .is_some_and(|ps| ps[&0].replicas == vec![2, 3, 4] && ps[&0].isr.len() == 3)
    })
    .await
    .unwrap();
    assert!([2, 3, 4].contains(&moved[&0].leader));
    acked.extend(writer.await.unwrap());
    // The old replica's files are deleted, not set aside.
    let started = Instant::now();
    while !any_dirs(&c, 1, "moving").is_empty() {
        assert!(started.elapsed() < LONG, "{:?}", any_dirs(&c, 1, "moving"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until_local(&c, 4, "moving", &[0]).await;
    let (ok, out, _) = tool(
        &c,
        2,
        &[
            "--verify",
            "--topic",
            "moving",
            "--partition",
            "0",
            "--replicas",
            "2,3,4",
        ],
    );
    assert!(ok && out.contains("is complete"), "{out}");
    let read = common::consume(&bootstrap(&c, &[2, 3, 4]), "moving", 1, acked.len()).await;
    check(&acked, read);
    until_identical(&c, &[2, 3, 4], "moving", 1).await;

    // A move that cannot finish: its new replica's broker is frozen. Listed
    // while it runs, then cancelled: back to the replicas it started from.
    let frozen = (1..=4).find(|n| *n != controller).unwrap();
    let others: Vec<i32> = (1..=4).filter(|n| *n != frozen).collect();
    create_on(&mut w, "staying", &others).await;
    until_told(&c, &others, "staying", |v| {
        v.as_ref().is_some_and(|ps| ps[&0].isr.len() == 3)
    })
    .await;
    c.signal(frozen, "-STOP");
    let widened: Vec<i32> = others.iter().copied().chain([frozen]).collect();
    let target = widened.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(",");
    let asked_at = others[0];
    let (ok, out, err) = tool(
        &c,
        asked_at,
        &["--topic", "staying", "--partition", "0", "--replicas", &target],
    );
    assert!(ok, "{out}{err}");
    let (ok, out, _) = tool(&c, asked_at, &["--list", "--json"]);
    assert!(ok);
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ongoing = &listed["reassignments"][0];
    assert_eq!(ongoing["topic"], "staying", "{out}");
    assert_eq!(ongoing["adding"], serde_json::json!([frozen]), "{out}");
    let (ok, out, _) = tool(
        &c,
        asked_at,
        &[
            "--verify",
            "--topic",
            "staying",
            "--partition",
            "0",
            "--replicas",
            &target,
        ],
    );
    assert!(ok && out.contains("still in progress"), "{out}");
    let (ok, out, err) = tool(&c, asked_at, &["--cancel", "--topic", "staying", "--partition", "0"]);
    assert!(ok && out.contains("cancelled"), "{out}{err}");
    let (_, out, _) = tool(&c, asked_at, &["--list", "--json"]);
    assert_eq!(out.trim(), r#"{"reassignments":[]}"#);
    let back = until_told(&c, &others, "staying", |v| v.is_some()).await.unwrap();
    assert_eq!(back[&0].replicas, others);
    c.signal(frozen, "-CONT");
    // Thawed, the broker holds no replica of it (made and deleted, or never made).
    until_listed(&c, c.addr(others[0]), &[1, 2, 3, 4], LONG).await;
    let started = Instant::now();
    while any_dirs(&c, frozen, "staying").iter().any(|d| d == "staying-0") {
        assert!(started.elapsed() < LONG, "the cancelled replica stayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A produce waiting at a leader that is moved away answers at once
    // (NOT_LEADER_OR_FOLLOWER, and the client retries at the new leader),
    // not at its timeout: its follower is frozen, so it waits; the move to
    // that follower and the third replica completes at once (both in sync).
    let now = partitions(&c, 2, "moving").await.unwrap()[&0].clone();
    let leader = now.leader;
    let follower = *now
        .replicas
        .iter()
        .find(|b| **b != leader && **b != controller)
        .unwrap();
    let third = *now.replicas.iter().find(|b| **b != leader && **b != follower).unwrap();
    c.signal(follower, "-STOP");
    let addr = c.addr(leader);
    let waiting = tokio::spawn(async move {
        let mut lw = Wire::connect(addr).await;
        let mut request = produce_request("moving", 0, batch(1, -1, 0, 0), -1);
        request.timeout_ms = 60_000;
        let asked = Instant::now();
        let r = lw.call(9, &request).await;
        (r.responses[0].partition_responses[0].error_code, asked.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let target = format!("{third},{follower}");
    let (ok, out, err) = tool(
        &c,
        third,
        &["--topic", "moving", "--partition", "0", "--replicas", &target],
    );
    assert!(ok, "{out}{err}");
    let (code, waited) = waiting.await.unwrap();
    c.signal(follower, "-CONT");
    assert_eq!(code, 6, "answered after {waited:?}");
    assert!(waited < Duration::from_secs(20), "the produce waited {waited:?}");
    c.terminate_all();
}
