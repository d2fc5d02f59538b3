//! Bad days against the real binary: a full disk, kill -9, damaged files, hostile
//! input. Each test reproduces one way strom once lost or duplicated data, or could
//! be taken down by a client, and asserts the fixed behaviour.

mod common;

use bytes::Bytes;
use common::process::{BrokerProcess, Tmpfs};
use common::wire::*;
use strom::protocol::records::{build_batch, NewRecord, ProducerIds};

const KAFKA_STORAGE_ERROR: i16 = 56;

/// One record of `size` bytes, from an idempotent producer when `producer` is set.
fn record_batch(size: usize, producer: Option<(i64, i32)>) -> Bytes {
    let record = NewRecord {
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from(vec![b'x'; size])),
        timestamp: 1_700_000_000_000,
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
