//! Replication between the brokers of a cluster (issue 17, stage 5): followers
//! copy their leaders' logs with Kafka's Fetch, byte for byte; acks=all is
//! answered once every in-sync replica has the batch (the high watermark
//! passed it); when a leader is killed the controller elects an in-sync
//! follower, and no acknowledged record is lost or duplicated; a returning
//! broker truncates what it had that the new leader does not and copies the
//! rest. Three strom processes on 127.0.1.1–3 and etcd on 127.0.2.1–3.
#![cfg(feature = "cluster")]

mod common;

use std::time::{Duration, Instant};

use common::checker::*;
use common::cluster::*;
use common::etcd::Etcd;
use common::wire::*;

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_records_survive_the_leaders_death() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    let (mut c, _) = ready(&etcd, "replication", 3).await;
    let mut w = Wire::connect(c.addr(1)).await;
    create_replicated_topic(&mut w, "repl", 3, 3, &[]).await;
    create_replicated_topic(&mut w, "strict", 1, 3, &[("min.insync.replicas", "3")]).await;
    let told = until_told(&c, &[1, 2, 3], "repl", |v| {
        v.as_ref()
            .is_some_and(|ps| ps.len() == 3 && ps.values().all(|p| p.leader > 0 && p.isr.len() == 3))
    })
    .await
    .unwrap();
    until_told(&c, &[1, 2, 3], "strict", |v| v.as_ref().is_some_and(|ps| ps.len() == 1)).await;

    // acks=all from an idempotent producer: answered once all three have it.
    let all = bootstrap(&c, &[1, 2, 3]);
    let producer = idempotent_producer(&all);
    let mut acked = Acked::new();
    produce_acked(&producer, "repl", 3, 0, 300, &mut acked).await;
    until_identical(&c, &[1, 2, 3], "repl", 3).await;
    // min.insync.replicas=3 is met with all three up.
    let strict_leader = partitions(&c, 1, "strict").await.unwrap()[&0].leader;
    let mut sw = Wire::connect(c.addr(strict_leader)).await;
    assert_eq!(produce_at_leader(&mut sw, "strict", 0, batch(1, -1, 0, 0)).await.0, 0);

    // The leader of partition 0 dies mid-stream; the producer carries on.
    let victim = told[&0].leader;
    let rest: Vec<i32> = (1..=3).filter(|n| *n != victim).collect();
    let (stream, killed) = {
        let producer = producer.clone();
        let mut during = Acked::new();
        // Rounds of 30, so that the stream runs before, during and after.
        let stream = tokio::spawn(async move {
            for round in 0..40 {
                produce_acked(&producer, "repl", 3, 300 + round * 30, 30, &mut during).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            during
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.broker(victim).kill9();
        c.stop(victim);
        (stream, Instant::now())
    };
    acked.extend(stream.await.unwrap());
    eprintln!("the stream went on {:?} after the leader was killed", killed.elapsed());
    let moved = until_told(&c, &rest, "repl", |v| {
        v.as_ref()
            .is_some_and(|ps| ps.values().all(|p| rest.contains(&p.leader)))
    })
    .await
    .unwrap();
    assert!(moved[&0].epoch > told[&0].epoch, "a new leader epoch");
    assert!(
        moved[&0].isr.iter().all(|b| *b != victim),
        "the dead broker left the ISR"
    );

    // The metrics say so: partitions led with a replica out of the ISR, one
    // active controller.
    let http_port = c.http_port;
    let metric = move |node: i32, name: &'static str| {
        let addr = std::net::SocketAddr::from((host(node), http_port));
        async move {
            let text = common::http::get(addr, "/metrics").await.body;
            common::http::sample(&text, name, "").unwrap_or(-1.0)
        }
    };
    let under = metric(
        moved[&0].leader,
        "kafka_server_replicamanager_underreplicatedpartitions",
    )
    .await;
    assert!(under >= 1.0, "under-replicated partitions: {under}");
    let mut controllers = 0.0;
    for n in &rest {
        controllers += metric(*n, "kafka_controller_kafkacontroller_activecontrollercount").await;
    }
    assert_eq!(controllers, 1.0);

    // Fewer in sync than min.insync.replicas: acks=all is refused.
    let strict = until_told(&c, &rest, "strict", |v| {
        v.as_ref()
            .is_some_and(|ps| rest.contains(&ps[&0].leader) && ps[&0].isr.len() == 2)
    })
    .await
    .unwrap();
    let mut sw = Wire::connect(c.addr(strict[&0].leader)).await;
    assert_eq!(
        produce_at_leader(&mut sw, "strict", 0, batch(1, -1, 0, 0)).await.0,
        19,
        "NOT_ENOUGH_REPLICAS"
    );

    // Every acknowledged record is there, once, at its offset.
    check(
        &acked,
        common::consume(&bootstrap(&c, &rest), "repl", 3, acked.len()).await,
    );

    // The dead broker comes back as a follower and copies the new leaders.
    c.spawn(victim);
    until_listed(&c, c.addr(victim), &[1, 2, 3], LONG).await;
    until_identical(&c, &[1, 2, 3], "repl", 3).await;
    check(&acked, common::consume(&all, "repl", 3, acked.len()).await);
    // Caught up, it joins the ISR again (the leaders ask the controller).
    let whole = until_told(&c, &[1, 2, 3], "repl", |v| {
        v.as_ref().is_some_and(|ps| ps.values().all(|p| p.isr.len() == 3))
    })
    .await
    .unwrap();
    until_told(&c, &[1, 2, 3], "strict", |v| {
        v.as_ref().is_some_and(|ps| ps[&0].isr.len() == 3)
    })
    .await;
    for n in 1..=3 {
        let under = metric(n, "kafka_server_replicamanager_underreplicatedpartitions").await;
        assert_eq!(under, 0.0, "broker {n}");
    }

    // DeleteRecords on the leader moves every replica's log start.
    {
        use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
        use kafka_protocol::messages::DeleteRecordsRequest;
        let mut dp = DeleteRecordsPartition::default();
        dp.partition_index = 0;
        dp.offset = 100;
        let mut dt = DeleteRecordsTopic::default();
        dt.name = name("repl");
        dt.partitions = vec![dp];
        let mut req = DeleteRecordsRequest::default();
        req.topics = vec![dt];
        req.timeout_ms = 30_000;
        let mut lw = Wire::connect(c.addr(whole[&0].leader)).await;
        let r = lw.call(2, &req).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
        let started = Instant::now();
        for n in 1..=3 {
            let file = c.dirs[n as usize - 1].path().join("data/repl-0/log-start-offset");
            while std::fs::read_to_string(&file).unwrap_or_default().trim() != "100" {
                assert!(
                    started.elapsed() < LONG,
                    "broker {n} kept records below the leader's log start"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        acked.retain(|(p, o), _| *p != 0 || *o >= 100);
    }

    // An acks=all write in flight while the ISR shrinks below
    // min.insync.replicas is not acknowledged (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    let controller = agreed_controller(&c, &[1, 2, 3], -1, LONG).await;
    let strict_leader = partitions(&c, 1, "strict").await.unwrap()[&0].leader;
    let frozen = (1..=3).find(|n| *n != strict_leader && *n != controller).unwrap();
    let pid = c.broker(frozen).child.id().to_string();
    std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap();
    let mut sw = Wire::connect(c.addr(strict_leader)).await;
    let code = produce(&mut sw, "strict", 0, batch(1, -1, 0, 0)).await.0;
    std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap();
    assert_eq!(code, 20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND");
    until_told(&c, &[1, 2, 3], "strict", |v| {
        v.as_ref().is_some_and(|ps| ps[&0].isr.len() == 3)
    })
    .await;

    // A follower paused past replica.lag.time.max.ms leaves the ISR (acks=all
    // goes on without it); resumed, it catches up and joins again.
    // (Not the controller: a frozen controller changes no ISR, in Kafka too.)
    let leader = whole[&0].leader;
    let follower = (1..=3).find(|n| *n != leader && *n != controller).unwrap();
    let pid = c.broker(follower).child.id().to_string();
    std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap();
    let paused = Instant::now();
    let mut shrunk = false;
    while paused.elapsed() < Duration::from_millis(2_500) && !shrunk {
        shrunk = partitions(&c, leader, "repl")
            .await
            .is_some_and(|ps| !ps[&0].isr.contains(&follower));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap();
    assert!(shrunk, "{follower} stayed in the ISR of repl-0 while paused");
    produce_acked(&producer, "repl", 3, 2_000, 60, &mut acked).await;
    until_told(&c, &[1, 2, 3], "repl", |v| {
        v.as_ref().is_some_and(|ps| ps.values().all(|p| p.isr.len() == 3))
    })
    .await;
    check(&acked, common::consume(&all, "repl", 3, acked.len()).await);
    c.terminate_all();
}

/// auto.leader.rebalance.enable: once a broker that went is back in sync, the
/// controller gives it back the leadership of the partitions it prefers.
#[tokio::test(flavor = "multi_thread")]
async fn leadership_returns_to_preferred_replicas() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    let fast = ["--override", "leader.imbalance.check.interval.seconds=1"];
    let (mut c, _) = ready_with(&etcd, "rebalance", 3, &fast).await;
    let mut w = Wire::connect(c.addr(1)).await;
    create_replicated_topic(&mut w, "pref", 3, 3, &[]).await;
    let preferred = |v: &TopicView| {
        v.as_ref()
            .is_some_and(|ps| ps.len() == 3 && ps.values().all(|p| p.leader == p.replicas[0] && p.isr.len() == 3))
    };
    let told = until_told(&c, &[1, 2, 3], "pref", preferred).await.unwrap();
    let victim = told[&0].leader;
    c.broker(victim).kill9();
    c.stop(victim);
    let rest: Vec<i32> = (1..=3).filter(|n| *n != victim).collect();
    until_told(&c, &rest, "pref", |v| {
        v.as_ref()
            .is_some_and(|ps| ps[&0].leader != victim && ps[&0].leader > 0)
    })
    .await;
    c.spawn(victim);
    let back = until_told(&c, &[1, 2, 3], "pref", preferred).await.unwrap();
    assert!(back[&0].epoch >= told[&0].epoch + 2, "moved away and back: {back:?}");
    c.terminate_all();
}

/// SIGTERM (controlled shutdown): the broker's leadership moves to the other
/// in-sync replicas while it still serves, and only then does it stop; an
/// idempotent acks=all producer loses nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopping_broker_hands_its_leadership_over_first() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    let (mut c, _) = ready(&etcd, "handover", 3).await;
    let mut w = Wire::connect(c.addr(1)).await;
    create_replicated_topic(&mut w, "handover", 6, 3, &[]).await;
    let told = until_told(&c, &[1, 2, 3], "handover", |v| {
        v.as_ref()
            .is_some_and(|ps| ps.len() == 6 && ps.values().all(|p| p.leader > 0 && p.isr.len() == 3))
    })
    .await
    .unwrap();
    let victim = told[&0].leader;
    let rest: Vec<i32> = (1..=3).filter(|n| *n != victim).collect();
    let all = bootstrap(&c, &[1, 2, 3]);
    let producer = idempotent_producer(&all);
    let mut acked = Acked::new();
    produce_acked(&producer, "handover", 6, 0, 120, &mut acked).await;
    let stream = {
        let producer = producer.clone();
        tokio::spawn(async move {
            let mut during = Acked::new();
            for round in 0..30 {
                produce_acked(&producer, "handover", 6, 120 + round * 12, 12, &mut during).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            during
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut stopped = c.stop(victim).expect("running");
    assert!(stopped.terminate().success(), "{}", stopped.log_text());
    // Moved before it stopped: the others tell the new leaders at once.
    let view = partitions(&c, rest[0], "handover").await.unwrap();
    assert!(
        view.values()
            .all(|p| rest.contains(&p.leader) && !p.isr.contains(&victim)),
        "{view:?}"
    );
    // In etcd's history: when partition 0's leadership moved, the broker
    // was still registered, as shutting down (without a controlled
    // shutdown, its registration would be gone first).
    let moved_at = etcd.ctl(&["get", "/strom-test/handover/partitions/handover/0", "-w", "json"]);
    let moved_at: i64 = moved_at
        .split("\"mod_revision\":")
        .nth(1)
        .and_then(|r| r.split(|ch: char| !ch.is_ascii_digit()).next())
        .and_then(|r| r.parse().ok())
        .expect("the partition key's revision");
    let then = etcd.ctl(&[
        "get",
        &format!("/strom-test/handover/brokers/{victim}"),
        "--print-value-only",
        &format!("--rev={moved_at}"),
    ]);
    assert!(then.contains("shutting_down"), "at revision {moved_at}: {then:?}");
    acked.extend(stream.await.unwrap());
    let read = common::consume(&bootstrap(&c, &rest), "handover", 6, acked.len()).await;
    check(&acked, read);
    c.terminate_all();
}

/// ElectLeaders (kafka-leader-election): with automatic rebalancing off, the
/// preferred replicas get their leadership back only when asked, through any
/// broker (forwarded to the controller); asked again, nothing is needed.
#[tokio::test(flavor = "multi_thread")]
async fn preferred_leaders_are_elected_when_asked() {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::ElectLeadersRequest;
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    let manual = ["--override", "auto.leader.rebalance.enable=false"];
    let (mut c, controller) = ready_with(&etcd, "elect", 3, &manual).await;
    let mut w = Wire::connect(c.addr(1)).await;
    create_replicated_topic(&mut w, "elect", 3, 3, &[]).await;
    let in_sync = |v: &TopicView| {
        v.as_ref()
            .is_some_and(|ps| ps.len() == 3 && ps.values().all(|p| p.isr.len() == 3))
    };
    let told = until_told(&c, &[1, 2, 3], "elect", in_sync).await.unwrap();
    // A broker other than the controller goes and comes back: the partitions
    // it preferred stay with the others.
    let victim = (1..=3)
        .find(|n| *n != controller && told.values().any(|p| p.replicas[0] == *n))
        .unwrap();
    c.broker(victim).kill9();
    c.stop(victim);
    let rest: Vec<i32> = (1..=3).filter(|n| *n != victim).collect();
    until_told(&c, &rest, "elect", |v| {
        v.as_ref()
            .is_some_and(|ps| ps.values().all(|p| p.leader != victim && p.leader > 0))
    })
    .await;
    c.spawn(victim);
    let moved = until_told(&c, &[1, 2, 3], "elect", in_sync).await.unwrap();
    let displaced: Vec<i32> = moved
        .iter()
        .filter(|(_, p)| p.leader != p.replicas[0])
        .map(|(i, _)| *i)
        .collect();
    assert!(!displaced.is_empty(), "{moved:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        partitions(&c, 1, "elect").await,
        Some(moved.clone()),
        "no automatic rebalance"
    );

    // Asked of a broker that is not the controller, for every partition.
    let other = (1..=3).find(|n| *n != controller).unwrap();
    let mut w = Wire::connect(c.addr(other)).await;
    let mut all = ElectLeadersRequest::default();
    all.election_type = 0;
    all.topic_partitions = None;
    all.timeout_ms = 30_000;
    let answer = w.call(2, &all).await;
    assert_eq!(answer.error_code, 0);
    let elected: Vec<(i32, i16)> = answer
        .replica_election_results
        .iter()
        .filter(|r| r.topic.as_str() == "elect")
        .flat_map(|r| r.partition_result.iter().map(|p| (p.partition_id, p.error_code)))
        .collect();
    assert_eq!(elected, displaced.iter().map(|p| (*p, 0)).collect::<Vec<_>>());
    let back = until_told(&c, &[1, 2, 3], "elect", |v| {
        v.as_ref()
            .is_some_and(|ps| ps.values().all(|p| p.leader == p.replicas[0]))
    })
    .await
    .unwrap();
    assert!(displaced.iter().all(|p| back[p].epoch > moved[p].epoch));
    // Named again: ELECTION_NOT_NEEDED; an unknown partition: UNKNOWN_TOPIC_OR_PARTITION.
    let mut named = ElectLeadersRequest::default();
    named.election_type = 0;
    let mut tp = TopicPartitions::default();
    tp.topic = name("elect");
    tp.partitions = vec![0, 7];
    named.topic_partitions = Some(vec![tp]);
    let answer = w.call(2, &named).await;
    let codes: Vec<i16> = answer.replica_election_results[0]
        .partition_result
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, vec![84, 3]);
    c.terminate_all();
}

/// unclean.leader.election.enable: a partition whose in-sync replicas are all
/// gone goes to a running replica that was out of sync (its log wins), and
/// the old leader, back, truncates to it and follows.
#[tokio::test(flavor = "multi_thread")]
async fn an_unclean_election_when_the_topic_allows_it() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    let (mut c, _) = ready(&etcd, "unclean", 3).await;
    let mut w = Wire::connect(c.addr(1)).await;
    create_replicated_topic(&mut w, "risky", 1, 2, &[("unclean.leader.election.enable", "true")]).await;
    let told = until_told(&c, &[1, 2, 3], "risky", |v| {
        v.as_ref().is_some_and(|ps| ps.len() == 1 && ps[&0].isr.len() == 2)
    })
    .await
    .unwrap();
    let (leader, follower) = (
        told[&0].leader,
        *told[&0].replicas.iter().find(|b| **b != told[&0].leader).unwrap(),
    );
    let third = (1..=3).find(|n| *n != leader && *n != follower).unwrap();
    // Told before the leader's replica exists: retried as a client would.
    until_local(&c, leader, "risky", &[0]).await;
    let mut lw = Wire::connect(c.addr(leader)).await;
    assert_eq!(produce_at_leader(&mut lw, "risky", 0, batch(3, -1, 0, 0)).await.0, 0);
    // The follower goes; the leader takes writes alone; then the leader goes.
    c.stop(follower).expect("running").kill9();
    until_told(&c, &[leader, third], "risky", |v| {
        v.as_ref().is_some_and(|ps| ps[&0].isr == vec![leader])
    })
    .await;
    let mut lw = Wire::connect(c.addr(leader)).await;
    assert_eq!(produce(&mut lw, "risky", 0, batch(5, -1, 0, 0)).await.0, 0);
    c.stop(leader).expect("running").kill9();
    // Back, out of sync: elected all the same, at a new epoch.
    c.spawn(follower);
    let elected = until_told(&c, &[follower, third], "risky", |v| {
        v.as_ref().is_some_and(|ps| ps[&0].leader == follower)
    })
    .await
    .unwrap();
    assert_eq!(elected[&0].isr, vec![follower]);
    assert!(elected[&0].epoch > told[&0].epoch);
    let mut fw = Wire::connect(c.addr(follower)).await;
    let (code, offset) = produce_at_leader(&mut fw, "risky", 0, batch(1, -1, 0, 0)).await;
    assert_eq!(
        (code, offset),
        (0, 3),
        "the follower's log wins: the 5 it never had are gone"
    );
    // The old leader comes back, truncates to the new leader's log, and follows.
    c.spawn(leader);
    until_told(&c, &[1, 2, 3], "risky", |v| {
        v.as_ref().is_some_and(|ps| ps[&0].isr.len() == 2)
    })
    .await;
    until_identical(&c, &[leader, follower], "risky", 1).await;
    c.terminate_all();
}
