//! Fetching from the closest replica (KIP-392, issue 17 stage 11): brokers in
//! racks rack-1..3 with Kafka's `RackAwareReplicaSelector`; a consumer naming
//! a follower's rack is sent there by the leader and reads everything from
//! it, while the leader sends it no record. A follower serves consumers below
//! its own high watermark, checks their leader epoch as the leader would, and
//! serves no consumer older than Fetch v11.
#![cfg(feature = "cluster")]

mod common;

use std::time::{Duration, Instant};

use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use common::checker::*;
use common::cluster::*;
use common::etcd::Etcd;
use common::http::{get, sample};
use common::wire::*;

const RECORDS: usize = 120;

/// (error, records bytes, high watermark, preferred read replica) of a fetch of
/// `near-0` from `offset`, at `version`, from a consumer in `rack`.
async fn fetch(c: &Cluster, node: i32, version: i16, rack: &str, offset: i64, epoch: i32) -> (i16, usize, i64, i32) {
    fetch_as(c, node, -1, version, rack, offset, epoch).await
}

/// [`fetch`] by `replica` (−1: a consumer).
async fn fetch_as(
    c: &Cluster,
    node: i32,
    replica: i32,
    version: i16,
    rack: &str,
    offset: i64,
    epoch: i32,
) -> (i16, usize, i64, i32) {
    let mut w = Wire::connect(c.addr(node)).await;
    let mut request = fetch_request("near", uuid::Uuid::nil(), offset, 0);
    request.replica_id = kafka_protocol::messages::BrokerId(replica);
    request.rack_id = StrBytes::from_string(rack.to_string());
    request.topics[0].partitions[0].current_leader_epoch = epoch;
    let r = w.call(version, &request).await;
    let p = &r.responses[0].partitions[0];
    let bytes = p.records.as_ref().map_or(0, |r| r.len());
    (p.error_code, bytes, p.high_watermark, p.preferred_read_replica.0)
}

/// Record bytes broker `node` has sent consumers of `near` (its metric).
async fn bytes_out(c: &Cluster, node: i32) -> f64 {
    let http = std::net::SocketAddr::from((host(node), c.http_port));
    let m = get(http, "/metrics").await.body;
    sample(&m, "kafka_server_brokertopicmetrics_bytesout_total", r#"topic="near""#).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn consumers_read_from_a_replica_in_their_rack() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = Etcd::start(3) else { return };
    let racks = [
        "--broker-rack",
        "rack-{node}",
        "--override",
        "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector",
    ];
    let (mut c, _) = ready_with(&etcd, "follower-fetch", 3, &racks).await;
    let mut w = Wire::connect(c.addr(1)).await;
    create_replicated_topic(&mut w, "near", 1, 3, &[]).await;
    let told = until_told(&c, &[1, 2, 3], "near", |v| {
        v.as_ref().is_some_and(|ps| ps[&0].isr.len() == 3)
    })
    .await
    .unwrap();
    let (leader, epoch) = (told[&0].leader, told[&0].epoch);
    let near = (1..=3).find(|n| *n != leader).unwrap();
    let far = (1..=3).find(|n| *n != leader && *n != near).unwrap();
    for node in 1..=3 {
        until_local(&c, node, "near", &[0]).await;
    }
    let producer = idempotent_producer(&bootstrap(&c, &[1, 2, 3]));
    let mut acked = Acked::new();
    produce_acked(&producer, "near", 1, 0, RECORDS, &mut acked).await;
    let end = RECORDS as i64;

    // The leader sends a consumer of another rack to the follower there, with
    // no records; one without a rack, or of the leader's rack, reads here.
    let near_rack = format!("rack-{near}");
    let (code, bytes, hw, preferred) = fetch(&c, leader, 11, &near_rack, 0, epoch).await;
    assert_eq!((code, bytes, hw, preferred), (0, 0, end, near));
    let (code, bytes, _, preferred) = fetch(&c, leader, 11, "", 0, epoch).await;
    assert_eq!((code, preferred), (0, -1));
    assert!(bytes > 0);
    let (_, _, _, preferred) = fetch(&c, leader, 11, &format!("rack-{leader}"), 0, epoch).await;
    assert_eq!(preferred, -1);
    // A rack without a broker: the leader.
    assert_eq!(fetch(&c, leader, 11, "rack-9", 0, epoch).await.3, -1);
    // A broker id that holds no replica reads nothing past the high
    // watermark, nor counts as a follower: NOT_LEADER_OR_FOLLOWER (Kafka too).
    assert_eq!(fetch_as(&c, leader, 99, 11, "", 0, epoch).await.0, 6);

    // The follower serves consumers (v11+) below its high watermark, which
    // reaches the leader's with its next fetch.
    let started = Instant::now();
    while fetch(&c, near, 11, &near_rack, 0, epoch).await.2 < end {
        assert!(started.elapsed() < LONG, "the follower's high watermark stayed behind");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, bytes, _, preferred) = fetch(&c, near, 11, &near_rack, 0, epoch).await;
    assert_eq!((code, preferred), (0, -1));
    assert!(bytes > 0);
    // At its high watermark: nothing yet. Past its log end: out of range.
    assert_eq!(fetch(&c, near, 11, &near_rack, end, epoch).await.0, 0);
    assert_eq!(fetch(&c, near, 11, &near_rack, end + 1000, epoch).await.0, 1);
    // Leader epochs are checked as the leader would (−1: none to check).
    assert_eq!(fetch(&c, near, 11, &near_rack, 0, -1).await.0, 0);
    assert_eq!(fetch(&c, near, 11, &near_rack, 0, epoch + 1).await.0, 75);
    // Before v11 consumers read from leaders only.
    assert_eq!(fetch(&c, near, 10, "", 0, epoch).await.0, 6);

    // KIP-951: NOT_LEADER_OR_FOLLOWER names the leader, its epoch and where
    // to reach it (Produce v10, Fetch v16).
    let leader_at = c.addr(leader);
    let mut w = Wire::connect(c.addr(near)).await;
    let records = batch(1, -1, 0, 0);
    let r = w.call(10, &produce_request("near", 0, records, -1)).await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 6);
    assert_eq!(
        (p.current_leader.leader_id.0, p.current_leader.leader_epoch),
        (leader, epoch)
    );
    let endpoints: Vec<_> = r
        .node_endpoints
        .iter()
        .map(|e| {
            (
                e.node_id.0,
                format!("{}:{}", e.host, e.port),
                e.rack.as_ref().map(|r| r.to_string()),
            )
        })
        .collect();
    assert_eq!(
        endpoints,
        [(leader, leader_at.to_string(), Some(format!("rack-{leader}")))]
    );
    let id = w.call(12, &metadata_request(&["near"])).await.topics[0].topic_id;
    let mut request = fetch_request("near", id, 0, 0);
    request.replica_state.replica_id = kafka_protocol::messages::BrokerId(99);
    let r = Wire::connect(leader_at).await.call(16, &request).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!((p.error_code, p.current_leader.leader_id.0), (6, leader));
    assert_eq!(r.node_endpoints.len(), 1);
    // Before Produce v10 there is no such field: the answer is plain.
    let r = w.call(9, &produce_request("near", 0, batch(1, -1, 0, 0), -1)).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 6);

    // librdkafka with client.rack reads everything from the follower in its
    // rack: the follower's bytes out grow, the leader's and the third's do not.
    let before: Vec<f64> = futures_util::future::join_all([leader, near, far].map(|n| bytes_out(&c, n))).await;
    let bs = bootstrap(&c, &[1, 2, 3]);
    let rack = near_rack.clone();
    let read = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bs)
            .set("group.id", "near-readers")
            .set("client.rack", &rack)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("near", 0, Offset::Beginning).unwrap();
        consumer.assign(&tpl).unwrap();
        let mut read = Vec::new();
        let started = Instant::now();
        while read.len() < RECORDS && started.elapsed() < LONG {
            if let Some(m) = consumer.poll(Duration::from_millis(200)) {
                let m = m.expect("consumed");
                read.push(common::Consumed::of(&m));
            }
        }
        read
    })
    .await
    .unwrap();
    check(&acked, read);
    let after: Vec<f64> = futures_util::future::join_all([leader, near, far].map(|n| bytes_out(&c, n))).await;
    assert_eq!(after[0], before[0], "the leader sent the consumer records");
    assert!(after[1] > before[1], "the follower in the consumer's rack sent nothing");
    assert_eq!(after[2], before[2], "the third replica sent the consumer records");
    c.terminate_all();
}
