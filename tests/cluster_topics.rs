//! Topics across the brokers of a cluster (issue 17, stage 4): the active
//! controller creates, grows and deletes topics in etcd, placing each
//! partition's replica on a running broker; every broker creates the replicas
//! assigned to it and leads what the metadata says it leads; requests that
//! change topics are forwarded to the controller from any broker; a partition
//! whose broker goes is offline (leader −1, a new leader epoch) until it comes
//! back. Three strom processes on 127.0.1.1–3 and etcd on 127.0.2.1–3.
#![cfg(feature = "cluster")]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::etcd::Etcd;
use common::wire::*;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{CreatePartitionsRequest, DeleteTopicsRequest};
use rdkafka::producer::FutureRecord;

async fn produce_keyed(bootstrap: &str, topic: &str, partitions: i32, per_partition: i32) {
    let producer = common::producer(bootstrap, &[("enable.idempotence", "true")]);
    for p in 0..partitions {
        for i in 0..per_partition {
            let value = format!("{topic}-{p}-{i}");
            let record = FutureRecord::to(topic).partition(p).key("k").payload(&value);
            producer
                .send(record, Duration::from_secs(30))
                .await
                .unwrap_or_else(|(e, _)| panic!("{topic}-{p}: {e}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_live_across_the_brokers_and_follow_them() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    let (mut c, controller) = ready(&etcd, "topics", 3).await;
    let other = (1..=3).find(|n| *n != controller).unwrap();

    // Created through a broker that is not the controller (forwarded).
    let mut w = Wire::connect(c.addr(other)).await;
    create_topic(&mut w, "orders", 6, &[("cleanup.policy", "compact")]).await;
    let told = until_told(&c, &[1, 2, 3], "orders", |v| {
        v.as_ref()
            .is_some_and(|ps| ps.len() == 6 && ps.values().all(|p| p.leader > 0))
    })
    .await
    .unwrap();
    let mut led: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (p, Told { leader, epoch, .. }) in &told {
        assert_eq!(*epoch, 0);
        led.entry(*leader).or_default().push(*p);
    }
    assert_eq!(
        led.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3],
        "spread: {led:?}"
    );
    assert!(led.values().all(|ps| ps.len() == 2), "two leaders each: {led:?}");
    // Each broker holds the replicas it was given, and only those.
    for (node, ps) in &led {
        until_local(&c, *node, "orders", ps).await;
    }
    // Another cluster's write under its own prefix of the same etcd: topics
    // are still created at once (a write that changed nothing here once waited
    // for that revision to show in this cluster's watch, which it never does).
    etcd.ctl(&["put", "/strom-test/another-cluster/x", "y"]);
    let created = Instant::now();
    create_topic(&mut w, "after-another", 1, &[]).await;
    assert!(created.elapsed() < Duration::from_secs(5), "{:?}", created.elapsed());
    // Created again: it exists, whichever broker is asked.
    for node in 1..=3 {
        let mut w = Wire::connect(c.addr(node)).await;
        let mut r = kafka_protocol::messages::CreateTopicsRequest::default();
        let mut t = kafka_protocol::messages::create_topics_request::CreatableTopic::default();
        t.name = name("orders");
        t.num_partitions = 1;
        t.replication_factor = 1;
        r.topics = vec![t];
        assert_eq!(w.call(5, &r).await.topics[0].error_code, 36, "TOPIC_ALREADY_EXISTS");
    }

    // Its configs are the cluster's: told by every broker, changed through
    // any, applied by every broker holding a replica.
    for node in 1..=3 {
        let mut w = Wire::connect(c.addr(node)).await;
        assert_eq!(
            describe_configs(&mut w, 2, "orders").await["cleanup.policy"].0,
            "compact"
        );
    }
    let mut w = Wire::connect(c.addr(other)).await;
    let set = [("retention.ms", 0, Some("123456"))];
    assert_eq!(incremental_alter(&mut w, 2, "orders", &set).await.0, 0);
    let started = Instant::now();
    for node in 1..=3 {
        let mut w = Wire::connect(c.addr(node)).await;
        while describe_configs(&mut w, 2, "orders").await["retention.ms"].0 != "123456" {
            assert!(started.elapsed() < LONG, "broker {node} kept the old retention.ms");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let dir = c.dirs[node as usize - 1].path().join("data");
        // Kept with the first partition held (as on a single broker).
        if let Some(p) = local_partitions(&c, node, "orders").first() {
            let file = dir.join(format!("orders-{p}")).join("topic-config.properties");
            loop {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                if text.contains("123456") && text.contains("compact") {
                    break;
                }
                assert!(started.elapsed() < LONG, "orders-{p} on {node}: {text}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    // Produced to and consumed from every partition, bootstrapped from all.
    let all = bootstrap(&c, &[1, 2, 3]);
    produce_keyed(&all, "orders", 6, 10).await;
    let read = common::consume(&all, "orders", 6, 60).await;
    assert_eq!(common::by_partition(&read).len(), 6);
    // A broker that does not lead a partition says so.
    let (p, Told { leader, .. }) = told.iter().next().unwrap();
    let not_leader = (1..=3).find(|n| n != leader).unwrap();
    let mut w = Wire::connect(c.addr(not_leader)).await;
    assert_eq!(
        produce(&mut w, "orders", *p, batch(1, -1, 0, 0)).await.0,
        6,
        "NOT_LEADER_OR_FOLLOWER"
    );

    // Auto-created on first use, through any broker.
    let producer = common::producer(&c.addr(other).to_string(), &[]);
    producer
        .send(FutureRecord::to("auto").key("k").payload("v"), Duration::from_secs(30))
        .await
        .unwrap_or_else(|(e, _)| panic!("auto-created topic: {e}"));
    until_told(&c, &[1, 2, 3], "auto", |v| v.is_some()).await;

    // Grown through a non-controller: the new partitions are placed too.
    let mut grow = CreatePartitionsTopic::default();
    grow.name = name("orders");
    grow.count = 9;
    let mut r = CreatePartitionsRequest::default();
    r.topics = vec![grow];
    r.timeout_ms = 30_000;
    let mut w = Wire::connect(c.addr(other)).await;
    assert_eq!(w.call(3, &r).await.results[0].error_code, 0);
    until_told(&c, &[1, 2, 3], "orders", |v| {
        v.as_ref()
            .is_some_and(|ps| ps.len() == 9 && ps.values().all(|p| p.leader > 0))
    })
    .await;

    // A broker goes: the partitions it led are offline, at a new epoch, on
    // every broker left; back, it leads them again with all their records.
    let victim = other;
    let victims: Vec<i32> = led[&victim].clone();
    c.broker(victim).kill9();
    c.stop(victim);
    let rest: Vec<i32> = (1..=3).filter(|n| *n != victim).collect();
    let offline = until_told(&c, &rest, "orders", |v| {
        v.as_ref().is_some_and(|ps| {
            victims
                .iter()
                .all(|p| ps[p].leader == -1 && ps[p].offline == vec![victim])
        })
    })
    .await
    .unwrap();
    assert!(
        victims.iter().all(|p| offline[p].epoch == 1),
        "a new leader epoch: {offline:?}"
    );
    c.spawn(victim);
    until_told(&c, &[1, 2, 3], "orders", |v| {
        v.as_ref()
            .is_some_and(|ps| victims.iter().all(|p| ps[p].leader == victim && ps[p].epoch == 2))
    })
    .await;
    let read = common::consume(&all, "orders", 6, 60).await;
    assert_eq!(read.len(), 60);

    // Deleted through a non-controller: gone from every broker and its disk.
    let mut d = DeleteTopicState::default();
    d.name = Some(name("orders"));
    let mut r = DeleteTopicsRequest::default();
    r.topics = vec![d];
    r.timeout_ms = 30_000;
    let mut w = Wire::connect(c.addr(victim)).await;
    let deleted = w.call(6, &r).await;
    assert_eq!(deleted.responses[0].error_code, 0);
    until_told(&c, &[1, 2, 3], "orders", |v| v.is_none()).await;
    let started = Instant::now();
    while (1..=3).any(|n| !local_partitions(&c, n, "orders").is_empty()) {
        assert!(started.elapsed() < LONG, "replicas of a deleted topic are left");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The controller goes: the next one creates topics.
    c.broker(controller).kill9();
    c.stop(controller);
    let rest: Vec<i32> = (1..=3).filter(|n| *n != controller).collect();
    agreed_controller(&c, &rest, controller, LONG).await;
    let mut w = Wire::connect(c.addr(rest[0])).await;
    create_topic(&mut w, "after", 4, &[]).await;
    let after = until_told(&c, &rest, "after", |v| {
        v.as_ref()
            .is_some_and(|ps| ps.len() == 4 && ps.values().all(|p| p.leader > 0))
    })
    .await
    .unwrap();
    assert!(
        after.values().all(|p| rest.contains(&p.leader)),
        "only running brokers: {after:?}"
    );
    c.terminate_all();
}

/// What is written into etcd by hand never costs a partition its data: a
/// partition or topic key overwritten with garbage keeps its last sound
/// value, a partition key deleted by hand leaves the replica where it is
/// (unserved) until the key is back, unusable topic configs are not taken; a
/// broker paused past its session registers again once and serves again.
#[tokio::test(flavor = "multi_thread")]
async fn hand_written_garbage_never_costs_data() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    let (mut c, _) = ready(&etcd, "garbage", 3).await;
    let mut w = Wire::connect(c.addr(1)).await;
    create_topic(&mut w, "kept", 3, &[("cleanup.policy", "compact")]).await;
    until_told(&c, &[1, 2, 3], "kept", |v| {
        v.as_ref()
            .is_some_and(|ps| ps.len() == 3 && ps.values().all(|p| p.leader > 0))
    })
    .await;
    let all = bootstrap(&c, &[1, 2, 3]);
    produce_keyed(&all, "kept", 3, 10).await;
    let key = |rest: &str| format!("/strom-test/garbage/{rest}");
    let get = |rest: &str| etcd.ctl(&["get", "--print-value-only", &key(rest)]).trim().to_string();
    let (partition, topic, configs) = (get("partitions/kept/0"), get("topics/kept"), get("configs/topics/kept"));
    etcd.ctl(&["put", &key("partitions/kept/0"), "garbage{"]);
    etcd.ctl(&["put", &key("topics/kept"), r#"{"v":1,"id":"nope"}"#]);
    etcd.ctl(&["put", &key("configs/topics/kept"), r#"{"cleanup.policy":"bogus"}"#]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(common::consume(&all, "kept", 3, 30).await.len(), 30, "still served");
    for node in 1..=3 {
        let mut w = Wire::connect(c.addr(node)).await;
        assert_eq!(describe_configs(&mut w, 2, "kept").await["cleanup.policy"].0, "compact");
    }
    // A partition key deleted by hand: not served, not set aside; back when the key is.
    let leader = partitions(&c, 1, "kept").await.unwrap()[&0].leader;
    etcd.ctl(&["del", &key("partitions/kept/0")]);
    until_told(&c, &[1, 2, 3], "kept", |v| {
        v.as_ref().is_some_and(|ps| !ps.contains_key(&0))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        local_partitions(&c, leader, "kept").first(),
        Some(&0),
        "the replica stays"
    );
    for (rest, value) in [
        ("partitions/kept/0", &partition),
        ("topics/kept", &topic),
        ("configs/topics/kept", &configs),
    ] {
        etcd.ctl(&["put", &key(rest), value]);
    }
    until_told(&c, &[1, 2, 3], "kept", |v| v.as_ref().is_some_and(|ps| ps.len() == 3)).await;
    assert_eq!(common::consume(&all, "kept", 3, 30).await.len(), 30, "nothing lost");
    let strays = |n: i32| {
        std::fs::read_dir(c.dirs[n as usize - 1].path().join("data"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with("-stray"))
            .count()
    };
    assert!((1..=3).all(|n| strays(n) == 0), "nothing set aside");

    // Paused past its session: registered again once, serving again.
    let pid = c.broker(3).child.id().to_string();
    let epoch = || {
        let value = etcd.ctl(&["get", "-w", "json", &key("brokers/3")]);
        let v: serde_json::Value = serde_json::from_str(&value).unwrap();
        v["kvs"][0]["create_revision"].as_i64()
    };
    let before = epoch();
    std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(SESSION_MS * 2 + 1000)).await;
    std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap();
    until_listed(&c, c.addr(1), &[1, 2, 3], LONG).await;
    let after = epoch();
    assert!(after > before, "a new broker epoch");
    tokio::time::sleep(Duration::from_millis(SESSION_MS * 2)).await;
    assert_eq!(epoch(), after, "registered once, not again and again");
    assert_eq!(common::consume(&all, "kept", 3, 30).await.len(), 30);
    c.terminate_all();
}
