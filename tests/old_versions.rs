//! The request versions Kafka 4 dropped and Kafka 3.9 served (KIP-896), sent as
//! the old clients send them: bytes built by hand here, field by field from the
//! protocol's old schemas, never through the codec the broker itself uses.

mod common;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::wire::{self, Wire};
use common::*;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use strom::record::batch::next_batch;
use strom::record::records::{records, NewRecord};

/// Send one request of `key` at `version` with `body`; the response body (after
/// its v0 header, checked).
async fn call(w: &mut Wire, key: ApiKey, version: i16, body: &[u8]) -> Bytes {
    let (header, correlation) = w.header(key, version);
    let mut frame = BytesMut::new();
    frame.put_i16(header.request_api_key);
    frame.put_i16(version);
    frame.put_i32(correlation);
    put_str(&mut frame, Some("old-client"));
    frame.put_slice(body);
    w.send_frame(&frame).await;
    let mut response = w.read_frame().await.expect("a response");
    assert_eq!(response.get_i32(), correlation);
    response
}

fn put_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => {
            b.put_i16(s.len() as i16);
            b.put_slice(s.as_bytes());
        }
        None => b.put_i16(-1),
    }
}

fn get_str(b: &mut Bytes) -> Option<String> {
    let n = b.get_i16();
    (n >= 0).then(|| String::from_utf8(b.split_to(n as usize).to_vec()).unwrap())
}

fn crc32(b: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(b);
    c.sum()
}

/// A v0/v1 message, as sarama and the pre-0.11 Java client encode it.
fn message(out: &mut BytesMut, magic: i8, attributes: i8, timestamp: i64, key: Option<&[u8]>, value: &[u8]) {
    let mut m = BytesMut::new();
    m.put_i8(magic);
    m.put_i8(attributes);
    if magic == 1 {
        m.put_i64(timestamp);
    }
    match key {
        Some(k) => {
            m.put_i32(k.len() as i32);
            m.put_slice(k);
        }
        None => m.put_i32(-1),
    }
    m.put_i32(value.len() as i32);
    m.put_slice(value);
    out.put_i64(0);
    out.put_i32(4 + m.len() as i32);
    out.put_u32(crc32(&m));
    out.put_slice(&m);
}

/// A message set of `n` messages `key-i` → `value-i` of `magic`.
fn message_set(magic: i8, n: usize, timestamp: i64) -> BytesMut {
    let mut set = BytesMut::new();
    for i in 0..n {
        let (k, v) = (format!("key-{i}"), format!("value-{i}"));
        message(
            &mut set,
            magic,
            0,
            timestamp + i as i64,
            Some(k.as_bytes()),
            v.as_bytes(),
        );
    }
    set
}

/// The same set gzipped inside one wrapper message (how old clients compress).
fn gzipped(magic: i8, set: &[u8], timestamp: i64) -> BytesMut {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(set).unwrap();
    let mut out = BytesMut::new();
    message(&mut out, magic, 1, timestamp, None, &e.finish().unwrap());
    out
}

/// Produce v0–2 body: acks, timeout, [topic [partition, message_set]].
fn produce_body(topic: &str, set: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i16(-1);
    b.put_i32(5000);
    b.put_i32(1);
    put_str(&mut b, Some(topic));
    b.put_i32(1);
    b.put_i32(0);
    b.put_i32(set.len() as i32);
    b.put_slice(set);
    b
}

/// (error_code, base_offset) of a one-partition Produce v0–2 response.
fn produce_result(mut r: Bytes, version: i16) -> (i16, i64) {
    assert_eq!(r.get_i32(), 1);
    get_str(&mut r);
    assert_eq!(r.get_i32(), 1);
    assert_eq!(r.get_i32(), 0);
    let (error, offset) = (r.get_i16(), r.get_i64());
    if version >= 2 {
        r.advance(8); // log_append_time
    }
    if version >= 1 {
        r.advance(4); // throttle_time_ms
    }
    assert!(r.is_empty(), "v{version}: trailing bytes");
    (error, offset)
}

/// Fetch v0–3 of partition 0 from `offset`: (error, high watermark, message set).
async fn fetch_old(w: &mut Wire, version: i16, topic: &str, offset: i64) -> (i16, i64, Bytes) {
    let mut b = BytesMut::new();
    b.put_i32(-1); // replica_id
    b.put_i32(100); // max_wait_ms
    b.put_i32(1); // min_bytes
    if version == 3 {
        b.put_i32(1 << 20);
    }
    b.put_i32(1);
    put_str(&mut b, Some(topic));
    b.put_i32(1);
    b.put_i32(0);
    b.put_i64(offset);
    b.put_i32(1 << 20);
    let mut r = call(w, ApiKey::Fetch, version, &b).await;
    if version >= 1 {
        r.advance(4);
    }
    assert_eq!(r.get_i32(), 1);
    get_str(&mut r);
    assert_eq!(r.get_i32(), 1);
    assert_eq!(r.get_i32(), 0);
    let (error, hw) = (r.get_i16(), r.get_i64());
    let n = r.get_i32();
    let set = r.split_to(n.max(0) as usize);
    assert!(r.is_empty(), "v{version}: trailing bytes");
    (error, hw, set)
}

/// The messages of a message set: (offset, magic, timestamp, key, value).
fn parse_set(mut set: Bytes) -> Vec<(i64, i8, i64, Option<Bytes>, Bytes)> {
    let mut out = Vec::new();
    while set.has_remaining() {
        let offset = set.get_i64();
        let size = set.get_i32() as usize;
        let mut m = set.split_to(size);
        let crc = m.get_u32();
        assert_eq!(crc, crc32(&m), "CRC of offset {offset}");
        let magic = m.get_i8();
        let attributes = m.get_i8();
        assert_eq!(attributes & 7, 0, "uncompressed");
        let timestamp = if magic == 1 { m.get_i64() } else { -1 };
        let k = m.get_i32();
        let key = (k >= 0).then(|| m.split_to(k as usize));
        let v = m.get_i32();
        let value = m.split_to(v as usize);
        out.push((offset, magic, timestamp, key, value));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_produces_are_read_back_by_a_v2_fetcher() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let id = wire::create_topic(&mut w, "old", 1, &[]).await;
    let ts = strom::util::clock::now_ms();
    let sets = [
        (0, message_set(0, 3, ts)),
        (1, message_set(1, 3, ts)),
        (2, gzipped(1, &message_set(1, 3, ts), ts)),
        (2, gzipped(0, &message_set(0, 3, ts), ts)),
    ];
    for (i, (version, set)) in sets.iter().enumerate() {
        let r = call(&mut w, ApiKey::Produce, *version, &produce_body("old", set)).await;
        assert_eq!(produce_result(r, *version), (0, 3 * i as i64), "produce v{version}");
    }
    // A v12 fetcher reads v2 batches: one per produce, the records as sent.
    let f = w.call(12, &wire::fetch_request("old", id, 0, 100)).await;
    let data = f.responses[0].partitions[0].records.clone().unwrap();
    let mut at = 0;
    let mut batches = 0;
    while let Some(h) = next_batch(&data[at..]).unwrap() {
        let batch = data.slice(at..at + h.total_size());
        let rs = records(&batch, &h).unwrap();
        assert_eq!(rs.len(), 3);
        for (i, r) in rs.iter().enumerate() {
            assert_eq!(r.key.as_deref(), Some(format!("key-{i}").as_bytes()));
            assert_eq!(r.value.as_deref(), Some(format!("value-{i}").as_bytes()));
            let timestamp = h.base_timestamp + r.timestamp_delta;
            let v0_message = batches == 0 || batches == 3;
            assert_eq!(
                timestamp,
                if v0_message { -1 } else { ts + i as i64 },
                "batch {batches}"
            );
        }
        // Compressed sets stay compressed (gzip).
        assert_eq!(h.attributes & 7, if batches >= 2 { 1 } else { 0 }, "batch {batches}");
        at += h.total_size();
        batches += 1;
    }
    assert_eq!(batches, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_batches_are_read_by_old_fetchers_as_message_sets() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    wire::create_topic(&mut w, "new", 1, &[]).await;
    let ts = strom::util::clock::now_ms();
    // Two gzip batches of 5 from librdkafka-style clients (offsets 0–9).
    for _ in 0..2 {
        let records: Vec<NewRecord> = (0..5)
            .map(|i| NewRecord {
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("v{i}"))),
                timestamp: ts + i,
                headers: Vec::new(),
            })
            .collect();
        let batch = strom::record::records::build_compressed_batch(&records, None, 1).unwrap();
        assert_eq!(wire::produce(&mut w, "new", 0, Bytes::from(batch)).await.0, 0);
    }
    for version in 0..=3 {
        let magic = if version < 2 { 0 } else { 1 };
        // From offset 3: the first batch's records before it are left out.
        let (error, hw, set) = fetch_old(&mut w, version, "new", 3).await;
        assert_eq!((error, hw), (0, 10), "fetch v{version}");
        let messages = parse_set(set);
        let offsets: Vec<i64> = messages.iter().map(|m| m.0).collect();
        assert_eq!(offsets, (3..10).collect::<Vec<_>>(), "fetch v{version}");
        for (offset, m_magic, timestamp, key, value) in messages {
            let i = offset % 5;
            assert_eq!(m_magic, magic);
            assert_eq!(timestamp, if magic == 1 { ts + i } else { -1 });
            assert_eq!(key.as_deref(), Some(format!("k{i}").as_bytes()));
            assert_eq!(value, format!("v{i}").as_bytes());
        }
    }
    // Out of range: the error, no data.
    let (error, _, set) = fetch_old(&mut w, 0, "new", 99).await;
    assert_eq!((error, set.len()), (1, 0), "OFFSET_OUT_OF_RANGE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_v0_answers_old_style_offsets() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    wire::create_topic(&mut w, "lo", 1, &[]).await;
    wire::produce(&mut w, "lo", 0, wire::batch(4, -1, 0, strom::util::clock::now_ms())).await;
    for (timestamp, expected) in [(-1i64, 4i64), (-2, 0)] {
        let mut b = BytesMut::new();
        b.put_i32(-1);
        b.put_i32(1);
        put_str(&mut b, Some("lo"));
        b.put_i32(1);
        b.put_i32(0);
        b.put_i64(timestamp);
        b.put_i32(1); // max_num_offsets
        let mut r = call(&mut w, ApiKey::ListOffsets, 0, &b).await;
        assert_eq!(r.get_i32(), 1);
        assert_eq!(get_str(&mut r).as_deref(), Some("lo"));
        assert_eq!(r.get_i32(), 1);
        assert_eq!((r.get_i32(), r.get_i16()), (0, 0));
        assert_eq!(r.get_i32(), 1, "one offset");
        assert_eq!(r.get_i64(), expected);
        assert!(r.is_empty());
    }
}

/// OffsetCommit v0/v1 body for one partition of `topic`.
fn commit_body(version: i16, group: &str, topic: &str, offset: i64) -> BytesMut {
    let mut b = BytesMut::new();
    put_str(&mut b, Some(group));
    if version == 1 {
        b.put_i32(-1); // generation: a commit outside any generation
        put_str(&mut b, Some(""));
    }
    b.put_i32(1);
    put_str(&mut b, Some(topic));
    b.put_i32(1);
    b.put_i32(0);
    b.put_i64(offset);
    if version == 1 {
        b.put_i64(-1); // commit_timestamp
    }
    put_str(&mut b, Some("meta"));
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_commit_v0_v1_and_offset_fetch_v0_round_trip() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    wire::create_topic(&mut w, "oc", 1, &[]).await;
    for (version, offset) in [(0, 5i64), (1, 7)] {
        let mut r = call(
            &mut w,
            ApiKey::OffsetCommit,
            version,
            &commit_body(version, "old-group", "oc", offset),
        )
        .await;
        assert_eq!(r.get_i32(), 1);
        get_str(&mut r);
        assert_eq!(r.get_i32(), 1);
        assert_eq!((r.get_i32(), r.get_i16()), (0, 0), "commit v{version}");
        assert!(r.is_empty());
        // OffsetFetch v0: group, [topic [partition]].
        let mut b = BytesMut::new();
        put_str(&mut b, Some("old-group"));
        b.put_i32(1);
        put_str(&mut b, Some("oc"));
        b.put_i32(1);
        b.put_i32(0);
        let mut r = call(&mut w, ApiKey::OffsetFetch, 0, &b).await;
        assert_eq!(r.get_i32(), 1);
        get_str(&mut r);
        assert_eq!(r.get_i32(), 1);
        assert_eq!(r.get_i32(), 0);
        assert_eq!(r.get_i64(), offset);
        assert_eq!(get_str(&mut r).as_deref(), Some("meta"));
        assert_eq!(r.get_i16(), 0);
        assert!(r.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_admin_versions_create_describe_and_delete_topics() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    // CreateTopics v0 and v1: [name, partitions, replication, [assignment], [config]], timeout (, validate_only).
    for (version, name) in [(0, "ct0"), (1, "ct1")] {
        let mut b = BytesMut::new();
        b.put_i32(1);
        put_str(&mut b, Some(name));
        b.put_i32(2);
        b.put_i16(1);
        b.put_i32(0);
        b.put_i32(1);
        put_str(&mut b, Some("retention.ms"));
        put_str(&mut b, Some("12345"));
        b.put_i32(10_000);
        if version == 1 {
            b.put_i8(0);
        }
        let mut r = call(&mut w, ApiKey::CreateTopics, version, &b).await;
        assert_eq!(r.get_i32(), 1);
        assert_eq!(get_str(&mut r).as_deref(), Some(name));
        assert_eq!(r.get_i16(), 0, "CreateTopics v{version}");
        if version == 1 {
            assert_eq!(get_str(&mut r), None, "error_message");
        }
        assert!(r.is_empty());
    }
    // DescribeConfigs v0: [type, name, [config names]] → configs with is_default.
    let mut b = BytesMut::new();
    b.put_i32(1);
    b.put_i8(2);
    put_str(&mut b, Some("ct0"));
    b.put_i32(2);
    put_str(&mut b, Some("retention.ms"));
    put_str(&mut b, Some("segment.bytes"));
    let mut r = call(&mut w, ApiKey::DescribeConfigs, 0, &b).await;
    r.advance(4); // throttle
    assert_eq!(r.get_i32(), 1);
    assert_eq!(r.get_i16(), 0);
    get_str(&mut r);
    assert_eq!(r.get_i8(), 2);
    assert_eq!(get_str(&mut r).as_deref(), Some("ct0"));
    assert_eq!(r.get_i32(), 2);
    let mut seen = Vec::new();
    for _ in 0..2 {
        let name = get_str(&mut r).unwrap();
        let value = get_str(&mut r);
        let (_read_only, is_default, _sensitive) = (r.get_i8(), r.get_i8(), r.get_i8());
        seen.push((name, value, is_default));
    }
    assert!(r.is_empty());
    seen.sort();
    assert_eq!(seen[0], ("retention.ms".into(), Some("12345".into()), 0));
    assert_eq!(seen[1].0, "segment.bytes");
    assert_eq!(seen[1].2, 1, "segment.bytes is the default");
    // DeleteTopics v0: [names], timeout → [name, error].
    let mut b = BytesMut::new();
    b.put_i32(2);
    put_str(&mut b, Some("ct0"));
    put_str(&mut b, Some("ct1"));
    b.put_i32(10_000);
    let mut r = call(&mut w, ApiKey::DeleteTopics, 0, &b).await;
    assert_eq!(r.get_i32(), 2);
    for _ in 0..2 {
        get_str(&mut r);
        assert_eq!(r.get_i16(), 0);
    }
    assert!(r.is_empty());
    // DescribeLogDirs v0, all topics: the one log dir, no error.
    let mut b = BytesMut::new();
    b.put_i32(-1);
    let mut r = call(&mut w, ApiKey::DescribeLogDirs, 0, &b).await;
    r.advance(4);
    assert_eq!(r.get_i32(), 1);
    assert_eq!(r.get_i16(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_advertises_kafka_3_9s_lowest_versions() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let r = w.call(3, &ApiVersionsRequest::default()).await;
    let min = |key: ApiKey| r.api_keys.iter().find(|k| k.api_key == key as i16).unwrap().min_version;
    for key in [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::DescribeConfigs,
        ApiKey::DescribeLogDirs,
    ] {
        assert_eq!(min(key), 0, "{key:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_old_requests_close_only_their_connection() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    // ListOffsets v0 declaring a billion topics, with four bytes of them.
    let mut b = BytesMut::new();
    b.put_i32(-1);
    b.put_i32(1 << 30);
    b.put_i32(0);
    let (header, correlation) = w.header(ApiKey::ListOffsets, 0);
    let mut frame = BytesMut::new();
    frame.put_i16(header.request_api_key);
    frame.put_i16(0);
    frame.put_i32(correlation);
    put_str(&mut frame, None);
    frame.put_slice(&b);
    w.send_frame(&frame).await;
    assert!(w.read_frame().await.is_none(), "closed");
    // A corrupt message set in Produce v0 is a per-partition error.
    let mut other = Wire::connect(broker.addr()).await;
    wire::create_topic(&mut other, "c", 1, &[]).await;
    let mut set = message_set(0, 2, 0);
    let last = set.len() - 1;
    set[last] ^= 0xff;
    let r = call(&mut other, ApiKey::Produce, 0, &produce_body("c", &set)).await;
    assert_eq!(produce_result(r, 0).0, 2, "CORRUPT_MESSAGE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_without_timestamps_are_kept_for_the_retention_time() {
    // v0 messages carry no timestamp (−1): retention goes by the segment file's
    // modification time, as Kafka's does, not by −1 (which is always "expired").
    let broker = TestBroker::start_with(|c| c.retention_check_interval_ms = 50).await;
    let mut w = Wire::connect(broker.addr()).await;
    wire::create_topic(&mut w, "untimed", 1, &[("segment.bytes", "200")]).await;
    for _ in 0..5 {
        let r = call(
            &mut w,
            ApiKey::Produce,
            0,
            &produce_body("untimed", &message_set(0, 3, 0)),
        )
        .await;
        assert_eq!(produce_result(r, 0).0, 0);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        wire::list_offset(&mut w, "untimed", 0, -2).await,
        (0, 0),
        "nothing deleted"
    );
    // With a retention shorter than the files' age, they go.
    let (code, _) = wire::incremental_alter(&mut w, 2, "untimed", &[("retention.ms", 0, Some("100"))]).await;
    assert_eq!(code, 0);
    let mut start = 0;
    for _ in 0..50 {
        start = wire::list_offset(&mut w, "untimed", 0, -2).await.1;
        if start == 15 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(start, 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_conversion_is_bounded_by_what_the_fetcher_asked_for() {
    // Three gzip batches of one 5 MB record of zeros: a few kilobytes each on
    // disk, 15 MB converted. A v0 fetcher asking for 1 MB gets the first message
    // only (one message at least, as Kafka), then the next on its next fetch.
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    wire::create_topic(&mut w, "zeros", 1, &[]).await;
    for _ in 0..3 {
        let record = NewRecord {
            key: None,
            value: Some(Bytes::from(vec![0u8; 5 << 20])),
            timestamp: strom::util::clock::now_ms(),
            headers: Vec::new(),
        };
        let batch = strom::record::records::build_compressed_batch(&[record], None, 1).unwrap();
        assert!(batch.len() < 64 << 10);
        assert_eq!(wire::produce(&mut w, "zeros", 0, Bytes::from(batch)).await.0, 0);
    }
    for offset in 0..3 {
        let (error, _, set) = fetch_old(&mut w, 0, "zeros", offset).await;
        assert_eq!(error, 0);
        let messages = parse_set(set);
        assert_eq!(messages.len(), 1, "offset {offset}");
        assert_eq!(messages[0].0, offset);
        assert_eq!(messages[0].4.len(), 5 << 20);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_without_down_conversion_refuses_old_fetchers() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    wire::create_topic(&mut w, "v2-only", 1, &[("message.downconversion.enable", "false")]).await;
    wire::produce(
        &mut w,
        "v2-only",
        0,
        wire::batch(2, -1, 0, strom::util::clock::now_ms()),
    )
    .await;
    let (error, _, set) = fetch_old(&mut w, 2, "v2-only", 0).await;
    assert_eq!((error, set.len()), (35, 0), "UNSUPPORTED_VERSION");
}
