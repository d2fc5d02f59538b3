//! Network partitions (issue 17): three brokers, each on a host of its own
//! (network namespaces, tests/common/netns.rs), with one link for clients, one
//! to the other brokers and one to etcd. A test cuts one link of a partition
//! leader while the checker's producers (rdkafka idempotent, kafkajs, kcat;
//! acks=all, min.insync.replicas=2) stream through it, heals it, and checks
//! that no acknowledged write was lost, none doubled, and no leader epoch went
//! backwards (tests/common/checker.rs).
#![cfg(feature = "cluster")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::checker::*;
use common::cluster::*;
use common::etcd::Etcd;
use common::netns::{Link, Netns, ETCD_HOST};
use common::wire::*;
use strom::record::records::{build_batch, NewRecord};

/// The brokers' namespaces and networks, and a three-member etcd on the
/// test's side of the etcd network. None: skipped (see `Netns::create`).
async fn partitioned_cluster(name: &str) -> Option<(Netns, Etcd, Cluster, i32)> {
    let net = Netns::create()?;
    let etcd = Etcd::start_at(3, |_| ETCD_HOST)?;
    let c = Cluster::start_as(Layout::Netns, &etcd, name, 3, &[]);
    let (c, controller) = until_ready(c).await;
    Some((net, etcd, c, controller))
}

/// One record, acks=all, to `partition` of `topic` at `addr`: the error code.
async fn produce_one(addr: SocketAddr, topic: &str, partition: i32, value: &str) -> i16 {
    let record = NewRecord {
        key: None,
        value: Some(Bytes::from(value.to_string())),
        timestamp: 0,
        headers: Vec::new(),
    };
    let mut request = produce_request(topic, partition, Bytes::from(build_batch(&[record], None)), -1);
    request.timeout_ms = 3_000;
    let mut w = Wire::connect(addr).await;
    w.call(9, &request).await.responses[0].partition_responses[0].error_code
}

/// A leader cut from etcd but not from its clients or its followers: its
/// lease runs out, the controller elects other leaders, and the followers go
/// to them. The cut broker still believes it leads, but nothing it takes can
/// reach the high watermark (its followers left, its ISR change is fenced):
/// it acknowledges nothing. Healed, it learns it was deposed, truncates what
/// it alone had, and follows.
#[tokio::test(flavor = "multi_thread")]
async fn a_leader_cut_from_etcd_acknowledges_nothing_and_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let Some((net, _etcd, c, controller)) = partitioned_cluster("cut-from-etcd").await else {
        return;
    };
    let net = &net;
    checked_under_fault(c, controller, "cut-from-etcd", |c, controller, told| async move {
        let (&partition, cut) = told
            .iter()
            .find(|(_, p)| p.leader != controller)
            .unwrap_or((&0, &told[&0]));
        let zombie = cut.leader;
        net.cut(zombie, Link::Etcd);
        let rest: Vec<i32> = (1..=3).filter(|n| *n != zombie).collect();
        // The others see it gone and elect leaders among themselves.
        until_listed(&c, c.addr(rest[0]), &rest, LONG).await;
        until_told(&c, &rest, "jepsen", |v| {
            v.as_ref()
                .is_some_and(|ps| ps.values().all(|p| rest.contains(&p.leader)))
        })
        .await;
        // Writing to the deposed leader directly, as a client with old
        // metadata would: never acknowledged.
        let code = produce_one(c.addr(zombie), "jepsen", partition, "written-to-a-zombie").await;
        assert_ne!(code, 0, "a leader cut from etcd acknowledged an acks=all write");
        eprintln!("cut-from-etcd: broker {zombie} (deposed) answered an acks=all write with error {code}");
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        net.heal(zombie, Link::Etcd);
        // Back in the cluster: every broker lists all three again.
        until_listed(&c, c.addr(zombie), &[1, 2, 3], LONG).await;
        c
    })
    .await;
}

/// A leader (the controller, so its ISR changes need no other broker) cut
/// from its followers but not from etcd or its clients: its ISRs shrink to
/// itself, and with min.insync.replicas=2 its acks=all writes are refused
/// (NOT_ENOUGH_REPLICAS) rather than acknowledged by one copy. Healed, the
/// followers catch up and rejoin the ISRs.
#[tokio::test(flavor = "multi_thread")]
async fn a_leader_cut_from_its_followers_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let Some((net, _etcd, c, controller)) = partitioned_cluster("cut-from-peers").await else {
        return;
    };
    let net = &net;
    checked_under_fault(c, controller, "cut-from-peers", |c, controller, told| async move {
        let led: Vec<i32> = told
            .iter()
            .filter(|(_, p)| p.leader == controller)
            .map(|(i, _)| *i)
            .collect();
        net.cut(controller, Link::Peers);
        if let Some(&partition) = led.first() {
            // Seen from another broker: the partitions it leads are in sync on it alone.
            let other = (1..=3).find(|n| *n != controller).unwrap();
            until_told(&c, &[other], "jepsen", |v| {
                v.as_ref().is_some_and(|ps| {
                    led.iter()
                        .all(|i| ps[i].leader == controller && ps[i].isr == vec![controller])
                })
            })
            .await;
            let code = produce_one(c.addr(controller), "jepsen", partition, "one-copy-only").await;
            assert_eq!(
                code, 19,
                "an acks=all write with the ISR below min.insync.replicas: NOT_ENOUGH_REPLICAS"
            );
            eprintln!("cut-from-peers: broker {controller} leads {led:?} with the ISR shrunk to itself");
        } else {
            tokio::time::sleep(Duration::from_millis(3_000)).await;
        }
        net.heal(controller, Link::Peers);
        c
    })
    .await;
}
