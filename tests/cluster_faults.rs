//! Faults against a replicated cluster (issue 17, stage 6), each while an
//! idempotent acks=all librdkafka producer streams into a replication-factor-3
//! topic, checked as Jepsen's queue workload checks: after the faults heal,
//! every acknowledged record is read back once, at its offset, and leader
//! epochs never went backwards. Each scenario prints its counts.
#![cfg(feature = "cluster")]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::checker::*;
use common::cluster::*;
use common::etcd::Etcd;

/// Stream records in rounds while `fault` runs; then check everything.
async fn under_fault<F, Fut>(etcd: &Etcd, name: &str, fault: F)
where
    F: FnOnce(Cluster, i32, BTreeMap<i32, Told>) -> Fut,
    Fut: std::future::Future<Output = Cluster>,
{
    let (c, controller) = ready(etcd, name, 3).await;
    checked_under_fault(c, controller, name, fault).await;
}

/// A leader frozen past its session (a zombie): the others elect a new
/// leader; resumed, it finds itself deposed, truncates what it alone had and
/// follows.
#[tokio::test(flavor = "multi_thread")]
async fn a_zombie_leader_loses_no_acknowledged_write() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    under_fault(&etcd, "zombie", |mut c, controller, told| async move {
        // A leader that is not the controller (a frozen controller is another scenario).
        let zombie = told
            .values()
            .map(|p| p.leader)
            .find(|l| *l != controller)
            .unwrap_or(told[&0].leader);
        c.signal(zombie, "-STOP");
        tokio::time::sleep(Duration::from_millis(SESSION_MS * 2)).await;
        c.signal(zombie, "-CONT");
        c
    })
    .await;
}

/// The controller killed: another is elected and failover goes on.
#[tokio::test(flavor = "multi_thread")]
async fn the_controller_killed_loses_no_acknowledged_write() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    under_fault(&etcd, "controller-kill", |mut c, controller, _| async move {
        c.broker(controller).kill9();
        c.stop(controller);
        tokio::time::sleep(Duration::from_millis(SESSION_MS + 1_000)).await;
        c.spawn(controller);
        c
    })
    .await;
}

/// All three brokers killed, then started again.
#[tokio::test(flavor = "multi_thread")]
async fn all_brokers_killed_and_restarted_lose_no_acknowledged_write() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    under_fault(&etcd, "all-killed", |mut c, _, _| async move {
        for n in 1..=3 {
            c.broker(n).kill9();
            c.stop(n);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for n in 1..=3 {
            c.spawn(n);
        }
        c
    })
    .await;
}

/// An etcd member killed and brought back: metadata keeps flowing.
#[tokio::test(flavor = "multi_thread")]
async fn an_etcd_member_killed_loses_no_acknowledged_write() {
    let _serial = SERIAL.lock().await;
    let Some(mut etcd) = Etcd::start(3) else { return };
    etcd.kill9(0);
    under_fault(&etcd, "etcd-kill", |mut c, _, told| async move {
        // And a leader killed while an etcd member is down.
        let victim = told[&1].leader;
        c.broker(victim).kill9();
        c.stop(victim);
        tokio::time::sleep(Duration::from_millis(SESSION_MS + 1_000)).await;
        c.spawn(victim);
        c
    })
    .await;
    etcd.restart(0);
}

/// A leader paused longer than replica.lag.time.max.ms (but within its
/// session), resumed, then killed at once: resumed, it must not take its
/// followers out of the ISRs before it sees their fetches (or it alone could
/// be elected, and its partitions would stay offline after its death).
#[tokio::test(flavor = "multi_thread")]
async fn a_leader_paused_then_killed_leaves_electable_followers() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    under_fault(&etcd, "pause-then-kill", |mut c, controller, told| async move {
        // The controller itself: its ISR changes take the in-process path.
        let leader = told
            .values()
            .map(|p| p.leader)
            .find(|l| *l == controller)
            .unwrap_or(told[&0].leader);
        c.signal(leader, "-STOP");
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        c.signal(leader, "-CONT");
        tokio::time::sleep(Duration::from_millis(400)).await;
        c.broker(leader).kill9();
        c.stop(leader);
        let rest: Vec<i32> = (1..=3).filter(|n| *n != leader).collect();
        // Every partition led by a broker still running, not offline.
        until_told(&c, &rest, "jepsen", |v| {
            v.as_ref()
                .is_some_and(|ps| ps.values().all(|p| rest.contains(&p.leader)))
        })
        .await;
        c.spawn(leader);
        c
    })
    .await;
}
