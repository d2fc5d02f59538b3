//! The cluster's shared state (issue 17): ACLs, SCRAM users, client quotas
//! and the brokers' default configs live in etcd, so a change made through
//! any broker holds on every broker, survives a restart, and a broker that
//! becomes part of a cluster brings what it had.
#![cfg(feature = "cluster")]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::etcd::Etcd;
use common::process::strom_cli;
use common::wire::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use strom::security::scram::ScramMechanism;

const SECURED: [&str; 8] = [
    "--override",
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "--override",
    "allow.everyone.if.no.acl.found=true",
    "--override",
    "sasl.enabled.mechanisms=SCRAM-SHA-256",
    "--override",
    "default.replication.factor=3",
];

/// Whether `user` logs in with SCRAM-SHA-256 at `addr` (and gets metadata).
async fn logs_in(addr: SocketAddr, user: &str, password: &str) -> bool {
    let (user, password) = (user.to_string(), password.to_string());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", addr.to_string())
            .set("security.protocol", "sasl_plaintext")
            .set("sasl.mechanisms", "SCRAM-SHA-256")
            .set("sasl.username", user)
            .set("sasl.password", password)
            .create()
            .unwrap();
        consumer.fetch_metadata(None, Duration::from_secs(4)).is_ok()
    })
    .await
    .unwrap()
}

/// The error code broker `node` gives an anonymous client's Metadata for `topic`.
async fn described(c: &Cluster, node: i32, topic: &str) -> i16 {
    let mut w = Wire::connect(c.addr(node)).await;
    let mut request = metadata_request(&[topic]);
    request.allow_auto_topic_creation = false;
    w.call(12, &request).await.topics[0].error_code
}

/// Wait until every broker of `nodes` answers `topic`'s Metadata with `code`.
async fn until_described(c: &Cluster, nodes: &[i32], topic: &str, code: i16) -> Duration {
    let started = Instant::now();
    for &node in nodes {
        loop {
            let now = described(c, node, topic).await;
            if now == code {
                break;
            }
            assert!(
                started.elapsed() < LONG,
                "broker {node} still answers {now} for {topic}, not {code}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    started.elapsed()
}

async fn cli(args: &[&str]) -> String {
    let (ok, out, err) = strom_cli(args.iter().map(|a| a.to_string()).collect()).await;
    assert!(ok, "strom {args:?}: {err}");
    out
}

/// Changes through one broker hold on the others, and on a broker restarted.
#[tokio::test(flavor = "multi_thread")]
async fn acls_users_quotas_and_default_configs_are_the_clusters() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(1) else { return };
    let c = Cluster::start_as(Layout::WithSasl, &etcd, "security", 3, &SECURED);
    let (mut c, controller) = until_ready(c).await;
    let (b1, b2, b3) = (c.addr(1).to_string(), c.addr(2).to_string(), c.addr(3).to_string());

    // A SCRAM user made through broker 2 logs in on broker 3 (and 1).
    let code = upsert_scram_user(c.addr(2), "alice", "alice-secret", ScramMechanism::Sha256).await;
    assert_eq!(code, 0);
    for node in [3, 1] {
        let started = Instant::now();
        while !logs_in(sasl_addr(node, c.port), "alice", "alice-secret").await {
            assert!(started.elapsed() < LONG, "alice cannot log in on broker {node}");
        }
    }
    assert!(!logs_in(sasl_addr(3, c.port), "alice", "wrong").await);
    assert!(cli(&["users", "list", "--bootstrap-server", &b3])
        .await
        .contains("alice"));

    // With ACLs checked, a broker that is not the controller does not forward
    // a client's CreateTopics (the controller would see this broker's
    // anonymous connection, not the client): NOT_CONTROLLER, and the client
    // asks the controller, as strom's CLI does.
    let other = (1..=3).find(|n| *n != controller).unwrap();
    let mut w = Wire::connect(c.addr(other)).await;
    let mut request = kafka_protocol::messages::CreateTopicsRequest::default();
    let mut topic = kafka_protocol::messages::create_topics_request::CreatableTopic::default();
    topic.name = name("secret");
    topic.num_partitions = 1;
    topic.replication_factor = 3;
    request.topics = vec![topic];
    assert_eq!(w.call(5, &request).await.topics[0].error_code, 41);
    cli(&[
        "topics",
        "create",
        "secret",
        "--replication-factor",
        "3",
        "--bootstrap-server",
        &c.addr(other).to_string(),
    ])
    .await;

    // An ACL added through broker 1 denies on broker 3.
    let mut w = Wire::connect(c.addr(1)).await;
    until_described(&c, &[1, 2, 3], "secret", 0).await;
    let deny = [
        "--deny-principal",
        "User:ANONYMOUS",
        "--operation",
        "Describe",
        "--topic",
        "secret",
    ];
    cli(&[&["acls", "add", "--bootstrap-server", &b1][..], &deny].concat()).await;
    let took = until_described(&c, &[3, 2, 1], "secret", 29).await;
    eprintln!("an ACL added on broker 1 held on every broker after {took:?}");
    assert!(cli(&["acls", "list", "--bootstrap-server", &b2])
        .await
        .contains("User:ANONYMOUS"));

    // Client quotas and the brokers' default configs, set through broker 1,
    // as broker 3 tells them.
    cli(&[
        "quotas",
        "alter",
        "--bootstrap-server",
        &b1,
        "--user",
        "alice",
        "--set",
        "producer_byte_rate=1048576",
    ])
    .await;
    let (code, message) = incremental_alter(&mut w, 4, "", &[("log.retention.ms", 0, Some("123456"))]).await;
    assert_eq!(code, 0, "{message:?}");
    let started = Instant::now();
    loop {
        let quotas = cli(&["quotas", "describe", "--bootstrap-server", &b3]).await;
        let mut w3 = Wire::connect(c.addr(3)).await;
        let configs = describe_configs(&mut w3, 4, "3").await;
        let retention = &configs["log.retention.ms"];
        // DYNAMIC_DEFAULT_BROKER_CONFIG is source 3.
        if quotas.contains("producer_byte_rate") && retention.0 == "123456" && retention.1 == 3 {
            break;
        }
        assert!(
            started.elapsed() < LONG,
            "broker 3 tells quotas {quotas:?} and log.retention.ms {retention:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A broker restarted has all of it at once.
    c.broker(3).terminate();
    c.stop(3);
    c.spawn(3);
    assert_eq!(described(&c, 3, "secret").await, 29, "the ACL holds after a restart");
    assert!(logs_in(sasl_addr(3, c.port), "alice", "alice-secret").await);

    // Removed through broker 3: allowed again on broker 1.
    cli(&[&["acls", "remove", "--bootstrap-server", &b3][..], &deny].concat()).await;
    until_described(&c, &[1, 2, 3], "secret", 0).await;

    // A document written by hand that does not parse changes nothing in
    // force, and a change made then is refused rather than lost.
    cli(&[&["acls", "add", "--bootstrap-server", &b1][..], &deny].concat()).await;
    until_described(&c, &[1, 2, 3], "secret", 29).await;
    etcd.ctl(&["put", "/strom-test/security/security/acls", "not json"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for node in [1, 2, 3] {
        assert_eq!(described(&c, node, "secret").await, 29, "broker {node} kept its ACLs");
    }
    let (ok, _, _) = strom_cli(
        ["acls", "remove", "--bootstrap-server", &b2]
            .iter()
            .chain(&deny)
            .map(|a| a.to_string())
            .collect(),
    )
    .await;
    assert!(!ok, "a change of a document that does not parse is refused");
    // A broker (re)started then would run without the cluster's ACLs: it
    // refuses to start, and says why.
    c.broker(3).terminate();
    c.stop(3);
    c.spawn(3);
    let started = Instant::now();
    let exited = loop {
        if let Some(status) = c.broker(3).child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < LONG, "broker 3 started on ACLs it cannot read");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!exited.success());
    assert!(
        c.broker(3).log_text().contains("security/acls in etcd is not sound"),
        "{}",
        c.broker(3).log_text()
    );
    c.stop(3);

    // The key deleted by hand: the brokers keep what they have, and the next
    // change starts from that, not from nothing.
    etcd.ctl(&["del", "/strom-test/security/security/acls"]);
    let deny_other = [
        "--deny-principal",
        "User:ANONYMOUS",
        "--operation",
        "Describe",
        "--topic",
        "other",
    ];
    cli(&[&["acls", "add", "--bootstrap-server", &b1][..], &deny_other].concat()).await;
    let listed = cli(&["acls", "list", "--bootstrap-server", &b2]).await;
    assert!(listed.contains("secret") && listed.contains("other"), "{listed}");
    assert_eq!(described(&c, 2, "secret").await, 29);
    c.terminate_all();
}

/// A broker with ACLs and users of its own, the first of a new cluster,
/// brings them: they hold on the brokers that join after it.
#[tokio::test(flavor = "multi_thread")]
async fn a_broker_brings_its_acls_and_users_into_a_new_cluster() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(1) else { return };
    // One broker on its own first: an ACL and a user, in its files.
    let alone = tempfile::tempdir().unwrap();
    let data = alone.path().join("data");
    {
        let args: Vec<&str> = SECURED.to_vec();
        let mut single = common::process::BrokerProcess::spawn_at(host(1), &data, free(), &args, None);
        let addr = single.bootstrap();
        assert_eq!(
            upsert_scram_user(single.addr(), "carol", "carol-secret", ScramMechanism::Sha256).await,
            0
        );
        cli(&[
            "acls",
            "add",
            "--bootstrap-server",
            &addr,
            "--deny-principal",
            "User:ANONYMOUS",
            "--operation",
            "Describe",
            "--topic",
            "private",
        ])
        .await;
        single.terminate();
    }
    // Its files go to broker 1 of a new cluster (whose etcd has no ACLs and
    // no users yet), which starts with them.
    let mut c = Cluster::start_as(Layout::WithSasl, &etcd, "seeded", 1, &SECURED);
    c.broker(1).terminate();
    c.stop(1);
    for file in ["acls.json", "scram-credentials.json"] {
        std::fs::copy(data.join(file), c.dirs[0].path().join("data").join(file)).unwrap();
    }
    c.dirs.push(tempfile::tempdir().unwrap());
    c.brokers.push(None);
    c.spawn(1);
    c.spawn(2);
    let (c, _) = until_ready(c).await;
    let mut w = Wire::connect(c.addr(1)).await;
    create_replicated_topic(&mut w, "private", 1, 2, &[]).await;
    until_described(&c, &[2, 1], "private", 29).await;
    let started = Instant::now();
    while !logs_in(sasl_addr(2, c.port), "carol", "carol-secret").await {
        assert!(started.elapsed() < LONG, "carol cannot log in on broker 2");
    }
}

fn free() -> u16 {
    common::process::free_port()
}
