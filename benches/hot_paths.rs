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

criterion_group!(
    benches,
    frame_decode,
    batch_header,
    index_lookup,
    segment_append,
    metrics_per_request
);
criterion_main!(benches);
