//! Topic configs that change what the broker does, and the per-record produce
//! errors of KIP-467, seen by real clients and raw requests.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::wire::{self, describe_configs, Wire};
use common::*;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;
use strom::record::records::{build_batch, NewRecord};

/// Every tenth record, from the fourth, has no key.
fn keyless(i: usize) -> bool {
    i % 10 == 3
}

fn hundred_records() -> Vec<NewRecord> {
    (0..100)
        .map(|i| NewRecord {
            key: (!keyless(i)).then(|| Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value-{i}"))),
            timestamp: strom::util::clock::now_ms(),
            headers: Vec::new(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_errors_name_the_keyless_records_of_a_batch_to_a_compacted_topic() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    wire::create_topic(&mut w, "compacted", 1, &[("cleanup.policy", "compact")]).await;
    let batch = Bytes::from(build_batch(&hundred_records(), None));
    for version in [8, 9] {
        let r = w
            .call(version, &wire::produce_request("compacted", 0, batch.clone(), -1))
            .await;
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 87, "INVALID_RECORD");
        let named: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
        let expected: Vec<i32> = (0..100).filter(|i| keyless(*i)).map(|i| i as i32).collect();
        assert_eq!(named, expected, "v{version}");
        let first = p.record_errors[0]
            .batch_index_error_message
            .as_deref()
            .unwrap_or_default();
        assert!(
            first.starts_with("Compacted topic cannot accept message without key"),
            "{first}"
        );
        let message = p.error_message.as_deref().unwrap_or_default();
        assert!(message.contains("10 record errors"), "{message}");
    }
    // Nothing of the refused batch was written.
    assert_eq!(wire::list_offset(&mut w, "compacted", 0, -1).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_tells_the_bad_records_from_the_good_ones_rejected_with_them() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    wire::create_topic(&mut w, "compacted", 1, &[("cleanup.policy", "compact")]).await;

    // One batch of 100: librdkafka holds them until the batch is full.
    let p = producer(
        &broker.bootstrap(),
        &[("linger.ms", "2000"), ("batch.num.messages", "100"), ("retries", "0")],
    );
    let sends: Vec<_> = (0..100)
        .map(|i| {
            let key = format!("key-{i}");
            let record = FutureRecord::to("compacted").partition(0).payload("v");
            let record = if keyless(i) { record } else { record.key(&key) };
            p.send_result(record).map_err(|(e, _)| e).expect("queued")
        })
        .collect();
    for (i, sent) in sends.into_iter().enumerate() {
        let code = match sent.await.expect("delivery report") {
            Err((KafkaError::MessageProduction(code), _)) => code,
            other => panic!("record {i}: {other:?}"),
        };
        let expected = if keyless(i) {
            RDKafkaErrorCode::InvalidRecord
        } else {
            RDKafkaErrorCode::InvalidDifferentRecord
        };
        assert_eq!(code, expected, "record {i}");
    }

    // One record per batch: only the keyless ones fail.
    let p = producer(&broker.bootstrap(), &[("linger.ms", "0"), ("retries", "0")]);
    let mut delivered = 0;
    for i in 0..100 {
        let key = format!("key-{i}");
        let record = FutureRecord::to("compacted").partition(0).payload("v");
        let record = if keyless(i) { record } else { record.key(&key) };
        match p.send(record, Duration::from_secs(10)).await {
            Ok(_) => delivered += 1,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord), _)) => assert!(keyless(i), "{i}"),
            Err(e) => panic!("record {i}: {e:?}"),
        }
    }
    assert_eq!(delivered, 90);
    assert_eq!(wire::list_offset(&mut w, "compacted", 0, -1).await, (0, 90));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_insync_replicas_above_one_refuses_acks_all_writes() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    wire::create_topic(&mut w, "safe", 1, &[("min.insync.replicas", "2")]).await;
    let produce =
        |acks: i16| wire::produce_request("safe", 0, wire::batch(3, -1, 0, strom::util::clock::now_ms()), acks);
    let r = w.call(9, &produce(-1)).await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 19, "NOT_ENOUGH_REPLICAS");
    assert!(p
        .error_message
        .as_deref()
        .unwrap_or_default()
        .contains("min.insync.replicas=2"));
    // acks=1 does not wait for replicas, so min.insync.replicas does not apply.
    let r = w.call(9, &produce(1)).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(
        wire::list_offset(&mut w, "safe", 0, -1).await,
        (0, 3),
        "only the acks=1 batch"
    );
    // Lowered at run time, acks=all works again.
    let (code, _) = wire::incremental_alter(&mut w, 2, "safe", &[("min.insync.replicas", 0, Some("1"))]).await;
    assert_eq!(code, 0);
    assert_eq!(
        w.call(9, &produce(-1)).await.responses[0].partition_responses[0].error_code,
        0
    );
}

/// Codec (attributes bits 0–2) and records (key, value) of every batch of
/// partition 0, fetched raw.
async fn stored_batches(w: &mut Wire, topic: &str, id: uuid::Uuid) -> Vec<(i16, Vec<(Option<Bytes>, Option<Bytes>)>)> {
    let f = w.call(12, &wire::fetch_request(topic, id, 0, 100)).await;
    let data = f.responses[0].partitions[0].records.clone().unwrap_or_default();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(h) = strom::record::batch::next_batch(&data[at..]).unwrap() {
        let batch = data.slice(at..at + h.total_size());
        let records = strom::record::records::records(&batch, &h).unwrap();
        out.push((
            h.attributes & 7,
            records.into_iter().map(|r| (r.key, r.value)).collect(),
        ));
        at += h.total_size();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_type_recompresses_each_batch_to_the_topics_codec() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let zstd = wire::create_topic(&mut w, "zstd-topic", 1, &[("compression.type", "zstd")]).await;
    let plain = wire::create_topic(&mut w, "plain-topic", 1, &[("compression.type", "uncompressed")]).await;
    let kept = wire::create_topic(&mut w, "producer-topic", 1, &[]).await;
    // An idempotent librdkafka producer compressing with lz4, 3 batches of 20.
    let p = producer(
        &broker.bootstrap(),
        &[
            ("compression.codec", "lz4"),
            ("enable.idempotence", "true"),
            ("linger.ms", "50"),
        ],
    );
    for topic in ["zstd-topic", "plain-topic", "producer-topic"] {
        for round in 0..3 {
            let sends: Vec<_> = (0..20)
                .map(|i| {
                    let (k, v) = (
                        format!("k{round}-{i}"),
                        format!("value {round}-{i} {}", "x".repeat(100)),
                    );
                    p.send_result(FutureRecord::to(topic).partition(0).key(&k).payload(&v))
                        .map_err(|(e, _)| e)
                        .unwrap()
                })
                .collect();
            for s in sends {
                s.await.unwrap().unwrap();
            }
        }
    }
    for (topic, id, codec) in [
        ("zstd-topic", zstd, 4),
        ("plain-topic", plain, 0),
        ("producer-topic", kept, 3),
    ] {
        let batches = stored_batches(&mut w, topic, id).await;
        assert!(!batches.is_empty());
        let mut n = 0;
        for (stored_codec, records) in &batches {
            assert_eq!(*stored_codec, codec, "{topic}");
            for (k, v) in records {
                let (round, i) = (n / 20, n % 20);
                assert_eq!(k.as_deref(), Some(format!("k{round}-{i}").as_bytes()), "{topic}");
                assert!(v
                    .as_deref()
                    .unwrap()
                    .starts_with(format!("value {round}-{i} ").as_bytes()));
                n += 1;
            }
        }
        assert_eq!(n, 60, "{topic}");
        // librdkafka reads them back too.
        let consumed = consume(&broker.bootstrap(), topic, 1, 60).await;
        assert_eq!(consumed.len(), 60, "{topic}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_broker_configs_change_retention_live_and_survive_a_restart() {
    let mut broker = TestBroker::start_with(|c| c.retention_check_interval_ms = 100).await;
    let mut w = Wire::connect(broker.addr()).await;
    // A topic with no retention of its own: it follows the broker's default.
    wire::create_topic(&mut w, "follows", 1, &[("segment.bytes", "2000")]).await;
    let p = producer(&broker.bootstrap(), &[("linger.ms", "0")]);
    let old = strom::util::clock::now_ms() - 3_600_000;
    for i in 0..40 {
        let v = format!("old-{i:040}");
        let record = FutureRecord::to("follows").key("k").payload(&v).timestamp(old);
        p.send(record, Duration::from_secs(10)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        wire::list_offset(&mut w, "follows", 0, -2).await,
        (0, 0),
        "7 days: nothing expired"
    );

    // Kafka's non-dynamic configs are refused with its message.
    let (code, message) = wire::incremental_alter(&mut w, 4, "0", &[("num.partitions", 0, Some("3"))]).await;
    assert_eq!(code, 40, "INVALID_CONFIG");
    assert!(message.unwrap().contains("Cannot update these configs dynamically"));
    let (code, _) = wire::incremental_alter(&mut w, 4, "0", &[("log.retention.ms", 0, Some("soon"))]).await;
    assert_eq!(code, 40);
    let (code, _) = wire::incremental_alter(&mut w, 4, "7", &[("log.retention.ms", 0, Some("1"))]).await;
    assert_ne!(code, 0, "another broker's id");

    // This broker: one minute; the cluster default: a segment size.
    let (code, message) = wire::incremental_alter(&mut w, 4, "0", &[("log.retention.ms", 0, Some("60000"))]).await;
    assert_eq!(code, 0, "{message:?}");
    let (code, _) = wire::incremental_alter(&mut w, 4, "", &[("log.segment.bytes", 0, Some("1048576"))]).await;
    assert_eq!(code, 0);
    let mut start = 0;
    for _ in 0..100 {
        start = wire::list_offset(&mut w, "follows", 0, -2).await.1;
        if start == 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(start, 40, "the new retention applied without a restart");

    for restarted in [false, true] {
        let b = describe_configs(&mut w, 4, "0").await;
        assert_eq!(
            b["log.retention.ms"],
            ("60000".into(), 2, false),
            "DYNAMIC_BROKER_CONFIG (restart {restarted})"
        );
        assert_eq!(
            b["log.segment.bytes"],
            ("1048576".into(), 3, false),
            "DYNAMIC_DEFAULT_BROKER_CONFIG"
        );
        assert!(b["log.message.format.version"].2, "read-only");
        let d = describe_configs(&mut w, 4, "").await;
        assert_eq!(
            d.keys().collect::<Vec<_>>(),
            ["log.segment.bytes"],
            "the default resource shows its own"
        );
        let t = describe_configs(&mut w, 2, "follows").await;
        assert_eq!(t["retention.ms"], ("60000".into(), 2, false));
        assert_eq!(t["segment.bytes"].1, 1, "the topic's own override");
        if !restarted {
            broker.restart(|c| c.retention_check_interval_ms = 100).await;
            w = Wire::connect(broker.addr()).await;
        }
    }

    // Deleting the setting falls back to the static default (7 days).
    let (code, _) = wire::incremental_alter(&mut w, 4, "0", &[("log.retention.ms", 1, None)]).await;
    assert_eq!(code, 0);
    assert_eq!(
        describe_configs(&mut w, 2, "follows").await["retention.ms"],
        ("604800000".into(), 5, false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_admin_alters_and_describes_broker_configs() {
    use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ConfigSource, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let broker = TestBroker::start().await;
    let a: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let alter = AlterConfig::new(ResourceSpecifier::Broker(0)).set("log.cleaner.min.compaction.lag.ms", "5000");
    let r = a.alter_configs(&[alter], &AdminOptions::new()).await.unwrap();
    r[0].as_ref().expect("altered");
    let described = a
        .describe_configs(&[ResourceSpecifier::Broker(0)], &AdminOptions::new())
        .await
        .unwrap();
    let resource = described[0].as_ref().unwrap();
    let entry = resource.get("log.cleaner.min.compaction.lag.ms").unwrap();
    assert_eq!(entry.value.as_deref(), Some("5000"));
    assert_eq!(entry.source, ConfigSource::DynamicBroker);
    assert!(!entry.is_read_only);
}

/// Name → (value, source) of every config of topic `every`.
async fn described(
    a: &rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>,
) -> std::collections::HashMap<String, (String, rdkafka::admin::ConfigSource)> {
    use rdkafka::admin::{AdminOptions, ResourceSpecifier};
    let r = a
        .describe_configs(&[ResourceSpecifier::Topic("every")], &AdminOptions::new())
        .await
        .unwrap();
    let resource = r.into_iter().next().unwrap().unwrap();
    resource
        .entries
        .into_iter()
        .map(|e| (e.name.clone(), (e.value.clone().unwrap_or_default(), e.source)))
        .collect()
}

/// Every topic config with two values that are not its default.
const EVERY_CONFIG: &[(&str, &str, &str)] = &[
    ("cleanup.policy", "compact", "compact,delete"),
    ("compression.gzip.level", "5", "9"),
    ("compression.lz4.level", "5", "12"),
    ("compression.type", "zstd", "gzip"),
    ("compression.zstd.level", "7", "-1"),
    ("delete.retention.ms", "1000", "2000"),
    ("file.delete.delay.ms", "1000", "0"),
    ("flush.messages", "100", "1"),
    ("flush.ms", "1000", "2000"),
    ("follower.replication.throttled.replicas", "*", "0:0"),
    ("index.interval.bytes", "1024", "2048"),
    ("leader.replication.throttled.replicas", "*", "0:0"),
    ("local.retention.bytes", "1000", "-1"),
    ("local.retention.ms", "1000", "-1"),
    ("max.compaction.lag.ms", "100000", "200000"),
    ("max.message.bytes", "2000000", "3000000"),
    ("message.timestamp.after.max.ms", "1000", "2000"),
    ("message.timestamp.before.max.ms", "1000", "2000"),
    ("message.timestamp.type", "LogAppendTime", "LogAppendTime"),
    ("min.cleanable.dirty.ratio", "0.1", "0.2"),
    ("min.compaction.lag.ms", "10", "20"),
    ("min.insync.replicas", "2", "3"),
    ("preallocate", "true", "true"),
    ("remote.log.copy.disable", "true", "true"),
    ("remote.log.delete.on.disable", "true", "true"),
    ("remote.storage.enable", "false", "false"),
    ("retention.bytes", "1000000", "2000000"),
    ("retention.ms", "100000", "200000"),
    ("segment.bytes", "1048576", "2097152"),
    ("segment.index.bytes", "4096", "8192"),
    ("segment.jitter.ms", "10", "20"),
    ("segment.ms", "100000", "200000"),
    ("unclean.leader.election.enable", "true", "true"),
    ("message.downconversion.enable", "false", "false"),
    ("message.format.version", "2.8-IV1", "3.0-IV1"),
    ("message.timestamp.difference.max.ms", "1000", "2000"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_topic_config_round_trips_through_the_rdkafka_admin_client() {
    use rdkafka::admin::{
        AdminClient, AdminOptions, AlterConfig, ConfigSource, NewTopic, ResourceSpecifier, TopicReplication,
    };
    use rdkafka::client::DefaultClientContext;
    let mut broker = TestBroker::start().await;
    let admin = |bs: String| -> AdminClient<DefaultClientContext> {
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", bs)
            .create()
            .unwrap()
    };
    let a = admin(broker.bootstrap());
    let opts = AdminOptions::new();
    // CreateTopics with every config.
    let mut topic = NewTopic::new("every", 1, TopicReplication::Fixed(1));
    for (name, first, _) in EVERY_CONFIG {
        topic = topic.set(name, first);
    }
    for r in a.create_topics(&[topic], &opts).await.unwrap() {
        r.unwrap();
    }
    let d = described(&a).await;
    for (name, first, _) in EVERY_CONFIG {
        assert_eq!(
            d[*name],
            (first.to_string(), ConfigSource::DynamicTopic),
            "{name} after CreateTopics"
        );
    }
    // AlterConfigs (the whole set) with the second values.
    let mut alter = AlterConfig::new(ResourceSpecifier::Topic("every"));
    for (name, _, second) in EVERY_CONFIG {
        alter = alter.set(name, second);
    }
    a.alter_configs(&[alter], &opts).await.unwrap()[0].as_ref().unwrap();
    let d = described(&a).await;
    for (name, _, second) in EVERY_CONFIG {
        assert_eq!(
            d[*name],
            (second.to_string(), ConfigSource::DynamicTopic),
            "{name} after AlterConfigs"
        );
    }
    // They survive a restart.
    drop(a);
    broker.restart(|_| {}).await;
    let a = admin(broker.bootstrap());
    let after = described(&a).await;
    assert_eq!(after, d, "after a restart");
    // IncrementalAlterConfigs: set the first values back, then delete them all.
    let mut w = Wire::connect(broker.addr()).await;
    let set: Vec<(&str, i8, Option<&str>)> = EVERY_CONFIG.iter().map(|(n, f, _)| (*n, 0, Some(*f))).collect();
    assert_eq!(wire::incremental_alter(&mut w, 2, "every", &set).await.0, 0);
    let d = described(&a).await;
    for (name, first, _) in EVERY_CONFIG {
        assert_eq!(d[*name].0, *first, "{name} after IncrementalAlterConfigs");
    }
    let delete: Vec<(&str, i8, Option<&str>)> = EVERY_CONFIG.iter().map(|(n, _, _)| (*n, 1, None)).collect();
    assert_eq!(wire::incremental_alter(&mut w, 2, "every", &delete).await.0, 0);
    let d = described(&a).await;
    for (name, _, _) in EVERY_CONFIG {
        assert_eq!(d[*name].1, ConfigSource::Default, "{name} deleted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_errors_list_every_bad_record_but_explain_only_the_first_hundred() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    wire::create_topic(&mut w, "keyless", 1, &[("cleanup.policy", "compact")]).await;
    let records: Vec<NewRecord> = (0..5000)
        .map(|_| NewRecord {
            key: None,
            value: Some(Bytes::from_static(b"v")),
            timestamp: strom::util::clock::now_ms(),
            headers: Vec::new(),
        })
        .collect();
    let batch = Bytes::from(build_batch(&records, None));
    let r = w.call(9, &wire::produce_request("keyless", 0, batch, -1)).await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.record_errors.len(), 5000);
    let explained = p
        .record_errors
        .iter()
        .filter(|e| e.batch_index_error_message.is_some())
        .count();
    assert_eq!(explained, 100);
    assert!(p
        .record_errors
        .iter()
        .enumerate()
        .all(|(i, e)| e.batch_index == i as i32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_incremental_alters_of_one_resource_lose_nothing() {
    // Four clients, each setting its own config of the same topic (and of the
    // broker) over and over: every one's last value must stay.
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    wire::create_topic(&mut w, "busy", 1, &[]).await;
    let (topic_keys, broker_keys) = (
        ["retention.ms", "segment.ms", "delete.retention.ms", "flush.ms"],
        [
            "log.retention.ms",
            "log.roll.ms",
            "log.cleaner.delete.retention.ms",
            "log.flush.interval.ms",
        ],
    );
    let mut tasks = Vec::new();
    for i in 0..4 {
        let addr = broker.addr();
        let (tk, bk) = (topic_keys[i], broker_keys[i]);
        tasks.push(tokio::spawn(async move {
            let mut w = Wire::connect(addr).await;
            for n in 0..50 {
                let v = (100_000 + n).to_string();
                assert_eq!(
                    wire::incremental_alter(&mut w, 2, "busy", &[(tk, 0, Some(&v))]).await.0,
                    0
                );
                assert_eq!(wire::incremental_alter(&mut w, 4, "0", &[(bk, 0, Some(&v))]).await.0, 0);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let topic = describe_configs(&mut w, 2, "busy").await;
    let brk = describe_configs(&mut w, 4, "0").await;
    for i in 0..4 {
        assert_eq!(topic[topic_keys[i]].0, "100049", "{}", topic_keys[i]);
        assert_eq!(brk[broker_keys[i]].0, "100049", "{}", broker_keys[i]);
    }
}
