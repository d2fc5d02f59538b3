//! The cluster's shared state (issue 17): ACLs, SCRAM users, client quotas
//! and the brokers' default configs live in etcd, so a change made through
//! any broker holds on every broker and survives a restart; and with ACLs on
//! the cluster, the brokers still replicate and create topics for their
//! clients.
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

/// Topic `replicated`, created through the broker at `at`: three replicas,
/// all of which must have a write (min.insync.replicas=3). A connection to its
/// leader, once every broker tells all three in sync.
async fn replicated_topic(c: &Cluster, at: &str) -> Wire {
    cli(&[
        "topics",
        "create",
        "replicated",
        "--replication-factor",
        "3",
        "--config",
        "min.insync.replicas=3",
        "--bootstrap-server",
        at,
    ])
    .await;
    let told = until_told(c, &[1, 2, 3], "replicated", |v| {
        v.as_ref().is_some_and(|ps| ps[&0].isr.len() == 3)
    })
    .await
    .unwrap();
    Wire::connect(c.addr(told[&0].leader)).await
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

    // A broker's own config, set through another broker with the CLI (which
    // goes to that broker).
    cli(&[
        "configs",
        "alter",
        "--broker",
        "2",
        "--set",
        "log.retention.ms=654321",
        "--bootstrap-server",
        &b1,
    ])
    .await;
    let mut w2 = Wire::connect(c.addr(2)).await;
    // DYNAMIC_BROKER_CONFIG is source 2.
    assert_eq!(
        describe_configs(&mut w2, 4, "2").await["log.retention.ms"],
        ("654321".to_string(), 2, false)
    );

    // A broker restarted has all of it at once.
    c.broker(3).terminate();
    c.stop(3);
    c.spawn(3);
    assert_eq!(described(&c, 3, "secret").await, 29, "the ACL holds after a restart");
    assert!(logs_in(sasl_addr(3, c.port), "alice", "alice-secret").await);

    // Removed through broker 3: allowed again on broker 1.
    cli(&[&["acls", "remove", "--bootstrap-server", &b3][..], &deny].concat()).await;
    until_described(&c, &[1, 2, 3], "secret", 0).await;

    // ACLs on the cluster and the topics: the brokers' principal (anonymous,
    // on the plain inter-broker listener) needs CLUSTER_ACTION, and with it
    // replicates (a follower's fetch needs nothing else) and creates topics
    // through the controller for its clients (auto-creation by alice through
    // a broker that is not the controller).
    let (controller, other) = {
        let now = agreed_controller(&c, &[1, 2, 3], -1, LONG).await;
        (now, (1..=3).find(|n| *n != now).unwrap())
    };
    // ALTER first: once the cluster has an ACL, this anonymous admin needs it.
    for grant in [
        &[
            "--cluster",
            "--allow-principal",
            "User:ANONYMOUS",
            "--operation",
            "Alter",
        ][..],
        &[
            "--cluster",
            "--allow-principal",
            "User:ANONYMOUS",
            "--operation",
            "ClusterAction",
        ],
        &[
            "--topic",
            "replicated",
            "--allow-principal",
            "User:ANONYMOUS",
            "--operation",
            "Create",
        ],
        &[
            "--topic",
            "replicated",
            "--allow-principal",
            "User:ANONYMOUS",
            "--operation",
            "Write",
        ],
        &[
            "--topic",
            "auto-",
            "--resource-pattern-type",
            "prefixed",
            "--allow-principal",
            "User:alice",
            "--operation",
            "All",
        ],
    ] {
        cli(&[&["acls", "add", "--bootstrap-server", &b1][..], grant].concat()).await;
    }
    // Anonymous may see (not create) what alice makes.
    cli(&[
        "acls",
        "add",
        "--bootstrap-server",
        &b1,
        "--topic",
        "auto-",
        "--resource-pattern-type",
        "prefixed",
        "--allow-principal",
        "User:ANONYMOUS",
        "--operation",
        "Describe",
    ])
    .await;
    let mut at_leader = replicated_topic(&c, &c.addr(other).to_string()).await;
    let (code, _) = produce_at_leader(&mut at_leader, "replicated", 0, batch(3, -1, 0, 0)).await;
    assert_eq!(code, 0, "an acks=all write copied by both followers under ACLs");
    let broker_at = sasl_addr(other, c.port).to_string();
    let produced = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut kcat = std::process::Command::new("kcat")
            .args(["-P", "-b", &broker_at, "-t", "auto-made"])
            .args([
                "-X",
                "security.protocol=sasl_plaintext",
                "-X",
                "sasl.mechanisms=SCRAM-SHA-256",
            ])
            .args(["-X", "sasl.username=alice", "-X", "sasl.password=alice-secret"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("kcat (scripts/test.sh installs it)");
        kcat.stdin.take().unwrap().write_all(b"made on the way\n").unwrap();
        kcat.wait().unwrap()
    });
    let status = tokio::time::timeout(LONG, produced).await.expect("kcat hung").unwrap();
    assert!(
        status.success(),
        "kcat could not produce to a topic auto-created through broker {other} (controller {controller})"
    );
    until_told(&c, &[1, 2, 3], "auto-made", |v| {
        v.as_ref().is_some_and(|ps| ps[&0].leader > 0)
    })
    .await;

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
    let listeners = format!("PLAINTEXT://{},SASL_PLAINTEXT://{}", c.addr(3), sasl_addr(3, c.port));
    let mut again = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
        .args([
            "--listen",
            &listeners,
            "--advertised-listener",
            &listeners,
            "--data-dir",
        ])
        .arg(c.dirs[2].path().join("data"))
        .args(c.args(3))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let exited = loop {
        if let Some(status) = again.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > LONG {
            let _ = again.kill();
            panic!("broker 3 started on ACLs it cannot read");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut said = String::new();
    std::io::Read::read_to_string(&mut again.stderr.take().unwrap(), &mut said).unwrap();
    assert!(!exited.success());
    assert!(said.contains("security/acls in etcd is not sound"), "{said}");

    // The key deleted by hand: the brokers keep what they have and write it
    // back, and the next change starts from that, not from nothing.
    etcd.ctl(&["del", "/strom-test/security/security/acls"]);
    let started = Instant::now();
    while !etcd
        .ctl(&["get", "--print-value-only", "/strom-test/security/security/acls"])
        .contains("secret")
    {
        assert!(started.elapsed() < LONG, "the brokers did not write their ACLs back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

/// A cluster laid out as `layout`, its brokers reaching each other on the second
/// listener as `settings` say, with ACLs on and CLUSTER_ACTION denied to
/// anonymous connections: replication, ISR changes and acks=all work only if
/// the brokers are who they say (a super user).
async fn replicates_as_the_brokers_principal(layout: Layout, prefix: &str, settings: &[String]) {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(1) else { return };
    let args: Vec<&str> = settings.iter().flat_map(|s| ["--override", s.as_str()]).collect();
    let c = Cluster::start_as(layout, &etcd, prefix, 3, &args);
    let (mut c, _) = until_ready(c).await;
    let b1 = c.addr(1).to_string();
    // Anonymous connections (the clients' PLAINTEXT listener) may not act as brokers.
    cli(&[
        "acls",
        "add",
        "--bootstrap-server",
        &b1,
        "--cluster",
        "--deny-principal",
        "User:ANONYMOUS",
        "--operation",
        "ClusterAction",
    ])
    .await;
    // Acknowledged only once both followers have fetched it, as brokers.
    let mut at_leader = replicated_topic(&c, &b1).await;
    for round in 0..3 {
        let (code, offset) = produce_at_leader(&mut at_leader, "replicated", 0, batch(2, -1, 0, 0)).await;
        assert_eq!((code, offset), (0, round * 2), "acks=all with three in sync");
    }

    // A leader that is not the controller asks it for an ISR change
    // (AlterPartition): a killed follower's way back into the ISR.
    let controller = agreed_controller(&c, &[1, 2, 3], -1, LONG).await;
    cli(&[
        "topics",
        "create",
        "spread",
        "--partitions",
        "3",
        "--replication-factor",
        "3",
        "--bootstrap-server",
        &b1,
    ])
    .await;
    let spread = until_told(&c, &[1, 2, 3], "spread", |v| {
        v.as_ref()
            .is_some_and(|ps| ps.len() == 3 && ps.values().all(|p| p.leader > 0 && p.isr.len() == 3))
    })
    .await
    .unwrap();
    let (&p, led) = spread
        .iter()
        .find(|(_, t)| t.leader != controller)
        .expect("a partition the controller does not lead");
    let follower = (1..=3).find(|n| *n != led.leader && *n != controller).unwrap();
    c.stop(follower).expect("running").kill9();
    until_told(&c, &[led.leader, controller], "spread", |v| {
        v.as_ref().is_some_and(|ps| ps[&p].isr.len() == 2)
    })
    .await;
    c.spawn(follower);
    until_told(&c, &[1, 2, 3], "spread", |v| {
        v.as_ref().is_some_and(|ps| ps[&p].isr.len() == 3)
    })
    .await;

    // A broker's own request forwarded to the controller: a topic auto-created
    // through a broker that is not the controller.
    let mut at_other = Wire::connect(c.addr(follower)).await;
    let started = Instant::now();
    loop {
        let code = at_other.call(12, &metadata_request(&["made-on-the-way"])).await.topics[0].error_code;
        if code == 0 {
            break;
        }
        assert!(
            started.elapsed() < LONG,
            "auto-creation through broker {follower}: error {code}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.terminate_all();
}

const AUTHORIZED: [&str; 2] = [
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "allow.everyone.if.no.acl.found=true",
];

/// Brokers log in to each other on a SASL listener as the user of its JAAS line
/// (Kafka's `sasl.mechanism.inter.broker.protocol`).
#[tokio::test(flavor = "multi_thread")]
async fn brokers_log_in_to_each_other_over_sasl() {
    let jaas = concat!(
        "listener.name.sasl_plaintext.plain.sasl.jaas.config=",
        "org.apache.kafka.common.security.plain.PlainLoginModule required ",
        r#"username="broker" password="broker-secret" user_broker="broker-secret";"#
    );
    let settings = [
        "super.users=User:broker",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
        jaas,
        "inter.broker.listener.name=SASL_PLAINTEXT",
        "sasl.mechanism.inter.broker.protocol=PLAIN",
    ];
    let settings: Vec<String> = AUTHORIZED.iter().chain(&settings).map(|s| s.to_string()).collect();
    replicates_as_the_brokers_principal(Layout::WithSasl, "inter-broker-sasl", &settings).await;
}

/// Brokers reach each other over TLS, checking each other's certificates
/// (issued for their addresses) and showing their own (`ssl.client.auth=required`):
/// the brokers are `User:CN=broker`.
#[tokio::test(flavor = "multi_thread")]
async fn brokers_reach_each_other_over_mutual_tls() {
    let pki = common::pki::Pki::new();
    let (cert, key) = pki.issue(&[("CN", "broker")], &["127.0.3.1", "127.0.3.2", "127.0.3.3"]);
    let keystore = pki.dir.path().join("broker.pem");
    std::fs::write(&keystore, format!("{key}{cert}")).unwrap();
    let settings = [
        "super.users=User:CN=broker".to_string(),
        format!("listener.name.ssl.ssl.keystore.location={}", keystore.display()),
        format!("listener.name.ssl.ssl.truststore.location={}", pki.ca.display()),
        "listener.name.ssl.ssl.client.auth=required".to_string(),
        "inter.broker.listener.name=SSL".to_string(),
    ];
    let settings: Vec<String> = AUTHORIZED.iter().map(|s| s.to_string()).chain(settings).collect();
    replicates_as_the_brokers_principal(Layout::WithTls, "inter-broker-tls", &settings).await;
}
