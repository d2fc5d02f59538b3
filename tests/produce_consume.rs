//! librdkafka (the rdkafka crate) producing to and consuming from strom.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

async fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let results = admin
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    for r in results {
        r.unwrap();
    }
}

/// Send `count` keyed records with headers; returns (partition, offset) of each.
async fn send_keyed(p: &FutureProducer, topic: &str, count: usize, partitions: i32) -> Vec<(i32, i64)> {
    let mut pending = Vec::with_capacity(count);
    for i in 0..count {
        let key = format!("key-{i}");
        let value = format!("{{\"orderId\":\"{i}\",\"items\":[{{\"productId\":\"535\",\"quantity\":1}}]}}");
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "source",
                value: Some("web"),
            })
            .insert(Header {
                key: "seq",
                value: Some(&i.to_string()),
            });
        let record = FutureRecord::to(topic)
            .key(&key)
            .payload(&value)
            .partition(i as i32 % partitions)
            .headers(headers);
        pending.push(p.send_result(record).expect("queue"));
    }
    let mut out = Vec::with_capacity(count);
    for f in pending {
        let delivery = f.await.expect("not cancelled").expect("delivered");
        out.push((delivery.partition, delivery.offset));
    }
    out
}

fn check_round_trip(consumed: &[Consumed], count: usize, partitions: i32) {
    assert_eq!(consumed.len(), count);
    for (p, records) in by_partition(consumed) {
        // In order per partition, offsets dense from 0.
        for (n, r) in records.iter().enumerate() {
            assert_eq!(r.offset, n as i64, "partition {p}");
            let i = n * partitions as usize + p as usize;
            assert_eq!(r.key.as_deref(), Some(format!("key-{i}").as_bytes()));
            assert!(String::from_utf8_lossy(r.value.as_ref().unwrap()).contains(&format!("\"orderId\":\"{i}\"")));
            assert_eq!(
                r.headers,
                vec![
                    ("source".to_string(), b"web".to_vec()),
                    ("seq".to_string(), i.to_string().into_bytes())
                ]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_keyed_records_with_each_codec() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("orders-{codec}");
        create_topic(&bootstrap, &topic, 3).await;
        let p = producer(&bootstrap, &[("compression.type", codec), ("acks", "all")]);
        let acks = send_keyed(&p, &topic, 10_000, 3).await;
        assert_eq!(
            acks.iter().collect::<HashSet<_>>().len(),
            10_000,
            "{codec}: offsets unique"
        );
        let consumed = consume(&bootstrap, &topic, 3, 10_000).await;
        check_round_trip(&consumed, 10_000, 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_one_and_all() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    for (acks, topic) in [("0", "acks0"), ("1", "acks1"), ("all", "acksall")] {
        create_topic(&bootstrap, topic, 1).await;
        let p = producer(&bootstrap, &[("acks", acks)]);
        send_keyed(&p, topic, 500, 1).await;
        // acks=0 has no response to wait for: the consumer confirms arrival.
        let consumed = consume(&bootstrap, topic, 1, 500).await;
        check_round_trip(&consumed, 500, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_writes_each_record_once_in_order() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "idem", 2).await;
    let p = producer(
        &bootstrap,
        &[
            ("enable.idempotence", "true"),
            ("max.in.flight.requests.per.connection", "5"),
        ],
    );
    let acks = send_keyed(&p, "idem", 4000, 2).await;
    for part in 0..2 {
        let mut offsets: Vec<i64> = acks.iter().filter(|a| a.0 == part).map(|a| a.1).collect();
        offsets.sort();
        assert_eq!(offsets, (0..2000).collect::<Vec<_>>());
    }
    let consumed = consume(&bootstrap, "idem", 2, 4000).await;
    check_round_trip(&consumed, 4000, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_by_time_earliest_and_latest() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "timed", 1).await;
    let p = producer(&bootstrap, &[("linger.ms", "0")]);
    let base = 1_700_000_000_000i64;
    for i in 0..100i64 {
        // Each record 1 s after the previous one, several per batch at times.
        let record = FutureRecord::to("timed")
            .key("k")
            .payload("v")
            .timestamp(base + i * 1000);
        p.send(record, Duration::from_secs(10)).await.unwrap();
    }
    let c = consumer(&bootstrap);
    let query = |ts: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("timed", 0, Offset::Offset(ts)).unwrap();
        let found = c.offsets_for_times(tpl, Duration::from_secs(10)).unwrap();
        found.find_partition("timed", 0).unwrap().offset()
    };
    assert_eq!(query(base - 5), Offset::Offset(0));
    assert_eq!(query(base), Offset::Offset(0));
    assert_eq!(query(base + 1), Offset::Offset(1));
    assert_eq!(query(base + 42_000), Offset::Offset(42));
    assert_eq!(query(base + 41_500), Offset::Offset(42));
    assert_eq!(query(base + 99_000), Offset::Offset(99));
    assert_eq!(query(base + 100_000), Offset::End);
    let (low, high) = c.fetch_watermarks("timed", 0, Duration::from_secs(10)).unwrap();
    assert_eq!((low, high), (0, 100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_a_restart() {
    let mut broker = TestBroker::start_with(|c| c.log.segment_bytes = 64 * 1024).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "durable", 3).await;
    let p = producer(&bootstrap, &[("acks", "all"), ("compression.type", "lz4")]);
    send_keyed(&p, "durable", 3000, 3).await;
    drop(p);
    broker.restart(|c| c.log.segment_bytes = 64 * 1024).await;
    let bootstrap = broker.bootstrap();
    let consumed = consume(&bootstrap, "durable", 3, 3000).await;
    check_round_trip(&consumed, 3000, 3);
    // And the log continues where it left off.
    let p = producer(&bootstrap, &[("acks", "all")]);
    let more = FutureRecord::to("durable").key("k").payload("v").partition(0);
    let delivery = p.send(more, Duration::from_secs(10)).await.unwrap();
    assert_eq!(delivery.offset, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_is_repaired_at_start() {
    let mut broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "torn", 1).await;
    let p = producer(&bootstrap, &[("acks", "all"), ("linger.ms", "0")]);
    send_keyed(&p, "torn", 200, 1).await;
    drop(p);
    broker.stop().await;
    // Simulate a crash in the middle of a write: half a batch at the end of the
    // active segment, and no clean-shutdown marker.
    let segment = active_segment(&broker.data_dir(), "torn", 0);
    let good_len = std::fs::metadata(&segment).unwrap().len();
    let mut data = std::fs::read(&segment).unwrap();
    let first_batch_len = 12 + u32::from_be_bytes(data[8..12].try_into().unwrap()) as usize;
    let partial = data[..first_batch_len / 2].to_vec();
    data.extend_from_slice(&partial);
    std::fs::write(&segment, &data).unwrap();
    std::fs::remove_file(broker.data_dir().join(".kafka_cleanshutdown")).unwrap();

    broker.restart(|_| {}).await;
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), good_len);
    let bootstrap = broker.bootstrap();
    let consumed = consume(&bootstrap, "torn", 1, 200).await;
    check_round_trip(&consumed, 200, 1);
}
