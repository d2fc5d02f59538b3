//! Resources a long-running broker must not leak, against the real binary.

mod common;

use bytes::Bytes;
use common::process::BrokerProcess;
use common::wire::*;
use strom::record::records::{build_batch, NewRecord};

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn one_record(size: usize) -> Bytes {
    let record = NewRecord {
        key: None,
        value: Some(Bytes::from(vec![b'x'; size])),
        timestamp: 1_700_000_000_000,
        headers: Vec::new(),
    };
    Bytes::from(build_batch(&[record], None))
}

/// Every roll of a segment used to keep three file handles until the next fsync,
/// which acks=0/1 traffic with Kafka's default flush settings never asks for: the
/// broker ran out of file descriptors, and deleted segments kept their space.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_segments_keeps_no_file_handles() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::spawn(dir.path(), &[]);
    let pid = broker.child.id();
    let mut w = Wire::connect(broker.addr()).await;
    create_topic(&mut w, "rolling", 1, &[("segment.bytes", "4096")]).await;
    let before = open_files(pid);
    // ~2 KiB batches into 4 KiB segments: a roll every other batch, ~300 in all.
    for _ in 0..600 {
        let r = w.call(9, &produce_request("rolling", 0, one_record(2000), 1)).await;
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    let after = open_files(pid);
    // Each segment holds its three files open (log, index, time index): the
    // count follows the segments, with no handles kept per roll on top.
    let segments = std::fs::read_dir(dir.path().join("rolling-0"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
        .count();
    assert!(segments > 250, "the test rolled: {segments} segments");
    assert!(
        after <= before + segments * 3 + 10,
        "{before} open files before, {after} after {segments} segments: handles kept per roll"
    );
}
