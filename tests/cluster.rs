//! Brokers of one cluster find each other through etcd (issue 17, stage 3):
//! three strom processes on 127.0.1.1–3 and a three-member etcd on
//! 127.0.2.1–3. Each broker registers under a lease; every broker lists the
//! registered ones in Metadata and DescribeCluster; a killed broker leaves the
//! list when its lease expires, a stopped one at once; the cluster id is one
//! for all; a data directory of another cluster is refused.
#![cfg(feature = "cluster")]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::cluster::*;
use common::etcd::Etcd;
use common::process::BrokerProcess;
use common::wire::*;
use kafka_protocol::messages::DescribeClusterRequest;

#[tokio::test(flavor = "multi_thread")]
async fn brokers_find_each_other_and_see_each_other_go() {
    let _serial = SERIAL.lock().await;
    let Some(mut etcd) = Etcd::start(3) else { return };
    let mut c = Cluster::start(&etcd, "find", 3);
    let long = Duration::from_secs(20);
    for node in 1..=3 {
        until_listed(&c, c.addr(node), &[1, 2, 3], long).await;
    }
    // One cluster id for all, and DescribeCluster agrees with Metadata.
    let ids: Vec<String> = futures_ids(&c).await;
    assert!(ids.iter().all(|id| id == &ids[0] && id.len() == 22), "{ids:?}");
    let mut w = Wire::connect(c.addr(2)).await;
    let d = w.call(1, &DescribeClusterRequest::default()).await;
    let mut described: Vec<i32> = d.brokers.iter().map(|b| b.broker_id.0).collect();
    described.sort();
    assert_eq!(
        (d.error_code, described, d.cluster_id.to_string()),
        (0, vec![1, 2, 3], ids[0].clone())
    );

    // kill -9: gone from the others' lists once its lease expires.
    c.broker(2).kill9();
    c.stop(2);
    let gone = until_listed(&c, c.addr(1), &[1, 3], long).await;
    until_listed(&c, c.addr(3), &[1, 3], long).await;
    eprintln!("a killed broker left the lists after {gone:?} (session {SESSION_MS} ms)");
    // Back after a restart, at once (its previous lease is given up first).
    c.spawn(2);
    until_listed(&c, c.addr(1), &[1, 2, 3], long).await;

    // The etcd member a broker may be talking to dies: the brokers go on
    // seeing changes through the other members.
    etcd.kill9(0);
    c.broker(3).terminate();
    c.stop(3);
    // A clean stop gives the lease up: gone well before the session timeout.
    let gone = until_listed(&c, c.addr(1), &[1, 2], long).await;
    until_listed(&c, c.addr(2), &[1, 2], long).await;
    eprintln!("a stopped broker left the lists after {gone:?}");
    etcd.restart(0);
    c.spawn(3);
    for node in 1..=3 {
        until_listed(&c, c.addr(node), &[1, 2, 3], long).await;
    }
}

async fn futures_ids(c: &Cluster) -> Vec<String> {
    let mut ids = Vec::new();
    for node in 1..=3 {
        ids.push(listed(c.addr(node)).await.1);
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_process_with_the_same_node_id_waits_for_the_first_to_go() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    let mut c = Cluster::start(&etcd, "twice", 1);
    let long = Duration::from_secs(20);
    until_listed(&c, c.addr(1), &[1], long).await;
    // Another process, another directory and address, the same node.id.
    let other_dir = tempfile::tempdir().unwrap();
    let other_host = Ipv4Addr::new(127, 0, 1, 9);
    // Its own HTTP address too.
    let first_http = format!("{}:{}", host(1), c.http_port);
    let args: Vec<String> = c
        .args(1)
        .into_iter()
        .map(|a| match a == first_http {
            true => format!("{other_host}:{}", c.http_port),
            false => a,
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut other = BrokerProcess::spawn_at(other_host, &other_dir.path().join("data"), c.port, &args, None);
    tokio::time::sleep(Duration::from_millis(SESSION_MS)).await;
    let (brokers, _) = listed(c.addr(1)).await;
    assert_eq!(
        brokers,
        vec![(1, host(1).to_string(), c.port as i32)],
        "the first keeps the id"
    );
    assert!(
        other.log_text().contains("registered by another broker process"),
        "{}",
        other.log_text()
    );
    // When the first is gone, the second takes the id.
    c.broker(1).kill9();
    c.stop(1);
    let started = Instant::now();
    loop {
        let (brokers, _) = listed(SocketAddr::from((other_host, c.port))).await;
        if brokers == vec![(1, other_host.to_string(), c.port as i32)] {
            break;
        }
        assert!(started.elapsed() < long, "{brokers:?}: {}", other.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    other.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_directory_of_another_cluster_is_refused() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    let mut c = Cluster::start(&etcd, "refuse", 1);
    until_listed(&c, c.addr(1), &[1], Duration::from_secs(20)).await;
    c.broker(1).terminate();
    // A directory that belongs to another cluster (its own meta.properties).
    let foreign = tempfile::tempdir().unwrap();
    let data = foreign.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("meta.properties"),
        "version=1\nnode.id=2\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\n",
    )
    .unwrap();
    let args = c.args(2);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["--listen", &format!("{}:{}", host(2), c.port)])
        .arg("--data-dir")
        .arg(&data)
        .args(&args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(text.contains("cannot move between clusters"), "{text}");
}

/// What etcd holds can be changed by hand (an operator, a script, an attacker
/// with etcd access): a registration that is not sound, or claims another id
/// than its key, is not listed; a deleted registration or cluster id is put
/// back by its broker; a frozen etcd member does not lose the brokers.
#[tokio::test(flavor = "multi_thread")]
async fn what_etcd_holds_is_checked_and_repaired() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    let mut c = Cluster::start(&etcd, "repair", 2);
    let long = Duration::from_secs(20);
    until_listed(&c, c.addr(1), &[1, 2], long).await;
    let prefix = "/strom-test/repair";
    let fake = |id: i32| {
        format!(
            r#"{{"v":1,"id":{id},"listeners":[{{"name":"PLAINTEXT","host":"6.6.6.6","port":6666,"security_protocol":"PLAINTEXT"}}],"rack":null,"state":"running","incarnation":"x"}}"#
        )
    };
    // Another id than its key's, an unusable address, garbage, a deeper key.
    etcd.ctl(&["put", &format!("{prefix}/brokers/9"), &fake(2)]);
    etcd.ctl(&["put", &format!("{prefix}/brokers/8"), &fake(8).replace("6666", "-5")]);
    etcd.ctl(&["put", &format!("{prefix}/brokers/7"), "not json"]);
    etcd.ctl(&["put", &format!("{prefix}/brokers/5/x"), &fake(5)]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    until_listed(&c, c.addr(1), &[1, 2], long).await;
    until_listed(&c, c.addr(2), &[1, 2], long).await;

    // A live broker's key deleted: it registers again, and is listed again
    // (polling the listing alone could not tell: a broker whose watch has not
    // yet seen the deletion still lists it).
    etcd.ctl(&["del", &format!("{prefix}/brokers/2")]);
    let started = Instant::now();
    while !etcd.ctl(&["get", &format!("{prefix}/brokers/2")]).contains("127.0.1.2") {
        assert!(started.elapsed() < long, "broker 2 did not register again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    until_listed(&c, c.addr(1), &[1, 2], long).await;
    until_listed(&c, c.addr(2), &[1, 2], long).await;

    // The cluster id deleted: written back, so a new broker cannot found
    // another cluster under this prefix.
    let id = etcd.ctl(&["get", "--print-value-only", &format!("{prefix}/cluster/id")]);
    etcd.ctl(&["del", &format!("{prefix}/cluster/id")]);
    let started = Instant::now();
    while etcd.ctl(&["get", "--print-value-only", &format!("{prefix}/cluster/id")]) != id {
        assert!(started.elapsed() < long, "the cluster id was not written back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A broker's own key overwritten with garbage: taken back. A sound-looking
    // registration bound to no lease (written by hand) is not a broker.
    etcd.ctl(&["put", &format!("{prefix}/brokers/2"), "garbage"]);
    etcd.ctl(&["put", &format!("{prefix}/brokers/9"), &fake(9)]);
    let started = Instant::now();
    while !etcd.ctl(&["get", &format!("{prefix}/brokers/2")]).contains("127.0.1.2") {
        assert!(started.elapsed() < long, "broker 2 did not take its key back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    until_listed(&c, c.addr(1), &[1, 2], long).await;

    // The controller key overwritten by hand: removed, and one elected again.
    etcd.ctl(&["put", &format!("{prefix}/controller"), "garbage"]);
    agreed_controller(&c, &[1, 2], -1, long).await;
    // An epoch that cannot grow: no election (and no crash) until it is fixed.
    etcd.ctl(&["put", &format!("{prefix}/controller_epoch"), "2147483647"]);
    etcd.ctl(&["del", &format!("{prefix}/controller")]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut w = Wire::connect(c.addr(1)).await;
    assert_eq!(w.call(12, &metadata_request(&[])).await.controller_id.0, -1);
    etcd.ctl(&["put", &format!("{prefix}/controller_epoch"), "5"]);
    agreed_controller(&c, &[1, 2], -1, long).await;
    let epoch = etcd.ctl(&["get", "--print-value-only", &format!("{prefix}/controller_epoch")]);
    assert_eq!(epoch.trim(), "6");

    // One etcd member frozen for longer than a broker session, then thawed:
    // the brokers renew through the others (or register again), and stay listed.
    etcd.signal(0, "-STOP");
    tokio::time::sleep(Duration::from_millis(SESSION_MS * 3)).await;
    etcd.signal(0, "-CONT");
    until_listed(&c, c.addr(1), &[1, 2], long).await;
    until_listed(&c, c.addr(2), &[1, 2], long).await;
    c.broker(1).terminate();
    c.broker(2).terminate();
}

/// One controller at a time, elected through etcd with an epoch that only
/// grows; when it goes (killed, or stopped), another broker takes over; a
/// returning broker does not take it back.
#[tokio::test(flavor = "multi_thread")]
async fn one_controller_is_elected_and_replaced_when_it_goes() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    let mut c = Cluster::start(&etcd, "controller", 3);
    let long = Duration::from_secs(20);
    for node in 1..=3 {
        until_listed(&c, c.addr(node), &[1, 2, 3], long).await;
    }
    let epoch = || {
        etcd.ctl(&["get", "--print-value-only", "/strom-test/controller/controller_epoch"])
            .trim()
            .parse::<i32>()
            .unwrap()
    };
    let first = agreed_controller(&c, &[1, 2, 3], -1, long).await;
    let first_epoch = epoch();
    assert!(first_epoch >= 1);
    let mut w = Wire::connect(c.addr(first)).await;
    let d = w.call(1, &DescribeClusterRequest::default()).await;
    assert_eq!(d.controller_id.0, first);
    // `strom cluster status` asked of any broker says the same.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
        .args([
            "cluster",
            "status",
            "--json",
            "--bootstrap-server",
            &c.addr(2).to_string(),
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["controller"], first);
    let ids: Vec<i64> = v["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    // A topic with a replica on each broker, for the status below.
    create_replicated_topic(&mut w, "golden", 1, 3, &[]).await;
    until_told(&c, &[1, 2, 3], "golden", |v| {
        v.as_ref().is_some_and(|ps| ps[&0].isr.len() == 3)
    })
    .await;

    // Killed: another broker is elected at a higher epoch.
    c.broker(first).kill9();
    c.stop(first);
    let others: Vec<i32> = (1..=3).filter(|n| *n != first).collect();
    let second = agreed_controller(&c, &others, first, long).await;
    // `strom cluster status` as an operator reads it (golden text; the
    // cluster id and port vary): the two brokers left, the controller, and
    // the partition short of a replica.
    until_told(&c, &others, "golden", |v| {
        v.as_ref().is_some_and(|ps| ps[&0].isr.len() == 2)
    })
    .await;
    let text = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
        .args([
            "cluster",
            "status",
            "--bootstrap-server",
            &c.addr(others[0]).to_string(),
        ])
        .output()
        .unwrap();
    let cluster_id = d.cluster_id.to_string();
    let text = String::from_utf8_lossy(&text.stdout)
        .replace(&cluster_id, "<id>")
        .replace(&format!(":{}", c.port), ":<port>");
    let row = |n: i32| {
        let role = if n == second { "controller" } else { "" };
        format!("{n}       127.0.1.{n}:<port>        {role}")
            .trim_end()
            .to_string()
    };
    let golden = format!(
        "cluster <id>  controller {second}\nBROKER  ADDRESS          RACK  ROLE\n{}\n{}\noffline partitions: 0\nunder-replicated partitions: 1 (golden-0)\n",
        row(others[0]),
        row(others[1])
    );
    assert_eq!(text, golden);
    let second_epoch = epoch();
    assert!(second_epoch > first_epoch, "{second_epoch} after {first_epoch}");
    // Back: it follows the controller there is.
    c.spawn(first);
    until_listed(&c, c.addr(first), &[1, 2, 3], long).await;
    assert_eq!(agreed_controller(&c, &[1, 2, 3], -1, long).await, second);
    assert_eq!(epoch(), second_epoch, "no election without a reason");

    // Stopped cleanly: handed over at once (its lease, and the key, go).
    let stopped = Instant::now();
    c.broker(second).terminate();
    c.stop(second);
    let rest: Vec<i32> = (1..=3).filter(|n| *n != second).collect();
    agreed_controller(&c, &rest, second, long).await;
    assert!(epoch() > second_epoch);
    eprintln!("controller handed over {:?} after a clean stop", stopped.elapsed());
}

/// Every write of a controller is conditioned on its election: once it is
/// deposed (its lease gone, another elected), its writes fail with
/// NOT_CONTROLLER, even though a controller key exists again.
#[tokio::test(flavor = "multi_thread")]
async fn a_deposed_controller_cannot_write() {
    use etcd_client::TxnOp;
    use strom::cluster::etcd::MetadataStore;
    use strom::config::cluster::parse_store;
    use strom::error::Error;

    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    let url = parse_store(&etcd.store("strom-test/fence")).unwrap();
    let store = MetadataStore::connect(&url).await.unwrap();
    let key = store.prefixed("topics/t");
    let write = |value: &str| vec![TxnOp::put(key.as_str(), value, None)];

    let first_lease = store.grant_lease(30).await.unwrap();
    let first = store
        .campaign(1, first_lease)
        .await
        .unwrap()
        .expect("no controller yet");
    let second_lease = store.grant_lease(30).await.unwrap();
    assert_eq!(store.campaign(2, second_lease).await.unwrap(), None, "one at a time");
    store.guarded(&first, vec![], write("from 1")).await.unwrap();

    // Deposed: its lease (and so its controller key) is gone; 2 is elected.
    store.revoke(first_lease).await.unwrap();
    let second = store.campaign(2, second_lease).await.unwrap().expect("elected");
    assert_eq!(second.epoch, first.epoch + 1);
    let stale = store.guarded(&first, vec![], write("stale")).await;
    assert!(matches!(stale, Err(Error::NotController)), "{stale:?}");
    store.guarded(&second, vec![], write("from 2")).await.unwrap();
    // Still the controller, but what it read changed: told apart from deposed.
    let changed = etcd_client::Compare::create_revision(key.as_str(), etcd_client::CompareOp::Equal, 0);
    let conflict = store.guarded(&second, vec![changed], write("conflict")).await;
    assert!(matches!(conflict, Ok(None)), "{conflict:?}");
    let value = etcd.ctl(&["get", "--print-value-only", "/strom-test/fence/topics/t"]);
    assert_eq!(value.trim(), "from 2");
}
