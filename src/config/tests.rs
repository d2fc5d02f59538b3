//! Settings from flags, the properties file and defaults.
use super::*;

#[test]
fn defaults_are_kafkas() {
    let c = Config::resolve(&ServeArgs::default()).unwrap();
    assert_eq!(c.listeners[0].address(), "0.0.0.0:9092");
    assert_eq!(c.advertised_listeners[0].address(), "localhost:9092");
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert_eq!(c.log.segment_bytes, 1 << 30);
    assert_eq!(c.socket_request_max_bytes, 104_857_600);
    assert!(c.auto_create_topics);
    assert_eq!(c.num_partitions, 1);
}

#[test]
fn flags_beat_the_properties_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.properties");
    std::fs::write(
        &path,
        "# comment\nlisteners=PLAINTEXT://0.0.0.0:19092\nnum.partitions = 3\nlog.segment.bytes=1000\nlog.dirs=/tmp/x\nauto.create.topics.enable=false\n",
    )
    .unwrap();
    let args = ServeArgs {
        config_file: Some(path),
        num_partitions: Some(5),
        ..Default::default()
    };
    let c = Config::resolve(&args).unwrap();
    assert_eq!(c.num_partitions, 5);
    assert_eq!(c.log.segment_bytes, 1000);
    assert_eq!(c.listeners[0].port, 19092);
    assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    assert!(!c.auto_create_topics);
}

#[test]
fn overrides_set_any_broker_key() {
    let c = Config::resolve(&ServeArgs {
        overrides: vec!["log.retention.hours=24".into(), "log.cleanup.policy=compact".into()],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.log.retention_ms, 24 * 3_600_000);
    assert!(c.log.cleanup_compact);
    assert_eq!(c.log_overrides["log.retention.ms"], "86400000");
    let txn = Config::resolve(&ServeArgs {
        overrides: vec![
            "transaction.max.timeout.ms=60000".into(),
            "transactional.id.expiration.ms=3600000".into(),
        ],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        (txn.transaction_max_timeout_ms, txn.transactional_id_expiration_ms),
        (60_000, 3_600_000)
    );
    assert!(Config::resolve(&ServeArgs {
        overrides: vec!["nokey".into()],
        ..Default::default()
    })
    .is_err());
}

#[test]
fn named_listeners_parse() {
    let l = parse_listeners("listeners", "INTERNAL://0.0.0.0:29092, EXTERNAL://[::1]:9092").unwrap();
    assert_eq!(l[0].name, "INTERNAL");
    assert_eq!(l[1].host, "::1");
    assert!(parse_listeners("listeners", "nohost").is_err());
    assert!(parse_listeners("listeners", "a:1,a:2").is_err());
}

#[test]
fn named_listeners_need_a_security_protocol() {
    let resolve = |listen: &str, map: Option<&str>| {
        Config::resolve(&ServeArgs {
            listeners: Some(listen.into()),
            advertised_listeners: Some(listen.replace("0.0.0.0", "localhost")),
            listener_security_protocol_map: map.map(str::to_string),
            ..Default::default()
        })
    };
    let both = "INTERNAL://0.0.0.0:29092,EXTERNAL://0.0.0.0:9092";
    let err = resolve(both, None).unwrap_err().to_string();
    assert!(
        err.contains("No security protocol defined for listener INTERNAL"),
        "{err}"
    );
    let c = resolve(both, Some("INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT")).unwrap();
    assert_eq!(c.listener_security_protocols["EXTERNAL"], SecurityProtocol::Plaintext);
    assert!(resolve("SSL://0.0.0.0:9093", None).is_err(), "no TLS yet: refused");
}

/// Resolve `listeners` (NAME://host:port,…, advertised on host `h`) with
/// `map` and `overrides`, SCRAM enabled for any SASL listener; in a cluster
/// with `store`.
fn with_listeners(listeners: &str, map: &str, store: Option<&str>, overrides: &[&str]) -> Result<Config, ConfigError> {
    Config::resolve(&ServeArgs {
        metadata_store: store.map(str::to_string),
        listeners: Some(listeners.into()),
        advertised_listeners: Some(listeners.replace("0.0.0.0", "h")),
        listener_security_protocol_map: Some(map.into()),
        overrides: overrides
            .iter()
            .map(|o| o.to_string())
            .chain(["sasl.enabled.mechanisms=SCRAM-SHA-256".to_string()])
            .collect(),
        ..Default::default()
    })
}

#[test]
fn the_inter_broker_listener_is_one_this_broker_advertises() {
    let resolve = |overrides: &[&str]| {
        with_listeners(
            "CLIENT://0.0.0.0:9092,PEER://0.0.0.0:29092,SECURE://0.0.0.0:9093",
            "CLIENT:PLAINTEXT,PEER:PLAINTEXT,SECURE:SASL_PLAINTEXT",
            None,
            overrides,
        )
    };
    assert_eq!(resolve(&[]).unwrap().cluster.inter_broker, Default::default());
    let c = resolve(&["inter.broker.listener.name=peer"]).unwrap();
    assert_eq!(c.cluster.inter_broker.listener.as_deref(), Some("PEER"));
    assert_eq!((c.cluster.inter_broker.tls, c.cluster.inter_broker.sasl), (None, None));
    let err = resolve(&["inter.broker.listener.name=OTHER"]).unwrap_err().to_string();
    assert!(err.contains("valid options are CLIENT,PEER,SECURE"), "{err}");
    let err = resolve(&[
        "inter.broker.listener.name=PEER",
        "security.inter.broker.protocol=PLAINTEXT",
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("only one of"), "{err}");
    // Kafka's older setting names the listener of that protocol's name.
    assert!(
        resolve(&["security.inter.broker.protocol=PLAINTEXT"]).is_err(),
        "no listener named PLAINTEXT"
    );
}

#[test]
fn a_sasl_inter_broker_listener_logs_in_as_its_jaas_line_says() {
    let resolve = |overrides: &[&str]| {
        with_listeners(
            "CLIENT://0.0.0.0:9092,SECURE://0.0.0.0:9093",
            "CLIENT:PLAINTEXT,SECURE:SASL_PLAINTEXT",
            None,
            &[&["inter.broker.listener.name=SECURE"][..], overrides].concat(),
        )
    };
    let err = resolve(&[]).unwrap_err().to_string();
    assert!(
        err.contains("sasl.mechanism.inter.broker.protocol") && err.contains("GSSAPI"),
        "{err}"
    );
    let err = resolve(&["sasl.mechanism.inter.broker.protocol=PLAIN"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("must be included in listener.name.secure.sasl.enabled.mechanisms"),
        "{err}"
    );
    let jaas = "listener.name.secure.scram-sha-256.sasl.jaas.config";
    let err = resolve(&["sasl.mechanism.inter.broker.protocol=scram-sha-256"])
        .unwrap_err()
        .to_string();
    assert!(err.contains(jaas) && err.contains("username"), "{err}");
    let line = format!(
        r#"{jaas}=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="s3cret";"#
    );
    let c = resolve(&["sasl.mechanism.inter.broker.protocol=scram-sha-256", &line]).unwrap();
    assert_eq!(c.cluster.inter_broker.listener.as_deref(), Some("SECURE"));
    assert_eq!(
        c.cluster.inter_broker.sasl,
        Some(("SCRAM-SHA-256".into(), "broker".into(), "s3cret".into()))
    );
    assert_eq!(c.cluster.inter_broker.tls, None);
    assert!(
        !format!("{:?}", c.cluster).contains("s3cret"),
        "the password stays out of logs"
    );
}

#[test]
fn a_tls_inter_broker_listener_trusts_its_truststore_file_and_shows_its_keystore() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("broker.pem");
    std::fs::write(&pem, "").unwrap();
    let keystore = format!("listener.name.peer.ssl.keystore.location={}", pem.display());
    let resolve = |overrides: &[&str]| {
        with_listeners(
            "CLIENT://0.0.0.0:9092,PEER://0.0.0.0:9093",
            "CLIENT:PLAINTEXT,PEER:SSL",
            None,
            &[&["inter.broker.listener.name=PEER", &keystore][..], overrides].concat(),
        )
    };
    let err = resolve(&[]).unwrap_err().to_string();
    assert!(err.contains("ssl.truststore.location"), "{err}");
    let truststore = format!("listener.name.peer.ssl.truststore.location={}", pem.display());
    let c = resolve(&[&truststore]).unwrap();
    let tls = c.cluster.inter_broker.tls.expect("TLS between brokers");
    assert_eq!((tls.ca, tls.identity), (pem.clone(), Some(pem.clone())));
    // Kafka may be told not to check the peer's name; strom's brokers always do.
    let err = resolve(&[&truststore, "listener.name.peer.ssl.endpoint.identification.algorithm="])
        .unwrap_err()
        .to_string();
    assert!(err.contains("ssl.endpoint.identification.algorithm"), "{err}");
}

#[cfg(feature = "cluster")]
#[test]
fn a_cluster_broker_needs_a_plaintext_listener_for_the_others() {
    let resolve = |overrides: &[&str]| {
        with_listeners(
            "SECURE://0.0.0.0:9093",
            "SECURE:SASL_PLAINTEXT",
            Some("etcd://127.0.0.1:2379"),
            overrides,
        )
    };
    let err = resolve(&[]).unwrap_err().to_string();
    assert!(err.contains("needs a PLAINTEXT listener"), "{err}");
    // Named, a SASL listener serves, with its mechanism and login.
    let err = resolve(&["inter.broker.listener.name=SECURE"]).unwrap_err().to_string();
    assert!(err.contains("sasl.mechanism.inter.broker.protocol"), "{err}");
}

#[test]
fn bad_values_are_reported_with_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    std::fs::write(&path, "num.partitions=many\n").unwrap();
    let err = Config::resolve(&ServeArgs {
        config_file: Some(path),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("num.partitions"));
}

#[test]
fn consumer_group_settings_have_kafkas_defaults_and_bounds() {
    let with = |o: &[&str]| {
        Config::resolve(&ServeArgs {
            overrides: o.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
    };
    let c = with(&[]).unwrap().group.consumer;
    assert_eq!((c.heartbeat_interval_ms, c.session_timeout_ms), (5_000, 45_000));
    assert_eq!(c.assignors, ["uniform", "range"]);
    assert!(c.enabled && c.migration_policy.upgrade() && c.migration_policy.downgrade());
    let c = with(&[
        "group.consumer.min.session.timeout.ms=1000",
        "group.consumer.session.timeout.ms=2000",
        "group.consumer.min.heartbeat.interval.ms=100",
        "group.consumer.heartbeat.interval.ms=200",
        "group.consumer.assignors=range",
        "group.consumer.migration.policy=upgrade",
        "group.consumer.max.size=10",
    ])
    .unwrap()
    .group
    .consumer;
    assert_eq!(
        (c.heartbeat_interval_ms, c.session_timeout_ms, c.max_size),
        (200, 2_000, 10)
    );
    assert_eq!(c.default_assignor(), "range");
    assert!(c.migration_policy.upgrade() && !c.migration_policy.downgrade());
    // Outside the bounds, heartbeat not below the session, unknown names: refused.
    assert!(with(&["group.consumer.session.timeout.ms=1000"]).is_err());
    assert!(with(&[
        "group.consumer.min.session.timeout.ms=1000",
        "group.consumer.session.timeout.ms=5000",
        "group.consumer.heartbeat.interval.ms=5000"
    ])
    .is_err());
    assert!(with(&["group.consumer.assignors=sticky"]).is_err());
    assert!(with(&["group.consumer.migration.policy=sideways"]).is_err());
    assert!(with(&["group.consumer.max.size=0"]).is_err());
    assert!(
        !with(&["group.coordinator.rebalance.protocols=classic"])
            .unwrap()
            .group
            .consumer
            .enabled
    );
    assert!(with(&["group.coordinator.rebalance.protocols=consumer"]).is_err());
}

#[test]
fn replication_settings_have_kafkas_defaults_and_bounds() {
    let resolve = |o: &[&str]| {
        Config::resolve(&ServeArgs {
            overrides: o.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
    };
    let d = resolve(&[]).unwrap();
    assert_eq!(
        (d.cluster.replica_lag_time_max_ms, d.cluster.default_replication_factor),
        (30_000, 1)
    );
    let c = resolve(&["replica.lag.time.max.ms=1000", "default.replication.factor=3"]).unwrap();
    assert_eq!(
        (c.cluster.replica_lag_time_max_ms, c.cluster.default_replication_factor),
        (1_000, 3)
    );
    for bad in [
        "replica.lag.time.max.ms=10",
        "default.replication.factor=0",
        "default.replication.factor=x",
    ] {
        assert!(resolve(&[bad]).is_err(), "{bad}");
    }
}
