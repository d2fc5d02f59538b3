//! Client quotas: set and described over the wire (Describe/AlterClientQuotas),
//! a librdkafka producer held to its producer_byte_rate, throttle_time_ms and
//! the muted connection (KIP-219), and connection_creation_rate per address.

mod common;

use std::time::{Duration, Instant};

use common::wire::{self, Wire};
use common::TestBroker;
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// An AlterClientQuotas entry: entity components (type, name or None for the
/// default) and one key set (or removed, None).
fn entry(entity: &[(&str, Option<&str>)], key: &str, value: Option<f64>) -> EntryData {
    let mut e = EntryData::default();
    e.entity = entity
        .iter()
        .map(|(t, n)| {
            let mut d = EntityData::default();
            d.entity_type = s(t);
            d.entity_name = n.map(s);
            d
        })
        .collect();
    let mut op = OpData::default();
    op.key = s(key);
    op.value = value.unwrap_or(0.0);
    op.remove = value.is_none();
    e.ops = vec![op];
    e
}

async fn alter(w: &mut Wire, entries: Vec<EntryData>) -> Vec<i16> {
    let mut req = AlterClientQuotasRequest::default();
    req.entries = entries;
    w.call(1, &req).await.entries.iter().map(|e| e.error_code).collect()
}

async fn describe(w: &mut Wire, components: &[(&str, i8, Option<&str>)], strict: bool) -> Vec<String> {
    let mut req = DescribeClientQuotasRequest::default();
    req.strict = strict;
    req.components = components
        .iter()
        .map(|(t, m, n)| {
            let mut c = ComponentData::default();
            c.entity_type = s(t);
            c.match_type = *m;
            c._match = n.map(s);
            c
        })
        .collect();
    let r = w.call(1, &req).await;
    assert_eq!(r.error_code, 0);
    let mut out: Vec<String> = r
        .entries
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let entity: Vec<String> = e
                .entity
                .iter()
                .map(|d| {
                    format!(
                        "{}={}",
                        d.entity_type.as_str(),
                        d.entity_name.as_deref().unwrap_or("<default>")
                    )
                })
                .collect();
            let values: Vec<String> = e
                .values
                .iter()
                .map(|v| format!("{}:{}", v.key.as_str(), v.value))
                .collect();
            format!("{} {}", entity.join(","), values.join(","))
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_are_set_described_and_checked_as_kafka_does() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let codes = alter(
        &mut w,
        vec![
            entry(&[("user", None)], "producer_byte_rate", Some(1e6)),
            entry(
                &[("user", Some("alice")), ("client-id", Some("app"))],
                "consumer_byte_rate",
                Some(2e6),
            ),
            entry(&[("client-id", Some("app"))], "request_percentage", Some(50.0)),
            entry(&[("ip", Some("10.0.0.1"))], "connection_creation_rate", Some(5.0)),
            // Refused: a key of another entity type, a negative value, a repeated type.
            entry(&[("user", Some("bob"))], "connection_creation_rate", Some(1.0)),
            entry(&[("user", Some("bob"))], "producer_byte_rate", Some(-1.0)),
            entry(
                &[("user", Some("a")), ("user", Some("b"))],
                "producer_byte_rate",
                Some(1.0),
            ),
        ],
    )
    .await;
    assert_eq!(codes, [0, 0, 0, 0, 42, 42, 42]);
    // Every entity with a user component (not strict); only user-alone (strict).
    assert_eq!(
        describe(&mut w, &[("user", 2, None)], false).await,
        ["user=alice,client-id=app consumer_byte_rate:2000000"]
    );
    assert_eq!(
        describe(&mut w, &[("user", 1, None)], true).await,
        ["user=<default> producer_byte_rate:1000000"]
    );
    assert_eq!(
        describe(&mut w, &[("client-id", 0, Some("app"))], true).await,
        ["client-id=app request_percentage:50"]
    );
    assert_eq!(describe(&mut w, &[], false).await.len(), 4);
    // Removed again.
    assert_eq!(
        alter(
            &mut w,
            vec![entry(&[("client-id", Some("app"))], "request_percentage", None)]
        )
        .await,
        [0]
    );
    assert!(describe(&mut w, &[("client-id", 0, Some("app"))], true)
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_produce_over_its_quota_is_throttled_and_its_connection_muted() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    wire::create(&mut w, "throttled", 1).await;
    let records = wire::batch(200, -1, -1, 0);
    // Two batches a second for every client id (the raw client's is strom-wire-test).
    // Over ten windows (Kafka's least span), four batches are 0.4 batches/s.
    let quota = records.len() as f64 * 0.35;
    assert_eq!(
        alter(
            &mut w,
            vec![entry(&[("client-id", None)], "producer_byte_rate", Some(quota))]
        )
        .await,
        [0]
    );
    let mut big = Vec::new();
    for _ in 0..4 {
        big.push(wire::produce_request("throttled", 0, records.clone(), 1));
    }
    let mut throttle = 0;
    for req in &big {
        let r = w.call(7, req).await;
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
        throttle = r.throttle_time_ms;
    }
    assert!(
        throttle > 0,
        "four batches in a second over 0.35 a second: throttle_time_ms is set"
    );
    // The next request waits out the throttle (KIP-219).
    let before = Instant::now();
    w.call(12, &wire::metadata_request(&[])).await;
    assert!(
        before.elapsed() >= Duration::from_millis(throttle as u64 / 2),
        "{:?} < {throttle} ms",
        before.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_is_held_within_ten_percent_of_its_producer_byte_rate() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let quota = 400_000.0;
    assert_eq!(
        alter(
            &mut w,
            vec![entry(
                &[("client-id", Some("metered"))],
                "producer_byte_rate",
                Some(quota)
            )]
        )
        .await,
        [0]
    );
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("client.id", "metered")
        .set("linger.ms", "5")
        // Small requests, so the rate is seen at a fine grain.
        .set("batch.size", "40000")
        .set("message.timeout.ms", "60000")
        .create()
        .unwrap();
    let value = vec![b'x'; 4000];
    let start = Instant::now();
    let run = Duration::from_secs(12);
    // Keep the producer's queue full; the deliveries tell when records got in.
    let mut pending: std::collections::VecDeque<DeliveryFuture> = std::collections::VecDeque::new();
    let mut delivered: Vec<(Duration, usize)> = Vec::new();
    while start.elapsed() < run {
        while pending.len() < 200 {
            let record = FutureRecord::<(), _>::to("metered").payload(&value);
            pending.push_back(producer.send_result(record).map_err(|(e, _)| e).unwrap());
        }
        let Some(next) = pending.pop_front() else { break };
        next.await.unwrap().unwrap();
        delivered.push((start.elapsed(), value.len()));
    }
    // The steady state: between the first delivery after the fifth second (a
    // new client may first burst ten windows' worth, as with Kafka) and the last.
    let first = delivered
        .iter()
        .position(|(t, _)| *t >= Duration::from_secs(5))
        .unwrap();
    let (from, last) = (delivered[first].0, delivered.last().unwrap().0);
    let bytes: usize = delivered[first + 1..].iter().map(|(_, n)| n).sum();
    let rate = bytes as f64 / (last - from).as_secs_f64();
    eprintln!("{rate:.0} B/s steady against a quota of {quota} B/s");
    assert!(
        (rate - quota).abs() <= quota * 0.10,
        "{rate:.0} B/s of record values against a quota of {quota} B/s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_an_addresss_creation_rate_are_closed() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    assert_eq!(
        alter(
            &mut w,
            vec![entry(
                &[("ip", Some("127.0.0.1"))],
                "connection_creation_rate",
                Some(0.3)
            )]
        )
        .await,
        [0]
    );
    let mut refused = 0;
    for _ in 0..8 {
        let mut c = Wire::connect(broker.addr()).await;
        c.send(3, &ApiVersionsRequest::default()).await;
        if c.read_frame().await.is_none() {
            refused += 1;
        }
    }
    // 0.3/s over ten windows: a burst of three, counting the admin's own.
    assert!(
        refused >= 5,
        "{refused} of 8 connections in well under a second refused at 0.3/s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strom_quotas_alter_and_describe() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    let run = |words: &str| {
        let mut args: Vec<String> = words.split_whitespace().map(String::from).collect();
        args.extend(["--bootstrap-server".to_string(), bootstrap.clone()]);
        common::process::strom_cli(args)
    };
    let set =
        "quotas alter --user alice --client-default --set producer_byte_rate=1048576 --set consumer_byte_rate=2097152";
    let (ok, out, err) = run(set).await;
    assert!(ok, "{out}{err}");
    let (ok, out, _) = run("quotas describe --user alice --json").await;
    assert!(
        ok && out.contains("user=alice,client-id=<default>") && out.contains("1048576"),
        "{out}"
    );
    let (ok, _, err) = run("quotas alter --ip 10.0.0.1 --set producer_byte_rate=1").await;
    assert!(!ok && err.contains("InvalidRequest"), "{err}");
}
