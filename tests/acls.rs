//! ACLs with real clients: principals from SASL PLAIN logins, ACLs created over
//! the wire by a super user, librdkafka producers and consumers allowed and
//! refused as Kafka's StandardAuthorizer would.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::wire::{self, Wire};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use strom::config::{Config, ServeArgs};
use strom::RunningBroker;

const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-pw" user_alice="alice-pw" user_bob="bob-pw";"#;

async fn start(dir: &std::path::Path) -> RunningBroker {
    let args = ServeArgs {
        data_dir: Some(dir.to_path_buf()),
        listeners: Some("SASL_PLAINTEXT://127.0.0.1:0".into()),
        overrides: vec![
            "sasl.enabled.mechanisms=PLAIN".into(),
            format!("listener.name.sasl_plaintext.plain.sasl.jaas.config={JAAS}"),
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
            "super.users=User:admin".into(),
        ],
        ..ServeArgs::default()
    };
    strom::start(Config::resolve(&args).unwrap()).await.unwrap()
}

/// A raw connection logged in as `user`.
async fn login(addr: SocketAddr, user: &str) -> Wire {
    let mut w = Wire::connect(addr).await;
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("PLAIN");
    assert_eq!(w.call(1, &hs).await.error_code, 0);
    let mut auth = SaslAuthenticateRequest::default();
    auth.auth_bytes = Bytes::from(format!("\0{user}\0{user}-pw"));
    assert_eq!(w.call(2, &auth).await.error_code, 0);
    w
}

/// An ACL (pattern 3 literal, 4 prefixed; operation 3 READ, 4 WRITE, 8
/// DESCRIBE; permission 2 DENY, 3 ALLOW) on a topic (2) or group (3).
fn acl(resource_type: i8, name: &str, pattern: i8, principal: &str, operation: i8, permission: i8) -> AclCreation {
    let mut c = AclCreation::default();
    c.resource_type = resource_type;
    c.resource_name = StrBytes::from_string(name.into());
    c.resource_pattern_type = pattern;
    c.principal = StrBytes::from_string(principal.into());
    c.host = StrBytes::from_static_str("*");
    c.operation = operation;
    c.permission_type = permission;
    c
}

fn client(addr: SocketAddr, user: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr.to_string())
        .set("security.protocol", "sasl_plaintext")
        .set("sasl.mechanisms", "PLAIN")
        .set("sasl.username", user)
        .set("sasl.password", format!("{user}-pw"))
        .set("message.timeout.ms", "5000");
    c
}

async fn produce(addr: SocketAddr, user: &str, topic: &str) -> Result<(), KafkaError> {
    let producer: FutureProducer = client(addr, user).create().unwrap();
    producer
        .send(FutureRecord::<(), _>::to(topic).payload("x"), Duration::from_secs(5))
        .await
        .map(|_| ())
        .map_err(|(e, _)| e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_allow_deny_and_hide_as_kafka_does() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path()).await;
    let addr = broker.addr();
    let mut admin = login(addr, "admin").await;
    for topic in ["orders-eu", "orders-secret", "payments"] {
        wire::create(&mut admin, topic, 1).await;
    }
    let mut create = CreateAclsRequest::default();
    create.creations = vec![
        acl(2, "orders-", 4, "User:alice", 4, 3),
        acl(2, "orders-secret", 3, "User:alice", 4, 2),
        acl(2, "payments", 3, "User:bob", 3, 3),
        acl(3, "billing", 3, "User:bob", 3, 3),
    ];
    let created = admin.call(3, &create).await;
    assert!(created.results.iter().all(|r| r.error_code == 0), "{created:?}");

    // A prefixed ALLOW: alice writes to orders-eu, and nowhere else.
    produce(addr, "alice", "orders-eu").await.unwrap();
    let refused = produce(addr, "alice", "payments").await.unwrap_err();
    assert_eq!(
        refused.rdkafka_error_code(),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{refused}"
    );
    // DENY wins over the prefixed ALLOW.
    let denied = produce(addr, "alice", "orders-secret").await.unwrap_err();
    assert_eq!(
        denied.rdkafka_error_code(),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
    // The super user may do anything.
    produce(addr, "admin", "payments").await.unwrap();

    // Metadata leaves out what alice may not describe (WRITE implies DESCRIBE;
    // the DENY on orders-secret covers WRITE only).
    let mut alice = login(addr, "alice").await;
    let mut every = MetadataRequest::default();
    every.topics = None;
    let all = alice.call(12, &every).await;
    let mut names: Vec<String> = all
        .topics
        .iter()
        .map(|t| t.name.as_ref().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["orders-eu", "orders-secret"]);
    let named = alice.call(12, &wire::metadata_request(&["payments"])).await;
    assert_eq!(named.topics[0].error_code, 29);
    // Auto-creation needs CREATE: refused as TOPIC_AUTHORIZATION_FAILED.
    let mut wants_new = wire::metadata_request(&["orders-new"]);
    wants_new.allow_auto_topic_creation = true;
    assert_eq!(alice.call(12, &wants_new).await.topics[0].error_code, 29);
    // authorized_operations when asked: READ (3) no, WRITE (4) and DESCRIBE (8) yes.
    let mut asked = wire::metadata_request(&["orders-eu"]);
    asked.include_topic_authorized_operations = true;
    let ops = alice.call(12, &asked).await.topics[0].topic_authorized_operations;
    assert_eq!(ops & (1 << 3), 0);
    assert_ne!(ops & (1 << 4), 0);
    assert_ne!(ops & (1 << 8), 0);
    // Admin APIs need the cluster: alice may not read or change ACLs.
    let described = alice.call(3, &DescribeAclsRequest::default()).await;
    assert_eq!(described.error_code, 31);

    // bob consumes payments in group billing; in another group he may not.
    let mut c = client(addr, "bob");
    c.set("group.id", "billing").set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer = c.create().unwrap();
    consumer.subscribe(&["payments"]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut got = None;
    while got.is_none() && std::time::Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            got = Some(m.map(|m| m.payload().map(<[u8]>::to_vec)));
        }
    }
    assert_eq!(got.unwrap().unwrap(), Some(b"x".to_vec()));
    let mut bob = login(addr, "bob").await;
    let mut find = FindCoordinatorRequest::default();
    find.key = StrBytes::from_static_str("other-group");
    assert_eq!(bob.call(3, &find).await.error_code, 30);

    // The ACLs outlive a restart; DeleteAcls removes them and says which.
    broker.shutdown().await.unwrap();
    let broker = start(dir.path()).await;
    let addr = broker.addr();
    produce(addr, "alice", "orders-eu").await.unwrap();
    let mut admin = login(addr, "admin").await;
    let mut delete = DeleteAclsRequest::default();
    let mut f = DeleteAclsFilter::default();
    f.resource_type_filter = 1;
    f.pattern_type_filter = 1;
    f.operation = 1;
    f.permission_type = 1;
    f.principal_filter = Some(StrBytes::from_static_str("User:alice"));
    (f.resource_name_filter, f.host_filter) = (None, None);
    delete.filters.push(f);
    let deleted = admin.call(3, &delete).await;
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 2);
    assert!(produce(addr, "alice", "orders-eu").await.is_err());
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_authorizer_acl_requests_are_security_disabled() {
    let broker = strom::start(Config::for_dir(tempfile::tempdir().unwrap().keep()))
        .await
        .unwrap();
    let mut w = Wire::connect(broker.addr()).await;
    let mut create = CreateAclsRequest::default();
    create.creations = vec![acl(2, "t", 3, "User:a", 4, 3)];
    assert_eq!(w.call(3, &create).await.results[0].error_code, 54);
    assert_eq!(w.call(3, &DescribeAclsRequest::default()).await.error_code, 54);
    broker.shutdown().await.unwrap();
}
