//! A checker in the style of Jepsen's queue workload: an idempotent acks=all
//! producer records every acknowledged (partition, offset, value); after the
//! faults heal, a fresh consumer reads everything back and any acknowledged
//! record lost, any offset with two values, any duplicate fails the test.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};

use super::cluster::{Cluster, LONG};

/// The checker's writer: idempotent, acks=all, a minute to deliver each record.
pub fn idempotent_producer(bootstrap: &str) -> FutureProducer {
    super::producer(
        bootstrap,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("message.timeout.ms", "60000"),
        ],
    )
}

/// Acknowledged records: (partition, offset) → value.
pub type Acked = BTreeMap<(i32, i64), String>;

pub async fn produce_acked(
    producer: &FutureProducer,
    topic: &str,
    partitions: i32,
    from: usize,
    count: usize,
    acked: &mut Acked,
) {
    let sends: Vec<_> = (from..from + count)
        .map(|i| {
            let value = format!("{topic}-{i}");
            let p = (i % partitions as usize) as i32;
            let producer = producer.clone();
            let topic = topic.to_string();
            async move {
                let record = FutureRecord::to(&topic).partition(p).key("k").payload(&value);
                let sent = producer.send(record, Duration::from_secs(60)).await;
                (value.clone(), sent.map_err(|(e, _)| e))
            }
        })
        .collect();
    for (value, sent) in futures_util::future::join_all(sends).await {
        let delivered = sent.unwrap_or_else(|e| panic!("{value} not acknowledged: {e}"));
        assert!(
            acked.insert((delivered.partition, delivered.offset), value).is_none(),
            "one offset, two acks"
        );
    }
}

/// The segment files of `topic-p` on broker `node`, by name.
pub fn segments(c: &Cluster, node: i32, topic: &str, p: i32) -> BTreeMap<String, Vec<u8>> {
    let dir = c.dirs[node as usize - 1]
        .path()
        .join("data")
        .join(format!("{topic}-{p}"));
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| {
                    let e = e.ok()?;
                    let name = e.file_name().to_str()?.to_string();
                    name.ends_with(".log")
                        .then(|| (name, std::fs::read(e.path()).unwrap_or_default()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Wait until the replicas of every partition on `nodes` hold identical logs.
pub async fn until_identical(c: &Cluster, nodes: &[i32], topic: &str, partitions: i32) {
    let started = Instant::now();
    for p in 0..partitions {
        loop {
            let copies: Vec<_> = nodes.iter().map(|n| segments(c, *n, topic, p)).collect();
            if copies.iter().all(|s| *s == copies[0]) && !copies[0].is_empty() {
                break;
            }
            assert!(started.elapsed() < LONG, "{topic}-{p}: replicas differ");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Every acknowledged record is there, once, at its offset.
pub fn check(acked: &Acked, read: Vec<super::Consumed>) {
    let mut seen = HashSet::new();
    for r in &read {
        let value = String::from_utf8(r.value.clone().unwrap()).unwrap();
        assert!(seen.insert(value.clone()), "duplicate {value}");
        if let Some(expected) = acked.get(&(r.partition, r.offset)) {
            assert_eq!(
                expected, &value,
                "offset {}:{} holds another value",
                r.partition, r.offset
            );
        }
    }
    for ((p, o), v) in acked {
        assert!(seen.contains(v), "acknowledged {v} at {p}:{o} was lost");
    }
}
