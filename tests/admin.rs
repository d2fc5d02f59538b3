//! Topic administration with the rdkafka admin client: configs, partitions,
//! deleted records, retention, LogAppendTime, keys on compacted topics.

mod common;

use std::time::Duration;

use common::wire::Wire;
use common::*;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap()
}

async fn config_of(a: &AdminClient<DefaultClientContext>, topic: &str, name: &str) -> (Option<String>, ConfigSource) {
    let described = a
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .unwrap();
    let resource = described.into_iter().next().unwrap().unwrap();
    let e = resource.entries.into_iter().find(|e| e.name == name).unwrap();
    (e.value, e.source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_configs_are_created_described_altered_and_persisted() {
    let mut broker = TestBroker::start().await;
    let a = admin(&broker.bootstrap());
    let topic = NewTopic::new("configured", 2, TopicReplication::Fixed(1))
        .set("retention.ms", "123456")
        .set("cleanup.policy", "compact");
    a.create_topics(&[topic], &AdminOptions::new()).await.unwrap()[0]
        .clone()
        .unwrap();
    assert_eq!(
        config_of(&a, "configured", "retention.ms").await,
        (Some("123456".into()), ConfigSource::DynamicTopic)
    );
    assert_eq!(
        config_of(&a, "configured", "segment.bytes").await,
        (Some("1073741824".into()), ConfigSource::Default)
    );
    // Bad values and unknown names are refused with INVALID_CONFIG.
    for (k, v) in [
        ("retention.ms", "soon"),
        ("no.such.thing", "1"),
        ("cleanup.policy", "shred"),
    ] {
        let bad = NewTopic::new("refused", 1, TopicReplication::Fixed(1)).set(k, v);
        let r = a.create_topics(&[bad], &AdminOptions::new()).await.unwrap();
        let (_, code) = r[0].clone().unwrap_err();
        assert_eq!(code, rdkafka::types::RDKafkaErrorCode::InvalidConfig, "{k}={v}");
    }
    // AlterConfigs replaces the whole override set.
    let alter = AlterConfig::new(ResourceSpecifier::Topic("configured")).set("retention.bytes", "999999");
    let altered = a.alter_configs(&[alter], &AdminOptions::new()).await.unwrap();
    assert!(altered[0].is_ok(), "{altered:?}");
    assert_eq!(
        config_of(&a, "configured", "retention.bytes").await.0,
        Some("999999".into())
    );
    assert_eq!(
        config_of(&a, "configured", "retention.ms").await,
        (Some("604800000".into()), ConfigSource::Default),
        "not named in AlterConfigs: back to the default"
    );
    // Broker configs, with their sources; the log ones may change at run time.
    let described = a
        .describe_configs(&[ResourceSpecifier::Broker(0)], &AdminOptions::new())
        .await
        .unwrap();
    let b = described.into_iter().next().unwrap().unwrap();
    let retention = b.get("log.retention.ms").unwrap();
    assert!(!retention.is_read_only);
    assert!(b.get("log.message.format.version").unwrap().is_read_only);
    assert_eq!(retention.value.as_deref(), Some("604800000"));
    // Configs survive a restart.
    drop(a);
    broker.restart(|_| {}).await;
    let a = admin(&broker.bootstrap());
    assert_eq!(
        config_of(&a, "configured", "retention.bytes").await,
        (Some("999999".into()), ConfigSource::DynamicTopic)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_grow_and_records_are_deleted() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    let a = admin(&bootstrap);
    a.create_topics(
        &[NewTopic::new("growing", 2, TopicReplication::Fixed(1))],
        &AdminOptions::new(),
    )
    .await
    .unwrap();
    let r = a
        .create_partitions(&[NewPartitions::new("growing", 5)], &AdminOptions::new())
        .await
        .unwrap();
    r[0].clone().unwrap();
    let r = a
        .create_partitions(&[NewPartitions::new("growing", 3)], &AdminOptions::new())
        .await
        .unwrap();
    assert_eq!(
        r[0].clone().unwrap_err().1,
        rdkafka::types::RDKafkaErrorCode::InvalidPartitions
    );
    let p = producer(&bootstrap, &[("linger.ms", "0")]);
    for i in 0..100 {
        let v = format!("r{i}");
        p.send(
            FutureRecord::to("growing").key("k").payload(&v).partition(4),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("growing", 4, Offset::Offset(40)).unwrap();
    let done = a.delete_records(&tpl, &AdminOptions::new()).await.unwrap();
    assert_eq!(done.find_partition("growing", 4).unwrap().offset(), Offset::Offset(40));
    let c = consumer(&bootstrap);
    assert_eq!(
        c.fetch_watermarks("growing", 4, Duration::from_secs(5)).unwrap(),
        (40, 100)
    );
    let mut from_start = TopicPartitionList::new();
    from_start
        .add_partition_offset("growing", 4, Offset::Beginning)
        .unwrap();
    c.assign(&from_start).unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), c.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.offset(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_segments_and_consumers_reset() {
    let broker = TestBroker::start_with(|c| c.retention_check_interval_ms = 100).await;
    let bootstrap = broker.bootstrap();
    let a = admin(&bootstrap);
    let topic = NewTopic::new("expiring", 1, TopicReplication::Fixed(1))
        .set("segment.bytes", "2000")
        .set("retention.ms", "60000");
    a.create_topics(&[topic], &AdminOptions::new()).await.unwrap();
    let p = producer(&bootstrap, &[("linger.ms", "0")]);
    let old = rdkafka::util::millis_to_epoch(std::time::SystemTime::now()) - 3_600_000;
    for i in 0..60 {
        let v = format!("old-{i:040}");
        p.send(
            FutureRecord::to("expiring").key("k").payload(&v).timestamp(old),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
    let c = consumer(&bootstrap);
    let mut low = 0;
    for _ in 0..100 {
        low = c.fetch_watermarks("expiring", 0, Duration::from_secs(5)).unwrap().0;
        if low == 60 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(low, 60, "every expired segment deleted, the log start moved");
    // A consumer whose position is below the log start gets OFFSET_OUT_OF_RANGE
    // and resets (auto.offset.reset=earliest) to the new start.
    p.send(
        FutureRecord::to("expiring").key("k").payload("fresh"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let c: rdkafka::consumer::StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "retention-reset")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("expiring", 0, Offset::Offset(5)).unwrap();
    c.assign(&tpl).unwrap();
    let m = tokio::time::timeout(Duration::from_secs(20), c.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((m.offset(), m.payload()), (60, Some(&b"fresh"[..])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_append_time_and_keys_on_compacted_topics() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    let a = admin(&bootstrap);
    let topics = [
        NewTopic::new("stamped", 1, TopicReplication::Fixed(1)).set("message.timestamp.type", "LogAppendTime"),
        NewTopic::new("keyed", 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact"),
    ];
    a.create_topics(&topics, &AdminOptions::new()).await.unwrap();
    let p = producer(&bootstrap, &[("linger.ms", "0")]);
    let before = rdkafka::util::millis_to_epoch(std::time::SystemTime::now());
    p.send(
        FutureRecord::to("stamped").key("k").payload("v").timestamp(1000),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let got = consume(&bootstrap, "stamped", 1, 1).await;
    let ts = got[0].timestamp.unwrap();
    assert!(
        ts >= before - 1000 && ts != 1000,
        "the broker's time, not the producer's: {ts}"
    );

    let keyless = FutureRecord::<str, str>::to("keyed").payload("no key");
    let err = p.send(keyless, Duration::from_secs(10)).await.unwrap_err().0;
    assert_eq!(
        err.rdkafka_error_code(),
        Some(rdkafka::types::RDKafkaErrorCode::InvalidRecord)
    );
    p.send(FutureRecord::to("keyed").key("k").payload("v"), Duration::from_secs(10))
        .await
        .unwrap();
}

#[tokio::test]
async fn incremental_alter_configs_set_delete_append_subtract() {
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let mut t = kafka_protocol::messages::create_topics_request::CreatableTopic::default();
    t.name = TopicName(StrBytes::from_static_str("inc"));
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut create = CreateTopicsRequest::default();
    create.topics = vec![t];
    assert_eq!(w.call(7, &create).await.topics[0].error_code, 0);
    let op = |name: &str, op: i8, value: Option<&str>| {
        let mut c = AlterableConfig::default();
        c.name = StrBytes::from_string(name.to_string());
        c.config_operation = op;
        c.value = value.map(|v| StrBytes::from_string(v.to_string()));
        c
    };
    let alter = |configs: Vec<AlterableConfig>| {
        let mut r = AlterConfigsResource::default();
        r.resource_type = 2;
        r.resource_name = StrBytes::from_static_str("inc");
        r.configs = configs;
        let mut req = IncrementalAlterConfigsRequest::default();
        req.resources = vec![r];
        req
    };
    let describe = |name: &str| {
        let mut r = kafka_protocol::messages::describe_configs_request::DescribeConfigsResource::default();
        r.resource_type = 2;
        r.resource_name = StrBytes::from_static_str("inc");
        r.configuration_keys = Some(vec![StrBytes::from_string(name.to_string())]);
        let mut req = DescribeConfigsRequest::default();
        req.resources = vec![r];
        req
    };
    let value = |r: DescribeConfigsResponse| r.results[0].configs[0].value.as_ref().unwrap().to_string();
    let r = w
        .call(
            1,
            &alter(vec![
                op("retention.ms", 0, Some("5000")),
                op("cleanup.policy", 2, Some("compact")),
            ]),
        )
        .await;
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(value(w.call(4, &describe("retention.ms")).await), "5000");
    assert_eq!(value(w.call(4, &describe("cleanup.policy")).await), "compact,delete");
    w.call(
        1,
        &alter(vec![
            op("cleanup.policy", 3, Some("delete")),
            op("retention.ms", 1, None),
        ]),
    )
    .await;
    assert_eq!(value(w.call(4, &describe("cleanup.policy")).await), "compact");
    assert_eq!(value(w.call(4, &describe("retention.ms")).await), "604800000");
    let bad = w.call(1, &alter(vec![op("retention.ms", 2, Some("1"))])).await;
    assert_eq!(bad.responses[0].error_code, 40, "APPEND to a non-list: INVALID_CONFIG");
    let mut dry = alter(vec![op("retention.ms", 0, Some("7"))]);
    dry.validate_only = true;
    assert_eq!(w.call(1, &dry).await.responses[0].error_code, 0);
    assert_eq!(
        value(w.call(4, &describe("retention.ms")).await),
        "604800000",
        "validate_only changes nothing"
    );
}

#[tokio::test]
async fn every_version_of_the_admin_apis_answers() {
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let s = |v: &str| StrBytes::from_string(v.to_string());
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let mut t = kafka_protocol::messages::create_topics_request::CreatableTopic::default();
    t.name = TopicName(s("adm"));
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut create = CreateTopicsRequest::default();
    create.topics = vec![t];
    w.call(7, &create).await;
    for v in 1..=4 {
        let mut r = DescribeConfigsResource::default();
        r.resource_type = 2;
        r.resource_name = s("adm");
        let mut req = DescribeConfigsRequest::default();
        req.resources = vec![r];
        req.include_synonyms = true;
        let resp = w.call(v, &req).await;
        assert_eq!(resp.results[0].error_code, 0, "DescribeConfigs v{v}");
        assert!(resp.results[0]
            .configs
            .iter()
            .any(|c| c.name.as_str() == "retention.ms"));
    }
    for v in 0..=2 {
        let mut c = AlterableConfig::default();
        c.name = s("retention.ms");
        c.value = Some(s(&format!("{}", 1000 + v)));
        let mut r = AlterConfigsResource::default();
        r.resource_type = 2;
        r.resource_name = s("adm");
        r.configs = vec![c];
        let mut req = AlterConfigsRequest::default();
        req.resources = vec![r];
        assert_eq!(w.call(v, &req).await.responses[0].error_code, 0, "AlterConfigs v{v}");
    }
    for v in 0..=3 {
        let mut t = CreatePartitionsTopic::default();
        t.name = TopicName(s("adm"));
        t.count = 2 + v as i32;
        let mut req = CreatePartitionsRequest::default();
        req.topics = vec![t];
        assert_eq!(w.call(v, &req).await.results[0].error_code, 0, "CreatePartitions v{v}");
    }
    for v in 0..=2 {
        let mut p = DeleteRecordsPartition::default();
        p.partition_index = 0;
        p.offset = -1;
        let mut t = DeleteRecordsTopic::default();
        t.name = TopicName(s("adm"));
        t.partitions = vec![p];
        let mut req = DeleteRecordsRequest::default();
        req.topics = vec![t];
        let r = w.call(v, &req).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0, "DeleteRecords v{v}");
    }
    for v in 0..=1 {
        let r = w.call(v, &DescribeClusterRequest::default()).await;
        assert_eq!((r.error_code, r.brokers.len()), (0, 1), "DescribeCluster v{v}");
        assert_eq!(r.cluster_id.len(), 22);
    }
    for v in 1..=4 {
        let mut req = DescribeLogDirsRequest::default();
        req.topics = None;
        let r = w.call(v, &req).await;
        let t = r.results[0].topics.iter().find(|t| t.name.as_str() == "adm").unwrap();
        assert_eq!(t.partitions.len(), 5, "DescribeLogDirs v{v}");
        if v >= 4 {
            assert!(r.results[0].total_bytes > 0 && r.results[0].usable_bytes > 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_leaves_the_latest_value_per_key_and_drops_tombstones() {
    let broker = TestBroker::start_with(|c| c.cleaner_backoff_ms = 100).await;
    let bootstrap = broker.bootstrap();
    let a = admin(&bootstrap);
    let topic = NewTopic::new("profiles", 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "1024")
        .set("min.cleanable.dirty.ratio", "0.01")
        .set("delete.retention.ms", "0");
    a.create_topics(&[topic], &AdminOptions::new()).await.unwrap();
    let p = producer(&bootstrap, &[("linger.ms", "0"), ("compression.type", "lz4")]);
    // 20 keys, 5 versions each; every fourth key deleted at the end.
    for version in 0..5 {
        for key in 0..20 {
            let (k, v) = (format!("user-{key}"), format!("v{version}"));
            p.send(
                FutureRecord::to("profiles").key(&k).payload(&v),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        }
    }
    for key in (0..20).step_by(4) {
        let k = format!("user-{key}");
        p.send(
            FutureRecord::<String, str>::to("profiles").key(&k),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
    // Filler under its own key, so every write above lands in sealed segments.
    for i in 0..40 {
        let v = format!("{i:0100}");
        p.send(
            FutureRecord::to("profiles").key("filler").payload(&v),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
    let expected: Vec<(String, String)> = (0..20)
        .filter(|k| k % 4 != 0)
        .map(|k| (format!("user-{k}"), "v4".to_string()))
        .collect();
    let mut last = Vec::new();
    for _ in 0..100 {
        let c = consumer(&bootstrap);
        let (low, high) = c.fetch_watermarks("profiles", 0, Duration::from_secs(5)).unwrap();
        assert_eq!(high, 145, "offsets are kept");
        let _ = low;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("profiles", 0, Offset::Beginning).unwrap();
        c.assign(&tpl).unwrap();
        let mut seen = Vec::new();
        while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(500), c.recv()).await {
            let key = String::from_utf8_lossy(m.key().unwrap()).to_string();
            if key != "filler" {
                let value = m.payload().map(|v| String::from_utf8_lossy(v).to_string());
                seen.push((key, value.unwrap_or_else(|| "<tombstone>".into())));
            }
            if m.offset() == high - 1 {
                break;
            }
        }
        if seen == expected {
            return;
        }
        last = seen;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("not compacted as expected; last read: {last:?}");
}

#[tokio::test]
async fn internal_topics_are_the_brokers_to_make() {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let mut t = kafka_protocol::messages::create_topics_request::CreatableTopic::default();
    t.name = TopicName(StrBytes::from_static_str("__transaction_state"));
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut create = CreateTopicsRequest::default();
    create.topics = vec![t];
    let r = w.call(7, &create).await;
    assert_eq!(r.topics[0].error_code, 42, "INVALID_REQUEST");
    // Nor does asking for its metadata make it.
    let m = w
        .call(12, &common::wire::metadata_request(&["__transaction_state"]))
        .await;
    assert_eq!(m.topics[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
}
