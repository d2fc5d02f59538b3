//! Bad days against the real binary: a full disk, kill -9, damaged files, hostile
//! input. Each test reproduces one way strom once lost or duplicated data, or could
//! be taken down by a client, and asserts the fixed behaviour.

mod common;

use bytes::Bytes;
use common::process::{BrokerProcess, Tmpfs};
use common::wire::*;
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;
use strom::record::batch::{self, BatchHeader};
use strom::record::compression;
use strom::record::records::{build_batch, NewRecord, ProducerIds};
use strom::record::testing;

const KAFKA_STORAGE_ERROR: i16 = 56;

/// One record of `size` bytes, from an idempotent producer when `producer` is set.
fn record_batch(size: usize, producer: Option<(i64, i32)>) -> Bytes {
    let record = NewRecord {
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from(vec![b'x'; size])),
        timestamp: 1_700_000_000_000,
        headers: Vec::new(),
    };
    let ids = producer.map(|(id, first_sequence)| ProducerIds {
        id,
        epoch: 0,
        first_sequence,
    });
    Bytes::from(build_batch(&[record], ids))
}

async fn producer_id(wire: &mut Wire) -> i64 {
    let r = wire.call(4, &idempotent_init()).await;
    assert_eq!(r.error_code, 0);
    r.producer_id.0
}

/// Item 1: a produce that fails on a full disk leaves the log as it was, so retries
/// of an idempotent batch end with exactly one copy once space returns. Two ways to
/// fail: the index write (the data fits in a page the file already has) and the
/// data write itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_neither_duplicates_nor_loses_a_batch() {
    let Some(fs) = Tmpfs::mount("16m") else { return };
    let data = fs.path().join("data");
    let broker = BrokerProcess::spawn(&data, &[]);
    let mut w = Wire::connect(broker.addr()).await;
    create(&mut w, "full", 1).await;
    let pid = producer_id(&mut w).await;
    // 4.2 KB: past log.index.interval.bytes, so the next batch gets an offset index
    // entry, while its bytes still fit in the log file's second page.
    assert_eq!(
        produce(&mut w, "full", 0, record_batch(4200, Some((pid, 0)))).await,
        (0, 0)
    );

    fs.fill();
    let second = record_batch(500, Some((pid, 1)));
    for attempt in 0..6 {
        let (code, base) = produce(&mut w, "full", 0, second.clone()).await;
        assert!(
            (code, base) == (0, 1) || code == KAFKA_STORAGE_ERROR,
            "attempt {attempt}: {code} {base}"
        );
        let leo = list_offset(&mut w, "full", 0, -1).await.1;
        assert_eq!(leo, if code == 0 { 2 } else { 1 }, "attempt {attempt}");
    }
    let leo = list_offset(&mut w, "full", 0, -1).await.1;
    let third = record_batch(64 * 1024, Some((pid, leo as i32)));
    for attempt in 0..6 {
        let (code, _) = produce(&mut w, "full", 0, third.clone()).await;
        assert_eq!(code, KAFKA_STORAGE_ERROR, "attempt {attempt}");
        assert_eq!(list_offset(&mut w, "full", 0, -1).await, (0, leo), "attempt {attempt}");
    }
    let log = broker.log_text();
    assert!(
        log.contains("ERROR") && log.contains("00000000000000000000.log"),
        "the storage error is logged with its file: {log}"
    );

    fs.free();
    assert_eq!(produce(&mut w, "full", 0, third.clone()).await, (0, leo));
    // The same batch again is a duplicate: its original offset, no new copy.
    assert_eq!(produce(&mut w, "full", 0, third).await, (0, leo));
    assert_eq!(list_offset(&mut w, "full", 0, -1).await, (0, leo + 1));
    assert_eq!(leo, 2, "the second batch was taken once it could be");
}

/// Item 1: a broker whose log output cannot be written (its disk is full, here
/// /dev/full) starts, serves produce requests and shuts down on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_log_output_stops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::path::Path::new("/dev/full");
    let mut broker = BrokerProcess::spawn_logging_to(dir.path(), common::process::free_port(), &[], Some(full));
    let mut w = Wire::connect(broker.addr()).await;
    create(&mut w, "quiet", 1).await;
    for i in 0..3 {
        assert_eq!(produce(&mut w, "quiet", 0, record_batch(100, None)).await, (0, i));
    }
    // An error that is logged: a corrupt batch.
    let mut bad = record_batch(100, None).to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(produce(&mut w, "quiet", 0, Bytes::from(bad)).await.0, 2);
    assert!(broker.terminate().success());
}

/// Item 1: kill -9 on a full disk, then a start on that full disk: reads are
/// served, writes refused with KAFKA_STORAGE_ERROR, and accepted again once space
/// returns; a SIGTERM on a full disk still shuts down, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_starts_serves_and_stops_on_a_full_disk() {
    let Some(fs) = Tmpfs::mount("16m") else { return };
    let data = fs.path().join("data");
    let mut broker = BrokerProcess::spawn(&data, &[]);
    let mut w = Wire::connect(broker.addr()).await;
    create(&mut w, "kept", 1).await;
    for i in 0..3 {
        assert_eq!(produce(&mut w, "kept", 0, record_batch(2500, None)).await, (0, i));
    }
    broker.kill9();
    let port = broker.port;
    drop(broker);
    // The crash also took the indexes (as one during a segment roll can): the
    // recovery that rebuilds them finds no space to write them.
    for ext in ["index", "timeindex"] {
        std::fs::remove_file(data.join(format!("kept-0/00000000000000000000.{ext}"))).unwrap();
    }
    fs.fill();

    let mut broker = BrokerProcess::spawn_on(&data, port, &[]);
    let mut w = Wire::connect(broker.addr()).await;
    assert_eq!(list_offset(&mut w, "kept", 0, -1).await, (0, 3));
    let id = create(&mut w, "kept", 1).await;
    let fetched = w.call(12, &fetch_request("kept", id, 0, 0)).await;
    let p = &fetched.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(p.high_watermark, 3);
    assert!(p.records.as_ref().is_some_and(|r| r.len() > 7500));
    let (code, _) = produce(&mut w, "kept", 0, record_batch(64 * 1024, None)).await;
    assert_eq!(code, KAFKA_STORAGE_ERROR);

    // A clean shutdown on the full disk finishes (without its marker, so the next
    // start recovers), and the restart has every record.
    let status = broker.terminate();
    assert!(status.code().is_some(), "exited by itself: {status:?}");
    drop(broker);
    fs.free();
    let broker = BrokerProcess::spawn_on(&data, port, &[]);
    let mut w = Wire::connect(broker.addr()).await;
    assert_eq!(list_offset(&mut w, "kept", 0, -1).await, (0, 3));
    assert_eq!(produce(&mut w, "kept", 0, record_batch(64 * 1024, None)).await, (0, 3));
}

/// `b` with its header edited by `edit` and a valid CRC again: a lie a client
/// could really send.
fn edited(b: &[u8], edit: impl FnOnce(&mut BatchHeader)) -> Bytes {
    let mut h = batch::next_batch(b).unwrap().unwrap();
    edit(&mut h);
    Bytes::from(batch::encode_batch(&h, &b[batch::BATCH_HEADER_LEN..]))
}

fn compressed(codec: Compression, n: usize) -> Vec<u8> {
    testing::numbered_batch(codec, n).unwrap()
}

/// Items 2, 3 and 6: batches whose record count lies, whose codec does not exist,
/// whose payload does not decompress, or that decompress to gigabytes are refused
/// with Kafka's error codes; the log end offset does not move and no segment rolls,
/// and the broker's memory stays small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_and_poisoned_batches_are_refused() {
    const CORRUPT_MESSAGE: i16 = 2;
    const INVALID_RECORD: i16 = 87;
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::spawn(dir.path(), &[]);
    let mut w = Wire::connect(broker.addr()).await;
    create(&mut w, "lies", 1).await;
    assert_eq!(
        produce(&mut w, "lies", 0, Bytes::from(compressed(Compression::None, 3))).await,
        (0, 0)
    );

    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let honest = compressed(codec, 3);
        for claimed in [i32::MAX, 1, 2, 4] {
            let lie = edited(&honest, |h| {
                h.records_count = claimed;
                h.last_offset_delta = claimed - 1;
            });
            let (code, _) = produce(&mut w, "lies", 0, lie).await;
            assert_eq!(code, INVALID_RECORD, "{codec:?} claiming {claimed}");
        }
        if codec != Compression::None {
            let mut garbage = honest.clone();
            let len = garbage.len();
            for b in &mut garbage[batch::BATCH_HEADER_LEN + 4..len] {
                *b = b.wrapping_mul(31).wrapping_add(7);
            }
            let (code, _) = produce(&mut w, "lies", 0, edited(&garbage, |_| {})).await;
            assert!(
                matches!(code, CORRUPT_MESSAGE | INVALID_RECORD),
                "{codec:?} garbage: {code}"
            );
        }
    }
    for codec in 5..=7 {
        let unknown = edited(&compressed(Compression::None, 3), |h| h.attributes = codec);
        assert_eq!(
            produce(&mut w, "lies", 0, unknown).await.0,
            CORRUPT_MESSAGE,
            "codec {codec}"
        );
    }
    assert_eq!(list_offset(&mut w, "lies", 0, -1).await, (0, 3));
    let segments = std::fs::read_dir(dir.path().join("lies-0"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
        .count();
    assert_eq!(segments, 1, "no segment rolled for a refused batch");

    // Compression bombs: 256 MiB of zeros in 250 KB of gzip, 1 GiB in 33 KB of
    // zstd, to a compacted topic (whose keys are checked) and a normal one.
    create_topic(&mut w, "bombs", 1, &[("cleanup.policy", "compact")]).await;
    let bombs = [
        ("bombs", compression::GZIP, 256 << 20),
        ("bombs", compression::ZSTD, 1 << 30),
        ("lies", compression::ZSTD, 1 << 30),
    ];
    for (topic, codec, size) in bombs {
        let (bomb, _) = testing::bomb(codec, size).unwrap();
        assert!(bomb.len() < 1 << 20);
        assert_eq!(
            produce(&mut w, topic, 0, Bytes::from(bomb)).await.0,
            INVALID_RECORD,
            "{topic} {codec}"
        );
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", broker.child.id())).unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    assert!(peak_kb < 256 * 1024, "peak RSS {peak_kb} kB");
    assert_eq!(list_offset(&mut w, "lies", 0, -1).await, (0, 3));
}

/// Item 4: a topic with a 249-character name is deleted for good: DeleteTopics
/// succeeds, re-creating the name starts empty, and a restart does not bring the
/// old topic back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_with_the_longest_names_are_deleted_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let topic = "t".repeat(249);
    let mut broker = BrokerProcess::spawn(dir.path(), &[]);
    let mut w = Wire::connect(broker.addr()).await;
    create(&mut w, &topic, 1).await;
    assert_eq!(produce(&mut w, &topic, 0, record_batch(10, None)).await, (0, 0));
    let mut delete = DeleteTopicsRequest::default();
    delete.topic_names = vec![name(&topic)];
    delete.timeout_ms = 5000;
    let r = w.call(4, &delete).await;
    assert_eq!(r.responses[0].error_code, 0, "{:?}", r.responses[0].error_message);
    create(&mut w, &topic, 1).await;
    assert_eq!(
        list_offset(&mut w, &topic, 0, -1).await,
        (0, 0),
        "the old records are gone"
    );
    let r = w.call(4, &delete).await;
    assert_eq!(r.responses[0].error_code, 0);
    assert!(broker.terminate().success());
    let port = broker.port;
    drop(broker);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("ttt"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let broker = BrokerProcess::spawn_on(dir.path(), port, &["--override", "auto.create.topics.enable=false"]);
    let mut w = Wire::connect(broker.addr()).await;
    let m = w.call(12, &metadata_request(&[&topic])).await;
    assert_eq!(m.topics[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION after a restart");
}

/// Item 7: a request for 2^31−1 partitions is refused up front with Kafka's
/// POLICY_VIOLATION, creating nothing; a large legitimate creation runs without
/// holding up another client's requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_partition_counts_are_refused_and_large_ones_block_nobody() {
    const POLICY_VIOLATION: i16 = 44;
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::spawn(dir.path(), &[]);
    let mut w = Wire::connect(broker.addr()).await;
    let create_request = |topic: &str, partitions: i32| {
        let mut t = create_topics_request::CreatableTopic::default();
        t.name = name(topic);
        t.num_partitions = partitions;
        t.replication_factor = 1;
        let mut r = CreateTopicsRequest::default();
        r.topics = vec![t];
        r.timeout_ms = 60_000;
        r
    };
    let r = w.call(5, &create_request("huge", i32::MAX)).await;
    assert_eq!(r.topics[0].error_code, POLICY_VIOLATION);
    create(&mut w, "small", 1).await;
    let mut grow = CreatePartitionsRequest::default();
    let mut t = create_partitions_request::CreatePartitionsTopic::default();
    t.name = name("small");
    t.count = i32::MAX;
    grow.topics = vec![t];
    grow.timeout_ms = 5000;
    let r = w.call(3, &grow).await;
    assert_eq!(r.results[0].error_code, POLICY_VIOLATION);
    let dirs: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with("__") && !n.contains('.') && !n.contains('_'))
        .collect();
    assert_eq!(dirs, ["small-0"]);

    // 2,000 partitions take a while (a directory and fsyncs each): meanwhile a
    // second client is answered, and the creation finishes after it.
    let correlation = w.send(5, &create_request("large", 2000)).await;
    let mut other = Wire::connect(broker.addr()).await;
    let versions = other.call(3, &ApiVersionsRequest::default()).await;
    assert_eq!(versions.error_code, 0);
    assert_eq!(list_offset(&mut other, "small", 0, -1).await, (0, 0));
    let pending = {
        let mut probe = [0u8; 1];
        matches!(w.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    };
    assert!(
        pending,
        "the creation was still running while the other client was served"
    );
    let r = w.receive::<CreateTopicsRequest>(5, correlation).await;
    assert_eq!(r.topics[0].error_code, 0);
    assert_eq!(r.topics[0].num_partitions, 2000);
}

fn rss_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Item 8: Fetch is bounded: a partition named 30,000 times is served once, the
/// response honours max_bytes across partitions (only the first partition with
/// data may exceed it, by one batch), max_bytes = i32::MAX gives a valid frame
/// within the broker's fetch.max.bytes, and large ranges that clients leave unread
/// are not copied into the broker's memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::spawn(dir.path(), &[]);
    let mut w = Wire::connect(broker.addr()).await;
    let id = create(&mut w, "big", 1).await;
    let big = record_batch(1_000_000, None);
    for i in 0..60 {
        assert_eq!(produce(&mut w, "big", 0, big.clone()).await, (0, i));
    }
    let small = create_topic(&mut w, "two", 2, &[]).await;
    for p in 0..2 {
        assert_eq!(produce(&mut w, "two", p, record_batch(600_000, None)).await, (0, 0));
    }

    // One partition, 30,000 times.
    let mut many = fetch_request("two", small, 0, 0);
    many.topics[0].partitions = (0..30_000).map(|_| many.topics[0].partitions[0].clone()).collect();
    let r = w.call(12, &many).await;
    assert_eq!(r.responses.iter().map(|t| t.partitions.len()).sum::<usize>(), 1);

    // Two partitions with a 600 KB batch each, max_bytes 1 MB: the first gets its
    // batch, the second nothing, as Kafka answers.
    let mut both = fetch_request("two", small, 0, 0);
    let mut second = both.topics[0].partitions[0].clone();
    second.partition = 1;
    both.topics[0].partitions.push(second);
    both.max_bytes = 1_000_000;
    let r = w.call(12, &both).await;
    let sizes: Vec<usize> = r.responses[0]
        .partitions
        .iter()
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .collect();
    assert!(sizes[0] > 600_000 && sizes[1] == 0, "{sizes:?}");

    // Everything at once: the answer is a valid frame capped by fetch.max.bytes.
    let mut all = fetch_request("big", id, 0, 0);
    all.max_bytes = i32::MAX;
    all.topics[0].partitions[0].partition_max_bytes = i32::MAX;
    let r = w.call(12, &all).await;
    let got = r.responses[0].partitions[0].records.as_ref().unwrap().len();
    assert!(got > 50_000_000 && got <= 57_671_680, "{got}");

    // Ten clients ask for ~55 MB each and never read the answer.
    let before = rss_kb(broker.child.id(), "VmRSS:");
    let mut idle = Vec::new();
    for _ in 0..10 {
        let mut c = Wire::connect(broker.addr()).await;
        c.send(12, &all).await;
        idle.push(c);
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let after = rss_kb(broker.child.id(), "VmRSS:");
    assert!(after < before + 100 * 1024, "RSS {before} kB -> {after} kB");
    drop(idle);
}

/// A raw connection from `local` (any 127.x address) to the broker.
async fn connect_from(local: &str, broker: &BrokerProcess) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(broker.addr()).await.unwrap()
}

/// Whether the broker closed `stream` (read gives EOF or a reset) within `wait`.
async fn closed_within(stream: &mut tokio::net::TcpStream, wait: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(wait, stream.read(&mut byte)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

async fn api_versions_ok(stream: tokio::net::TcpStream) -> bool {
    let mut w = Wire::over(stream);
    let c = w.send(3, &ApiVersionsRequest::default()).await;
    let Ok(Some(frame)) = tokio::time::timeout(std::time::Duration::from_secs(10), w.read_frame()).await else {
        return false;
    };
    frame.len() > 4 && i32::from_be_bytes(frame[..4].try_into().unwrap()) == c
}

/// Item 9: idle connections are closed after connections.max.idle.ms, one
/// address cannot take more than max.connections.per.ip (with per-address
/// overrides), and requests being read share queued.max.request.bytes, so
/// half-sent huge requests and a small request that decodes to gigabytes cannot
/// take the broker's memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_request_memory_are_bounded() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::spawn(
        dir.path(),
        &[
            "--override",
            "connections.max.idle.ms=700",
            "--override",
            "max.connections.per.ip=5",
            "--override",
            "max.connections.per.ip.overrides=127.0.0.2:8",
            "--override",
            "queued.max.request.bytes=134217728",
        ],
    );

    // Idle: closed after 0.7 s; a busy connection stays.
    let mut idle = connect_from("127.0.0.1", &broker).await;
    let mut busy = Wire::connect(broker.addr()).await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(busy.call(3, &ApiVersionsRequest::default()).await.error_code, 0);
    }
    assert!(
        closed_within(&mut idle, Duration::from_secs(3)).await,
        "idle connection closed"
    );
    drop(busy);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Per address: 127.0.0.1 gets 5, 127.0.0.2 its override of 8.
    let mut held = Vec::new();
    for _ in 0..5 {
        let s = connect_from("127.0.0.1", &broker).await;
        held.push(s);
    }
    let mut sixth = connect_from("127.0.0.1", &broker).await;
    assert!(
        closed_within(&mut sixth, Duration::from_secs(3)).await,
        "the sixth is refused"
    );
    for _ in 0..8 {
        assert!(api_versions_ok(connect_from("127.0.0.2", &broker).await).await);
    }
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Ten clients each send 30 of a 64 MiB Produce request and stall: two of them
    // hold the whole 128 MiB, the others wait unread; small requests (ApiVersions)
    // need no reservation and are still answered.
    let base = rss_kb(broker.child.id(), "VmRSS:");
    let mut stalled = Vec::new();
    for i in 0..10 {
        let mut s = connect_from(if i < 4 { "127.0.0.1" } else { "127.0.0.2" }, &broker).await;
        stalled.push(tokio::spawn(async move {
            let mut head = Vec::new();
            head.extend_from_slice(&(64i32 << 20).to_be_bytes());
            head.extend_from_slice(&0i16.to_be_bytes()); // Produce
            let _ = s.write_all(&head).await;
            let chunk = vec![0u8; 1 << 20];
            for _ in 0..30 {
                if tokio::time::timeout(Duration::from_secs(5), s.write_all(&chunk))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(s);
        }));
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let peak = rss_kb(broker.child.id(), "VmRSS:");
    assert!(peak < base + 200 * 1024, "RSS {base} kB -> {peak} kB");
    assert!(api_versions_ok(connect_from("127.0.0.2", &broker).await).await);

    for s in stalled {
        s.abort();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Five clients send just the head of a 1 MiB Metadata request (64 MiB to
    // decode) and stall. Two of them get the whole pool; small requests are still
    // answered; a 64 KiB Metadata request waits until the stalled ones are cut
    // off: by connections.max.idle.ms (0.7 s here) when nothing more comes, by
    // their time to send (31 s) when it trickles in.
    let mut heads = Vec::new();
    for _ in 0..5 {
        let mut s = connect_from("127.0.0.3", &broker).await;
        let mut head = (1i32 << 20).to_be_bytes().to_vec();
        head.extend_from_slice(&[0, 3, 0, 4, 0, 0]);
        s.write_all(&head).await.unwrap();
        heads.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(api_versions_ok(connect_from("127.0.0.1", &broker).await).await);
    let mut w = Wire::over(connect_from("127.0.0.1", &broker).await);
    let many: Vec<String> = (0..3000).map(|i| format!("no-such-topic-{i:05}")).collect();
    let names: Vec<&str> = many.iter().map(String::as_str).collect();
    let mut request = metadata_request(&names);
    request.allow_auto_topic_creation = false;
    let answered = tokio::time::timeout(Duration::from_secs(90), w.call(12, &request)).await;
    assert!(
        answered.is_ok_and(|r| r.topics.len() == 3000),
        "a 64 KiB Metadata request is answered"
    );
    for mut s in heads {
        assert!(
            closed_within(&mut s, Duration::from_secs(5)).await,
            "stalled requests are cut off"
        );
    }

    // A 30 MiB Metadata request of empty topic names would decode to gigabytes:
    // its connection is closed before it is read.
    let mut meta = connect_from("127.0.0.2", &broker).await;
    let names = 15 << 20;
    let mut body = Vec::with_capacity(30 << 20);
    body.extend_from_slice(&3i16.to_be_bytes());
    body.extend_from_slice(&4i16.to_be_bytes()); // v4: int32 array of int16 strings
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
    body.extend_from_slice(&(names as i32).to_be_bytes());
    body.resize(body.len() + 2 * names, 0);
    body.push(1); // allow auto-creation
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    let _ = tokio::time::timeout(Duration::from_secs(5), meta.write_all(&frame)).await;
    assert!(closed_within(&mut meta, Duration::from_secs(5)).await);
    let after = rss_kb(broker.child.id(), "VmHWM:");
    assert!(after < base + 400 * 1024, "peak RSS {after} kB");
    assert!(api_versions_ok(connect_from("127.0.0.2", &broker).await).await);
}

/// Start a broker on `dir` with `args`, write `batches` one-record batches of
/// `size` bytes to a new one-partition `topic`, stop it cleanly; its port.
async fn filled_and_stopped(dir: &std::path::Path, args: &[&str], topic: &str, batches: i64, size: usize) -> u16 {
    let mut broker = BrokerProcess::spawn(dir, args);
    let mut w = Wire::connect(broker.addr()).await;
    create(&mut w, topic, 1).await;
    for i in 0..batches {
        assert_eq!(produce(&mut w, topic, 0, record_batch(size, None)).await, (0, i));
    }
    assert!(broker.terminate().success());
    broker.port
}

fn segments_of(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs
}

fn strom_log(args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
        .arg("log")
        .args(args)
        .arg(dir)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string())
}

/// Item 5: damaged files. Deleted indexes are rebuilt; flipped bytes and a broken
/// batch length in a sealed segment are refused with KAFKA_STORAGE_ERROR and
/// logged with file and position, never served or skipped in silence; a deleted
/// segment is reported at start; `strom log check` finds each and `strom log
/// repair --execute` truncates the log to its intact prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_files_are_detected_reported_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("dmg-0");
    let args = ["--override", "log.segment.bytes=12000"];
    let port = filled_and_stopped(dir.path(), &args, "dmg", 12, 5000).await;
    let logs = segments_of(&part);
    assert!(logs.len() >= 4, "{logs:?}");
    assert!(strom_log(&["check"], dir.path()).0, "a healthy log checks out");

    // Indexes deleted: rebuilt at start.
    let index = logs[1].with_extension("index");
    let time_index = logs[1].with_extension("timeindex");
    std::fs::remove_file(&index).unwrap();
    std::fs::remove_file(&time_index).unwrap();
    let (ok, report) = strom_log(&["check"], dir.path());
    assert!(!ok && report.contains("index file missing"), "{report}");
    let broker = BrokerProcess::spawn_on(dir.path(), port, &args);
    assert!(index.exists() && time_index.exists());
    let mut w = Wire::connect(broker.addr()).await;
    let id = create(&mut w, "dmg", 1).await;
    let fetch_at = |offset| fetch_request("dmg", id, offset, 0);
    let r = w.call(12, &fetch_at(3)).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    drop(broker);

    // A byte flipped in the second segment's first batch, a batch length broken
    // in the third's.
    let mut data = std::fs::read(&logs[1]).unwrap();
    data[200] ^= 0x40;
    std::fs::write(&logs[1], &data).unwrap();
    let mut data = std::fs::read(&logs[2]).unwrap();
    data[8..12].copy_from_slice(&7i32.to_be_bytes());
    std::fs::write(&logs[2], &data).unwrap();
    // The fourth segment's second batch gets a length of 0: once, fetches of it
    // answered "no data", for good.
    let mut data = std::fs::read(&logs[3]).unwrap();
    let first_len = batch::next_batch(&data).unwrap().unwrap().total_size();
    data[first_len + 8..first_len + 12].copy_from_slice(&0i32.to_be_bytes());
    std::fs::write(&logs[3], &data).unwrap();
    // The fifth segment's second batch gets a base offset far past the log's end
    // (the CRC does not cover it).
    let mut data = std::fs::read(&logs[4]).unwrap();
    let first_len = batch::next_batch(&data).unwrap().unwrap().total_size();
    data[first_len..first_len + 8].copy_from_slice(&999_999i64.to_be_bytes());
    std::fs::write(&logs[4], &data).unwrap();
    let first_of = |log: &std::path::Path| -> i64 { log.file_stem().unwrap().to_str().unwrap().parse().unwrap() };
    let (second, third, fourth) = (first_of(&logs[1]), first_of(&logs[2]), first_of(&logs[3]));
    let sizes =
        |logs: &[std::path::PathBuf]| -> Vec<u64> { logs.iter().map(|l| l.metadata().unwrap().len()).collect() };
    let before = sizes(&logs);

    let broker = BrokerProcess::spawn_on(dir.path(), port, &args);
    assert_eq!(sizes(&logs), before, "a clean start cuts nothing off, damaged or not");
    let mut w = Wire::connect(broker.addr()).await;
    for offset in [0, fourth, first_of(&logs[4])] {
        let r = w.call(12, &fetch_at(offset)).await;
        assert_eq!(r.responses[0].partitions[0].error_code, 0, "offset {offset} is intact");
    }
    for offset in [second, third, fourth + 1, first_of(&logs[4]) + 1] {
        let r = w.call(12, &fetch_at(offset)).await;
        assert_eq!(
            r.responses[0].partitions[0].error_code, KAFKA_STORAGE_ERROR,
            "offset {offset}"
        );
    }
    assert_eq!(
        list_offset(&mut w, "dmg", 0, -1).await,
        (0, 12),
        "nothing lost at the end"
    );
    let log = broker.log_text();
    let name = logs[1].file_name().unwrap().to_str().unwrap();
    assert!(log.contains("damaged log data") && log.contains(name), "{log}");
    drop(broker);

    let (ok, report) = strom_log(&["check"], dir.path());
    assert!(
        !ok && report.contains("CRC mismatch") && report.contains(name),
        "{report}"
    );
    let before = segments_of(&part);
    let (_, dry) = strom_log(&["repair"], dir.path());
    assert!(dry.contains("dry run"));
    assert_eq!(segments_of(&part), before, "a dry run changes nothing");
    let (ok, done) = strom_log(&["repair", "--execute"], dir.path());
    assert!(ok && done.contains("truncated"), "{done}");
    let (_, report) = strom_log(&["check"], dir.path());
    assert!(
        !report.contains("damaged:"),
        "repaired (indexes are rebuilt at the next start): {report}"
    );

    let broker = BrokerProcess::spawn_on(dir.path(), port, &args);
    let mut w = Wire::connect(broker.addr()).await;
    assert_eq!(list_offset(&mut w, "dmg", 0, -1).await, (0, second));
    let r = w.call(12, &fetch_at(0)).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    // New records follow the intact prefix.
    assert_eq!(produce(&mut w, "dmg", 0, record_batch(10, None)).await, (0, second));
}

/// Item 5: a segment deleted from the middle of a log is reported at start and by
/// `strom log check`, not skipped in silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_segment_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--override", "log.segment.bytes=12000"];
    let port = filled_and_stopped(dir.path(), &args, "gap", 8, 5000).await;
    let logs = segments_of(&dir.path().join("gap-0"));
    for ext in ["log", "index", "timeindex"] {
        std::fs::remove_file(logs[1].with_extension(ext)).unwrap();
    }
    let (ok, report) = strom_log(&["check"], dir.path());
    assert!(!ok && report.contains("are in no segment"), "{report}");
    let broker = BrokerProcess::spawn_on(dir.path(), port, &args);
    let _ = Wire::connect(broker.addr()).await;
    let log = broker.log_text();
    assert!(log.contains("offsets missing from the log"), "{log}");
}

/// The kill -9 cycle: an idempotent acks=all producer keeps sending while the
/// broker is killed with SIGKILL and restarted 20 times. Every acknowledged record
/// is there afterwards, and no record is there twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9_cycles_lose_and_duplicate_nothing() {
    use rdkafka::producer::{FutureRecord, Producer};
    use std::collections::HashSet;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::spawn(dir.path(), &[]);
    let port = broker.port;
    let mut w = Wire::connect(broker.addr()).await;
    create_topic(&mut w, "cycles", 2, &[]).await;
    drop(w);
    let p = common::producer(
        &broker.bootstrap(),
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("message.timeout.ms", "120000"),
            ("retry.backoff.ms", "20"),
            ("reconnect.backoff.ms", "20"),
            ("reconnect.backoff.max.ms", "200"),
        ],
    );
    let mut acked: HashSet<u64> = HashSet::new();
    let mut next = 0u64;
    for cycle in 0..20 {
        // Half the records before the kill (some still in flight when it lands),
        // half while the broker is down and restarting.
        let mut pending = Vec::new();
        for i in 0..1500 {
            if i == 750 {
                tokio::time::sleep(Duration::from_millis(5 + cycle * 3)).await;
                broker.kill9();
            }
            let value = next.to_string();
            next += 1;
            let record = FutureRecord::to("cycles").key(&value).payload(&value);
            pending.push((next - 1, p.send_result(record).unwrap()));
        }
        drop(broker);
        broker = BrokerProcess::spawn_on(dir.path(), port, &[]);
        for (value, delivery) in pending {
            match delivery.await {
                Ok(Ok(_)) => {
                    acked.insert(value);
                }
                Ok(Err((e, _))) => panic!("cycle {cycle}: record {value} failed: {e}"),
                Err(_) => panic!("cycle {cycle}: delivery of {value} cancelled"),
            }
        }
    }
    p.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(acked.len() as u64, next, "every record was acknowledged in the end");
    let mut w = Wire::connect(broker.addr()).await;
    let total = list_offset(&mut w, "cycles", 0, -1).await.1 + list_offset(&mut w, "cycles", 1, -1).await.1;
    let consumed = common::consume(&broker.bootstrap(), "cycles", 2, total as usize).await;
    let mut seen = HashSet::new();
    for r in &consumed {
        let v: u64 = std::str::from_utf8(r.value.as_ref().unwrap()).unwrap().parse().unwrap();
        assert!(seen.insert(v), "record {v} is in the log twice");
    }
    let lost: Vec<_> = acked.difference(&seen).take(10).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}

/// Bounded memory in the log cleaner: one batch of two million tiny keyed records
/// (a few megabytes of zstd) is compacted with the cleaner's memory well below
/// what a copy per record would take (it once took ~180 bytes a record).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cleaner_keeps_its_memory_bounded() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::spawn(dir.path(), &["--override", "log.cleaner.backoff.ms=200"]);
    let mut w = Wire::connect(broker.addr()).await;
    let configs = [
        ("cleanup.policy", "compact"),
        ("max.message.bytes", "16000000"),
        ("segment.bytes", "1000000"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ];
    create_topic(&mut w, "tiny", 1, &configs).await;
    let n = 2_000_000usize;
    let records = (0..n).map(|i| {
        (
            Some(Bytes::from(format!("{}", i % (n / 2)))),
            Some(Bytes::from_static(b"v")),
        )
    });
    let batch = testing::client_batch(Compression::Zstd, records).unwrap();
    let produced = batch.len() as u64;
    assert_eq!(produce(&mut w, "tiny", 0, Bytes::from(batch)).await, (0, 0));
    // A second batch rolls the segment, so the first can be cleaned.
    assert_eq!(produce(&mut w, "tiny", 0, record_batch(10, None)).await, (0, n as i64));
    let base = rss_kb(broker.child.id(), "VmHWM:");
    let first = dir.path().join("tiny-0/00000000000000000000.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // Half the keys repeat: the cleaned segment is smaller.
    while first.metadata().map_or(produced, |m| m.len()) >= produced {
        assert!(
            std::time::Instant::now() < deadline,
            "no compaction: {}",
            broker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let peak = rss_kb(broker.child.id(), "VmHWM:");
    assert!(peak < base + 200 * 1024, "cleaner peak RSS {base} kB -> {peak} kB");
}

/// Damage anywhere in the last segment, found or not at a clean start, never costs
/// records acknowledged afterwards: the log goes on in a new segment, so a crash
/// recovery (which cuts at the first bad batch of the active segment) cannot
/// reach back into the damaged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_in_the_last_segment_never_costs_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--override", "log.segment.bytes=20000"];
    let port = filled_and_stopped(dir.path(), &args, "tail", 40, 900).await;
    // The third batch of the last segment, well before its last index entry.
    let last = segments_of(&dir.path().join("tail-0")).pop().unwrap();
    let mut data = std::fs::read(&last).unwrap();
    let mut at = 0;
    for _ in 0..2 {
        at += batch::next_batch(&data[at..]).unwrap().unwrap().total_size();
    }
    data[at + 8..at + 12].copy_from_slice(&0i32.to_be_bytes());
    std::fs::write(&last, &data).unwrap();

    let mut broker = BrokerProcess::spawn_on(dir.path(), port, &args);
    let mut w = Wire::connect(broker.addr()).await;
    for i in 40..50 {
        assert_eq!(produce(&mut w, "tail", 0, record_batch(900, None)).await, (0, i));
    }
    broker.kill9();
    drop(broker);
    let broker = BrokerProcess::spawn_on(dir.path(), port, &args);
    let mut w = Wire::connect(broker.addr()).await;
    assert_eq!(
        list_offset(&mut w, "tail", 0, -1).await,
        (0, 50),
        "every acknowledged record is there"
    );
    let id = create(&mut w, "tail", 1).await;
    let r = w.call(12, &fetch_request("tail", id, 45, 0)).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
}
