//! Security with real clients: TLS listeners (librdkafka over SSL, mTLS,
//! certificates replaced while serving), SASL PLAIN and SCRAM over SASL_SSL,
//! SCRAM users managed over the wire, and Kafka's rules for what a connection
//! may send before it has logged in (raw protocol).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::pki::Pki;
use common::wire::{self, upsert_scram_user, Wire};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use strom::config::{Config, ServeArgs};
use strom::security::scram::ScramMechanism;
use strom::RunningBroker;

async fn start(dir: &Path, listeners: &str, props: &[(&str, String)]) -> RunningBroker {
    let args = ServeArgs {
        data_dir: Some(dir.to_path_buf()),
        listeners: Some(listeners.to_string()),
        overrides: props.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        ..ServeArgs::default()
    };
    strom::start(Config::resolve(&args).unwrap()).await.unwrap()
}

fn addr_of(broker: &RunningBroker, listener: &str) -> SocketAddr {
    broker.listeners.iter().find(|l| l.name == listener).unwrap().bound
}

fn client(addr: SocketAddr, settings: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr.to_string())
        .set("message.timeout.ms", "15000")
        .set("socket.timeout.ms", "5000");
    for (k, v) in settings {
        c.set(*k, *v);
    }
    c
}

/// Whether a client with `settings` can read the cluster's metadata.
fn can_connect(addr: SocketAddr, settings: &[(&str, &str)]) -> bool {
    let consumer: BaseConsumer = client(addr, settings).create().unwrap();
    consumer.fetch_metadata(None, Duration::from_secs(4)).is_ok()
}

/// Produce `n` records to `topic` and read them back, through `settings`.
async fn round_trip(addr: SocketAddr, settings: &[(&str, &str)], topic: &str, n: usize) {
    let producer: FutureProducer = client(addr, settings).create().unwrap();
    for i in 0..n {
        let value = format!("{topic}-{i}");
        producer
            .send(
                FutureRecord::<(), _>::to(topic).payload(&value),
                Duration::from_secs(15),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("produce to {topic}: {e}"));
    }
    let mut c = client(addr, settings);
    c.set("group.id", format!("{topic}-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = c.create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < n && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            seen.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
        }
    }
    let expected: Vec<String> = (0..n).map(|i| format!("{topic}-{i}")).collect();
    assert_eq!(seen, expected);
}

fn tls_props(pki: &Pki) -> Vec<(&'static str, String)> {
    vec![
        ("ssl.keystore.type", "PEM".into()),
        ("ssl.keystore.location", pki.server.display().to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssl_listener_serves_librdkafka_and_takes_new_certificates_without_a_restart() {
    let mut pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), "SSL://127.0.0.1:0", &tls_props(&pki)).await;
    let addr = addr_of(&broker, "SSL");
    let ca = pki.ca.display().to_string();
    let ssl = [("security.protocol", "ssl"), ("ssl.ca.location", ca.as_str())];
    round_trip(addr, &ssl, "over-tls", 50).await;
    // A plaintext client gets nowhere, and a client that does not trust the CA
    // neither.
    assert!(!can_connect(addr, &[]));
    let other = Pki::named("another CA");
    let other_ca = other.ca.display().to_string();
    assert!(!can_connect(
        addr,
        &[("security.protocol", "ssl"), ("ssl.ca.location", other_ca.as_str())]
    ));
    // A new certificate in the same file, from another CA: new connections get
    // it within a second or so.
    std::fs::copy(&other.server, &pki.server).unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let _ = can_connect(addr, &ssl); // the connection that notices the change
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(can_connect(
        addr,
        &[("security.protocol", "ssl"), ("ssl.ca.location", other_ca.as_str())]
    ));
    assert!(!can_connect(addr, &ssl));
    // A broken file is refused and the last good certificate kept.
    std::fs::write(&pki.server, "not a pem").unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(can_connect(
        addr,
        &[("security.protocol", "ssl"), ("ssl.ca.location", other_ca.as_str())]
    ));
    pki.write_server();
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_certificate_from_the_trusted_ca() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let mut props = tls_props(&pki);
    props.push(("ssl.client.auth", "required".into()));
    props.push(("ssl.truststore.type", "PEM".into()));
    props.push(("ssl.truststore.location", pki.ca.display().to_string()));
    props.push(("ssl.principal.mapping.rules", "RULE:^CN=(.*?),.*$/$1/L,DEFAULT".into()));
    let broker = start(dir.path(), "SSL://127.0.0.1:0", &props).await;
    let addr = addr_of(&broker, "SSL");
    let ca = pki.ca.display().to_string();
    let (cert, key) = pki.client("alice", &[("O", "strom"), ("CN", "Alice")]);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let mtls = [
        ("security.protocol", "ssl"),
        ("ssl.ca.location", ca.as_str()),
        ("ssl.certificate.location", cert.as_str()),
        ("ssl.key.location", key.as_str()),
    ];
    round_trip(addr, &mtls, "over-mtls", 20).await;
    // No certificate, or one from a CA the broker does not trust: refused.
    assert!(!can_connect(addr, &mtls[..2]));
    let stranger = Pki::named("stranger CA");
    let (scert, skey) = stranger.client("mallory", &[("CN", "mallory")]);
    let (scert, skey) = (scert.display().to_string(), skey.display().to_string());
    assert!(!can_connect(
        addr,
        &[
            ("security.protocol", "ssl"),
            ("ssl.ca.location", ca.as_str()),
            ("ssl.certificate.location", scert.as_str()),
            ("ssl.key.location", skey.as_str()),
        ]
    ));
    broker.shutdown().await.unwrap();
}

fn sasl_props(pki: &Pki) -> Vec<(&'static str, String)> {
    let mut props = tls_props(pki);
    props.push(("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512".into()));
    props.push((
        "listener.name.sasl_ssl.plain.sasl.jaas.config",
        r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#.into(),
    ));
    props.push((
        "listener.name.sasl_plaintext.plain.sasl.jaas.config",
        r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";"#.into(),
    ));
    props
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_ssl_logs_in_with_scram_and_plain_and_refuses_bad_credentials() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let broker = start(
        dir.path(),
        "PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
        &sasl_props(&pki),
    )
    .await;
    let (plain, addr) = (addr_of(&broker, "PLAINTEXT"), addr_of(&broker, "SASL_SSL"));
    assert_eq!(
        upsert_scram_user(plain, "bob", "bob-secret", ScramMechanism::Sha512).await,
        0
    );
    assert_eq!(
        upsert_scram_user(plain, "carol", "carol-secret", ScramMechanism::Sha256).await,
        0
    );
    // Described as Kafka does: mechanism and iterations only.
    let mut w = Wire::connect(plain).await;
    let described = w.call(0, &DescribeUserScramCredentialsRequest::default()).await;
    let users: Vec<(String, i8, i32)> = described
        .results
        .iter()
        .map(|r| {
            let c = &r.credential_infos[0];
            (r.user.to_string(), c.mechanism, c.iterations)
        })
        .collect();
    assert_eq!(users, [("bob".to_string(), 2, 8192), ("carol".to_string(), 1, 8192)]);

    let ca: &'static str = Box::leak(pki.ca.display().to_string().into_boxed_str());
    let login = |mechanism: &'static str, user: &'static str, password: &'static str| {
        vec![
            ("security.protocol", "sasl_ssl"),
            ("ssl.ca.location", ca),
            ("sasl.mechanisms", mechanism),
            ("sasl.username", user),
            ("sasl.password", password),
        ]
    };
    round_trip(addr, &login("SCRAM-SHA-512", "bob", "bob-secret"), "scram-512", 20).await;
    round_trip(addr, &login("SCRAM-SHA-256", "carol", "carol-secret"), "scram-256", 5).await;
    round_trip(addr, &login("PLAIN", "alice", "alice-secret"), "plain", 5).await;
    assert!(!can_connect(addr, &login("SCRAM-SHA-512", "bob", "wrong")));
    assert!(!can_connect(addr, &login("SCRAM-SHA-512", "nobody", "bob-secret")));
    // bob has no SHA-256 credential.
    assert!(!can_connect(addr, &login("SCRAM-SHA-256", "bob", "bob-secret")));
    assert!(!can_connect(addr, &login("PLAIN", "alice", "wrong")));
    // The credentials are kept across a restart.
    broker.shutdown().await.unwrap();
    let broker = start(
        dir.path(),
        "PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
        &sasl_props(&pki),
    )
    .await;
    let addr = addr_of(&broker, "SASL_SSL");
    assert!(can_connect(addr, &login("SCRAM-SHA-512", "bob", "bob-secret")));
    broker.shutdown().await.unwrap();
}

/// ApiVersions, SaslHandshake and SaslAuthenticate with PLAIN, over raw bytes:
/// the SaslAuthenticate response.
async fn plain_login(w: &mut Wire, user: &str, password: &str) -> SaslAuthenticateResponse {
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("PLAIN");
    let response = w.call(1, &hs).await;
    assert_eq!(response.error_code, 0);
    let mut auth = SaslAuthenticateRequest::default();
    auth.auth_bytes = Bytes::from(format!("\0{user}\0{password}"));
    w.call(2, &auth).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_logging_in_only_the_handshake_is_served() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let mut props = sasl_props(&pki);
    props.push(("listener.name.sasl_plaintext.connections.max.reauth.ms", "1500".into()));
    let broker = start(
        dir.path(),
        "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        &props,
    )
    .await;
    let (plain, addr) = (addr_of(&broker, "PLAINTEXT"), addr_of(&broker, "SASL_PLAINTEXT"));

    // Metadata first: closed without an answer.
    let mut w = Wire::connect(addr).await;
    w.send(12, &wire::metadata_request(&[])).await;
    assert!(w.read_frame().await.is_none());

    // Before the login, a frame larger than sasl.server.max.receive.size is
    // refused as soon as its size is read.
    let mut w = Wire::connect(addr).await;
    let mut head = (600 * 1024i32).to_be_bytes().to_vec();
    head.extend([0, 18, 0, 3]);
    tokio::io::AsyncWriteExt::write_all(&mut w.stream, &head).await.unwrap();
    assert!(w.read_frame().await.is_none());

    // ApiVersions is answered and lists the SASL APIs; a mechanism not enabled
    // is UNSUPPORTED_SASL_MECHANISM with the enabled ones, then the close.
    let mut w = Wire::connect(addr).await;
    let versions = w.call(3, &ApiVersionsRequest::default()).await;
    assert!(versions
        .api_keys
        .iter()
        .any(|k| k.api_key == 17 && (k.min_version, k.max_version) == (0, 1)));
    assert!(versions.api_keys.iter().any(|k| k.api_key == 36 && k.max_version == 2));
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("GSSAPI");
    let response = w.call(1, &hs).await;
    assert_eq!(response.error_code, 33);
    let offered: Vec<String> = response.mechanisms.iter().map(|m| m.to_string()).collect();
    assert_eq!(offered, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
    assert!(w.read_frame().await.is_none());

    // One ApiVersions before the handshake; a second closes the connection.
    let mut w = Wire::connect(addr).await;
    w.call(3, &ApiVersionsRequest::default()).await;
    w.send(3, &ApiVersionsRequest::default()).await;
    assert!(w.read_frame().await.is_none());

    // SaslHandshake v0: the tokens follow as bare frames (older librdkafka,
    // kafka-python); a failure there can only close the connection.
    let mut w = Wire::connect(addr).await;
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("PLAIN");
    assert_eq!(w.call(0, &hs).await.error_code, 0);
    w.send_frame(b"\0alice\0alice-secret").await;
    assert_eq!(w.read_frame().await.unwrap().len(), 0);
    assert_eq!(w.call(12, &wire::metadata_request(&[])).await.brokers.len(), 1);
    let mut w = Wire::connect(addr).await;
    assert_eq!(w.call(0, &hs).await.error_code, 0);
    w.send_frame(b"\0alice\0wrong").await;
    assert!(w.read_frame().await.is_none());

    // A wrong password: SASL_AUTHENTICATION_FAILED with Kafka's message, then closed.
    let mut w = Wire::connect(addr).await;
    let failed = plain_login(&mut w, "alice", "nope").await;
    assert_eq!(failed.error_code, 58);
    assert_eq!(
        failed.error_message.as_deref(),
        Some("Authentication failed: Invalid username or password")
    );
    assert!(w.read_frame().await.is_none());

    // Logged in: requests are served, the session lasts connections.max.reauth.ms,
    // and another SaslAuthenticate is ILLEGAL_SASL_STATE.
    let mut w = Wire::connect(addr).await;
    let ok = plain_login(&mut w, "alice", "alice-secret").await;
    assert_eq!((ok.error_code, ok.session_lifetime_ms), (0, 1500));
    let metadata = w.call(12, &wire::metadata_request(&[])).await;
    assert_eq!(metadata.brokers.len(), 1);
    let again = w.call(2, &SaslAuthenticateRequest::default()).await;
    assert_eq!(again.error_code, 34);
    // Past the session's end, the next request closes the connection.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    w.send(12, &wire::metadata_request(&[])).await;
    assert!(w.read_frame().await.is_none());

    // Re-authenticating in time keeps the connection.
    let mut w = Wire::connect(addr).await;
    plain_login(&mut w, "alice", "alice-secret").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(plain_login(&mut w, "alice", "alice-secret").await.error_code, 0);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let metadata = w.call(12, &wire::metadata_request(&[])).await;
    assert_eq!(metadata.brokers.len(), 1);

    // On a listener without SASL the handshake is ILLEGAL_SASL_STATE and the
    // connection goes on.
    let mut w = Wire::connect(plain).await;
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("PLAIN");
    assert_eq!(w.call(1, &hs).await.error_code, 34);
    assert_eq!(w.call(12, &wire::metadata_request(&[])).await.brokers.len(), 1);
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_librdkafka_producer_goes_on_across_sessions_that_expire() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let mut props = sasl_props(&pki);
    props.push(("connections.max.reauth.ms", "2000".into()));
    let broker = start(dir.path(), "SASL_PLAINTEXT://127.0.0.1:0", &props).await;
    let addr = addr_of(&broker, "SASL_PLAINTEXT");
    let settings = [
        ("security.protocol", "sasl_plaintext"),
        ("sasl.mechanisms", "PLAIN"),
        ("sasl.username", "alice"),
        ("sasl.password", "alice-secret"),
    ];
    let producer: FutureProducer = client(addr, &settings).create().unwrap();
    // Three sessions' worth of producing on the same connection.
    for i in 0..30 {
        producer
            .send(
                FutureRecord::<(), _>::to("reauth").payload(&format!("{i}")),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("record {i}: {e}"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_tools_log_in_with_a_command_config_and_manage_users_and_acls() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let mut props = sasl_props(&pki);
    props.push((
        "authorizer.class.name",
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
    ));
    props.push(("super.users", "User:admin".into()));
    let broker = start(dir.path(), "SASL_SSL://127.0.0.1:0", &props).await;
    // Kafka's client keys, as kafka-acls.sh --command-config reads them.
    let config = |name: &str, mechanism: &str, user: &str, password: &str| {
        let path = pki.dir.path().join(format!("{name}.properties"));
        let module = match mechanism {
            "PLAIN" => "org.apache.kafka.common.security.plain.PlainLoginModule",
            _ => "org.apache.kafka.common.security.scram.ScramLoginModule",
        };
        std::fs::write(
            &path,
            format!(
                "security.protocol=SASL_SSL\nsasl.mechanism={mechanism}\nsasl.jaas.config={module} required \\\n  username=\"{user}\" password=\"{password}\";\nssl.truststore.type=PEM\nssl.truststore.location={}\n",
                pki.ca.display()
            ),
        )
        .unwrap();
        path.display().to_string()
    };
    let admin = config("admin", "PLAIN", "admin", "admin-secret");
    let bob = config("bob", "SCRAM-SHA-512", "bob", "bob-secret");
    let wrong = config("wrong", "SCRAM-SHA-512", "bob", "nope");
    let bootstrap = addr_of(&broker, "SASL_SSL").to_string();
    let run = |config: &str, words: &str| {
        let mut args: Vec<String> = words.split_whitespace().map(String::from).collect();
        args.extend([
            "--bootstrap-server".into(),
            bootstrap.clone(),
            "--command-config".into(),
            config.into(),
        ]);
        common::process::strom_cli(args)
    };

    let (ok, out, err) = run(&admin, "users create bob --password bob-secret").await;
    assert!(ok, "{out}{err}");
    let (ok, out, _) = run(&admin, "users list --json").await;
    assert!(
        ok && out.contains(r#""user":"bob""#) && out.contains("SCRAM-SHA-512"),
        "{out}"
    );
    for topic in ["orders-eu", "secret"] {
        let (ok, out, err) = run(&admin, &format!("topics create {topic}")).await;
        assert!(ok, "{out}{err}");
    }
    let (ok, out, err) = run(
        &admin,
        "acls add --allow-principal User:bob --operation Write --operation Describe --topic orders- --resource-pattern-type prefixed",
    )
    .await;
    assert!(ok, "{out}{err}");
    let (ok, out, _) = run(&admin, "acls list --json").await;
    assert!(
        ok && out.contains("User:bob") && out.contains("PREFIXED") && out.contains("WRITE"),
        "{out}"
    );

    // bob logs in with SCRAM and sees what his ACLs let him describe.
    let (ok, out, err) = run(&bob, "topics list --json").await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("orders-eu") && !out.contains("secret"), "{out}");
    let (ok, _, err) = run(&wrong, "topics list").await;
    assert!(!ok && err.contains("SaslAuthenticationFailed"), "{err}");
    // Not a super user: no ACL changes for bob.
    let (ok, _, err) = run(&bob, "acls list").await;
    assert!(!ok && err.contains("ClusterAuthorizationFailed"), "{err}");

    let (ok, out, err) = run(
        &admin,
        "acls remove --allow-principal User:bob --topic orders- --resource-pattern-type prefixed",
    )
    .await;
    assert!(ok && out.contains("removed 2"), "{out}{err}");
    let (ok, out, err) = run(&admin, "users delete bob").await;
    assert!(ok, "{out}{err}");
    let (ok, _, _) = run(&bob, "topics list").await;
    assert!(!ok, "a deleted user logs in no more");
    broker.shutdown().await.unwrap();
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// One OAUTHBEARER round: the SaslAuthenticate answer to a client-first message
/// carrying `token`.
async fn oauth_login(w: &mut Wire, token: &str) -> SaslAuthenticateResponse {
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("OAUTHBEARER");
    assert_eq!(w.call(1, &hs).await.error_code, 0);
    let mut auth = SaslAuthenticateRequest::default();
    auth.auth_bytes = Bytes::from(format!("n,,\x01auth=Bearer {token}\x01\x01"));
    w.call(1, &auth).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauthbearer_takes_signed_tokens_checked_against_a_jwks_file() {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let public = key.public_key().as_ref().to_vec();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"k1","x":"{}","y":"{}"}}]}}"#,
            b64url(&public[1..33]),
            b64url(&public[33..])
        ),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sign = |claims: String| {
        let signed = format!(
            "{}.{}",
            b64url(br#"{"alg":"ES256","kid":"k1"}"#),
            b64url(claims.as_bytes())
        );
        let sig = key.sign(&rng, signed.as_bytes()).unwrap();
        format!("{signed}.{}", b64url(sig.as_ref()))
    };
    let claims = |iss: &str, exp: u64| format!(r#"{{"sub":"svc-orders","iss":"{iss}","aud":["strom"],"exp":{exp}}}"#);
    let data = tempfile::tempdir().unwrap();
    let props = vec![
        ("sasl.enabled.mechanisms", "OAUTHBEARER".to_string()),
        (
            "sasl.oauthbearer.jwks.endpoint.url",
            format!("file://{}", jwks.display()),
        ),
        ("sasl.oauthbearer.expected.issuer", "https://idp.example".to_string()),
        ("sasl.oauthbearer.expected.audience", "strom".to_string()),
        ("sasl.oauthbearer.clock.skew.seconds", "0".to_string()),
    ];
    let broker = start(data.path(), "SASL_PLAINTEXT://127.0.0.1:0", &props).await;
    let addr = addr_of(&broker, "SASL_PLAINTEXT");

    // A good token logs in; its session ends when the token does (KIP-368).
    let mut w = Wire::connect(addr).await;
    let ok = oauth_login(&mut w, &sign(claims("https://idp.example", now + 60))).await;
    assert_eq!(ok.error_code, 0, "{:?}", ok.error_message);
    assert!(
        (50_000..=60_000).contains(&ok.session_lifetime_ms),
        "{}",
        ok.session_lifetime_ms
    );
    assert_eq!(w.call(12, &wire::metadata_request(&[])).await.brokers.len(), 1);

    // Refused as Kafka does: a challenge with the status, then the failure.
    let refused = [
        sign(claims("https://evil.example", now + 60)),
        sign(claims("https://idp.example", now - 5)),
        format!("{}x", sign(claims("https://idp.example", now + 60))),
        format!(
            "{}.{}.",
            b64url(br#"{"alg":"none"}"#),
            b64url(claims("https://idp.example", now + 60).as_bytes())
        ),
    ];
    for token in refused {
        let mut w = Wire::connect(addr).await;
        let challenge = oauth_login(&mut w, &token).await;
        assert_eq!(challenge.error_code, 0);
        assert_eq!(&challenge.auth_bytes[..], br#"{"status":"invalid_token"}"#);
        let mut again = SaslAuthenticateRequest::default();
        again.auth_bytes = Bytes::from_static(b"\x01");
        let failed = w.call(1, &again).await;
        assert_eq!(failed.error_code, 58);
        assert!(w.read_frame().await.is_none());
    }
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_logs_in_with_an_unsecured_oauthbearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let props = vec![
        ("sasl.enabled.mechanisms", "OAUTHBEARER".to_string()),
        (
            "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config",
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorRequiredScope=\"kafka\";".to_string(),
        ),
    ];
    let broker = start(dir.path(), "SASL_PLAINTEXT://127.0.0.1:0", &props).await;
    let addr = addr_of(&broker, "SASL_PLAINTEXT");
    let settings = [
        ("security.protocol", "sasl_plaintext"),
        ("sasl.mechanisms", "OAUTHBEARER"),
        ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
        ("sasl.oauthbearer.config", "principal=alice scope=kafka"),
    ];
    round_trip(addr, &settings, "oauth-topic", 5).await;
    // Without the required scope: refused.
    assert!(!can_connect(
        addr,
        &[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanisms", "OAUTHBEARER"),
            ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
            ("sasl.oauthbearer.config", "principal=alice scope=other"),
        ]
    ));
    broker.shutdown().await.unwrap();
}
