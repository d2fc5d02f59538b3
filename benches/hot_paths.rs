//! Micro-benchmarks of what every produce and fetch goes through:
//! frame decode (size prefix, request header, Produce body with its records left
//! as bytes), record-batch header parse with the CRC-32C check, offset-index
//! lookup, and segment append (into the page cache). `cargo bench` runs them;
//! `cargo test --all-targets` runs each once as a smoke test.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use strom::log::offset_index::OffsetIndex;
use strom::log::segment::ActiveSegment;
use strom::protocol::{frame, header};
use strom::record::batch::{self, BatchHeader};
use strom::record::records::{self, NewRecord};

/// A batch of `n` records with 1 KiB values, as a client would send it.
fn batch(n: usize) -> Vec<u8> {
    let value = Bytes::from(vec![b'x'; 1024]);
    let recs: Vec<NewRecord> = (0..n)
        .map(|i| NewRecord {
            key: None,
            value: Some(value.clone()),
            timestamp: 1_700_000_000_000 + i as i64,
            headers: Vec::new(),
        })
        .collect();
    records::build_batch(&recs, None)
}

/// A size-prefixed Produce v9 request carrying `batch` for one partition.
fn produce_frame(batch: &[u8]) -> Bytes {
    let version = 9;
    let mut partition = PartitionProduceData::default();
    partition.index = 0;
    partition.records = Some(Bytes::copy_from_slice(batch));
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_static_str("orders"));
    topic.partition_data.push(partition);
    let mut request = ProduceRequest::default();
    request.acks = 1;
    request.timeout_ms = 30_000;
    request.topic_data.push(topic);
    let mut h = RequestHeader::default();
    h.request_api_key = ApiKey::Produce as i16;
    h.request_api_version = version;
    h.correlation_id = 7;
    h.client_id = Some(StrBytes::from_static_str("bench"));
    let mut body = BytesMut::new();
    h.encode(&mut body, ApiKey::Produce.request_header_version(version))
        .unwrap();
    request.encode(&mut body, version).unwrap();
    let mut out = BytesMut::new();
    out.put_i32(body.len() as i32);
    out.extend_from_slice(&body);
    out.freeze()
}

fn frame_decode(c: &mut Criterion) {
    let wire = produce_frame(&batch(16));
    let mut g = c.benchmark_group("frame_decode");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("produce_v9_16KiB", |b| {
        b.iter_batched(
            || BytesMut::from(&wire[..]),
            |mut buf| {
                let f = frame::parse_frame(&mut buf, 100 << 20).unwrap().unwrap();
                let request = header::parse_request(f).unwrap();
                let mut body = request.body;
                black_box(ProduceRequest::decode(&mut body, request.api_version).unwrap())
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn batch_header(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_header_crc");
    for n in [1usize, 16, 256] {
        let b = batch(n);
        g.throughput(Throughput::Bytes(b.len() as u64));
        g.bench_function(format!("{n}x1KiB"), |bench| {
            bench.iter(|| {
                let h = batch::next_batch(black_box(&b)).unwrap().unwrap();
                batch::validate_batch(&b, &h).unwrap();
                black_box(h)
            })
        });
    }
    g.finish();
}

fn index_lookup(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let entries = 100_000i64;
    let mut index = OffsetIndex::create(&dir.path().join("0.index"), 0).unwrap();
    for i in 0..entries {
        index.append(i * 16, (i * 16 * 1100) as u32);
    }
    let mut g = c.benchmark_group("offset_index");
    let mut x = 12345u64;
    g.bench_function("lookup_100k_entries", |b| {
        b.iter(|| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let offset = ((x >> 33) % (entries as u64 * 16)) as i64;
            black_box(index.lookup(black_box(offset)))
        })
    });
    g.finish();
}

fn segment_append(c: &mut Criterion) {
    let mut b16 = batch(16);
    let header = BatchHeader::parse(&b16).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("segment_append");
    g.throughput(Throughput::Bytes(b16.len() as u64));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("16x1KiB", |b| {
        // A fresh segment per measurement, so the file does not grow without bound.
        b.iter_custom(|iters| {
            let mut seg = ActiveSegment::create(dir.path(), 0).unwrap();
            let start = Instant::now();
            for i in 0..iters {
                let base = i as i64 * 16;
                batch::assign_offsets(&mut b16, base, 0);
                let h = BatchHeader {
                    base_offset: base,
                    ..header
                };
                let (head, rest) = b16.split_at(batch::BATCH_HEADER_LEN);
                seg.append(head.try_into().unwrap(), rest, &h, 4096, 0).unwrap();
            }
            let elapsed = start.elapsed();
            drop(seg);
            elapsed
        })
    });
    g.finish();
}

/// What the metrics add to one produce request of one partition: the topic's
/// counters, the response's error codes, the latency histogram (the work of
/// `handlers/observe.rs` and `Metrics::produced` with metrics on).
fn metrics_per_request(c: &mut Criterion) {
    use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
    use kafka_protocol::messages::ProduceResponse;
    use strom::metrics::{Metrics, PartitionTraffic};
    let metrics = Metrics::new(&strom::config::observe::ObserveConfig::default());
    let mut response = ProduceResponse::default();
    let mut topic = TopicProduceResponse::default();
    topic.name = TopicName(StrBytes::from_static_str("orders"));
    topic.partition_responses.push(PartitionProduceResponse::default());
    response.responses.push(topic);
    let mut g = c.benchmark_group("metrics");
    g.bench_function("produce_request_1_partition", |b| {
        b.iter(|| {
            metrics.produced(PartitionTraffic {
                topic: black_box("orders"),
                bytes: 16 * 1024,
                records: 16,
                failed: false,
                known: true,
            });
            let mut codes = Vec::new();
            strom::trace::describe::error_codes(black_box(&response), &mut codes);
            metrics.request_done("Produce", 9, black_box(0.000_2), &codes);
        })
    });
    g.finish();
}

/// A stable KIP-848 group of `members` members on one topic of `partitions`
/// partitions, every member reconciled.
fn stable_group(
    members: usize,
    partitions: i32,
) -> (
    strom::group::consumer::group::ConsumerGroup,
    strom::group::consumer::ConsumerConfig,
    strom::group::consumer::topics::TopicsView,
) {
    use strom::group::consumer::group::{ConsumerGroup, HeartbeatArgs};
    let config = strom::group::consumer::ConsumerConfig::default();
    let topics = strom::group::consumer::topics::TopicsView::new([(
        "orders".to_string(),
        uuid::Uuid::from_bytes([1; 16]),
        partitions,
        false,
    )]);
    let mut g = ConsumerGroup::new("bench");
    let mut out = Vec::new();
    let ids: Vec<String> = (0..members).map(|i| format!("member-{i:05}")).collect();
    for id in &ids {
        let join = HeartbeatArgs {
            member_id: id.clone(),
            rebalance_timeout_ms: 300_000,
            subscribed_topic_names: Some(vec!["orders".to_string()]),
            owned: Some(Default::default()),
            ..Default::default()
        };
        g.heartbeat(join, &config, &topics, 0, &mut out).unwrap();
    }
    // Heartbeats that confirm what each member has, until all are stable.
    for _ in 0..4 {
        for id in &ids {
            let m = &g.members[id];
            let beat = HeartbeatArgs {
                member_id: id.clone(),
                member_epoch: m.rec.epoch,
                rebalance_timeout_ms: -1,
                owned: Some(m.rec.assigned.clone()),
                ..Default::default()
            };
            g.heartbeat(beat, &config, &topics, 0, &mut out).unwrap();
        }
    }
    (g, config, topics)
}

/// What the broker does per ConsumerGroupHeartbeat in a large group: a steady
/// heartbeat (nothing changes), and a member joining (a new target assignment
/// for everyone, computed by the uniform assignor).
fn consumer_group_heartbeat(c: &mut Criterion) {
    use strom::group::consumer::group::HeartbeatArgs;
    let mut g = c.benchmark_group("consumer_group");
    for (members, partitions) in [(10, 100), (100, 1_000), (300, 2_000)] {
        let (group, config, topics) = stable_group(members, partitions);
        g.bench_function(format!("steady_heartbeat_{members}m_{partitions}p"), |b| {
            let mut group = group.clone();
            let epoch = group.members["member-00000"].rec.epoch;
            let mut out = Vec::new();
            b.iter(|| {
                let beat = HeartbeatArgs {
                    member_id: "member-00000".to_string(),
                    member_epoch: epoch,
                    rebalance_timeout_ms: -1,
                    ..Default::default()
                };
                out.clear();
                black_box(group.heartbeat(beat, &config, &topics, 1, &mut out).unwrap());
            })
        });
        g.bench_function(format!("join_{members}m_{partitions}p"), |b| {
            b.iter_batched(
                || group.clone(),
                |mut group| {
                    let join = HeartbeatArgs {
                        member_id: "newcomer".to_string(),
                        rebalance_timeout_ms: 300_000,
                        subscribed_topic_names: Some(vec!["orders".to_string()]),
                        owned: Some(Default::default()),
                        ..Default::default()
                    };
                    let mut out = Vec::new();
                    black_box(group.heartbeat(join, &config, &topics, 1, &mut out).unwrap());
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    frame_decode,
    batch_header,
    index_lookup,
    segment_append,
    metrics_per_request,
    consumer_group_heartbeat
);
criterion_main!(benches);
