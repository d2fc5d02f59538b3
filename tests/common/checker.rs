//! A checker in the style of Jepsen's queue workload: an idempotent acks=all
//! producer records every acknowledged (partition, offset, value); after the
//! faults heal, a fresh consumer reads everything back and any acknowledged
//! record lost, any offset with two values, any duplicate fails the test.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};

use super::cluster::{bootstrap, until_told, Cluster, Told, LONG};
use super::wire::*;

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
    }
    check_at_least_once(acked, &read);
}

/// Every acknowledged record is there at its offset (a writer without
/// idempotence may have written some twice).
pub fn check_at_least_once(acked: &Acked, read: &[super::Consumed]) {
    let at: std::collections::HashMap<(i32, i64), String> = read
        .iter()
        .map(|r| {
            (
                (r.partition, r.offset),
                String::from_utf8(r.value.clone().unwrap()).unwrap(),
            )
        })
        .collect();
    for ((p, o), v) in acked {
        match at.get(&(*p, *o)) {
            None => panic!("acknowledged {v} at {p}:{o} was lost"),
            Some(there) => assert_eq!(there, v, "offset {p}:{o} holds another value"),
        }
    }
}

/// Every one of `expected` is there exactly once, and nothing else (a writer
/// that says only that it delivered everything: kcat).
pub fn check_values(expected: &[String], read: Vec<super::Consumed>) {
    let mut seen = HashSet::new();
    for r in &read {
        let value = String::from_utf8(r.value.clone().unwrap()).unwrap();
        assert!(seen.insert(value.clone()), "duplicate {value}");
    }
    for v in expected {
        assert!(seen.contains(v), "delivered {v} was lost");
    }
    assert_eq!(seen.len(), expected.len(), "records nobody sent");
}

/// The checker's other writers, each a real client in its own process, on a
/// topic of its own: kafkajs (acks=all, reporting each record's offset; not
/// idempotent: kafkajs 2.2's idempotent producer, losing a broker mid-request,
/// can drop a send's result and reuse its sequence number for the next record,
/// which the broker then takes for a duplicate, as Kafka does — kafkajs#1303)
/// and kcat (librdkafka's CLI, idempotent, acks=all, reporting only that all
/// were delivered). Both write in rounds that last through a fault.
pub struct OtherWriters {
    kafkajs: Option<std::process::Child>,
    kcat: std::process::Child,
    feeding: std::thread::JoinHandle<()>,
    pub kcat_values: Vec<String>,
}

pub const KAFKAJS_TOPIC: &str = "jepsen-kafkajs";
pub const KCAT_TOPIC: &str = "jepsen-kcat";

impl OtherWriters {
    /// Start both on `bootstrap` (the topics exist), `rounds` rounds each.
    pub fn start(bootstrap: &str, partitions: i32, rounds: usize) -> OtherWriters {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let js_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("compat/kafkajs");
        let kafkajs = if js_dir.join("node_modules/kafkajs").exists() {
            Some(
                Command::new("node")
                    .arg(js_dir.join("checker-producer.js"))
                    .args([bootstrap, KAFKAJS_TOPIC, &partitions.to_string(), &rounds.to_string()])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("node"),
            )
        } else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs compat/kafkajs/node_modules (scripts/test.sh runs npm ci first)"
            );
            eprintln!("kafkajs writer skipped: run npm ci in compat/kafkajs");
            None
        };
        let mut kcat = Command::new("kcat")
            // -E: all brokers down (every broker killed at once) is a fault
            // to ride out, not kcat's end.
            .args(["-P", "-E", "-b", bootstrap, "-t", KCAT_TOPIC])
            .args([
                "-X",
                "enable.idempotence=true",
                "-X",
                "acks=all",
                "-X",
                "message.timeout.ms=60000",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kcat (scripts/test.sh installs it)");
        let kcat_values: Vec<String> = (0..rounds * 10).map(|i| format!("{KCAT_TOPIC}-{i}")).collect();
        let mut stdin = kcat.stdin.take().unwrap();
        let feed = kcat_values.clone();
        let feeding = std::thread::spawn(move || {
            for round in feed.chunks(10) {
                for v in round {
                    let _ = writeln!(stdin, "{v}");
                }
                let _ = stdin.flush();
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        OtherWriters {
            kafkajs,
            kcat,
            feeding,
            kcat_values,
        }
    }

    /// Wait for both: what kafkajs had acknowledged (None if it did not run);
    /// kcat must have delivered everything.
    pub fn finish(self) -> Option<Acked> {
        self.feeding.join().unwrap();
        let kcat = self.kcat.wait_with_output().unwrap();
        let kcat_err = String::from_utf8_lossy(&kcat.stderr);
        assert!(
            kcat.status.success() && !kcat_err.contains("Delivery failed"),
            "kcat did not deliver everything: {kcat_err}"
        );
        let js = self.kafkajs?.wait_with_output().unwrap();
        assert!(js.status.success(), "kafkajs: {}", String::from_utf8_lossy(&js.stderr));
        let said = String::from_utf8_lossy(&js.stderr);
        if !said.is_empty() {
            // kafkajs may resolve a send without some partitions' results
            // (kafkajs#1303): those records were never acknowledged.
            eprintln!("kafkajs: {said}");
        }
        let mut acked = Acked::new();
        for line in String::from_utf8_lossy(&js.stdout).lines() {
            let mut parts = line.splitn(3, ' ');
            let (p, o, v) = (parts.next(), parts.next(), parts.next());
            let (Some(p), Some(o), Some(v)) = (p, o, v) else {
                panic!("kafkajs wrote {line:?}")
            };
            let key = (p.parse().unwrap(), o.parse().unwrap());
            assert!(
                acked.insert(key, v.to_string()).is_none(),
                "one offset, two acks (kafkajs)"
            );
        }
        Some(acked)
    }
}

/// Everything in `topic` now: each partition read to its end (a writer may
/// have written records it was never told were acknowledged).
pub fn read_to_end(bootstrap: &str, topic: &str, partitions: i32) -> Vec<super::Consumed> {
    use rdkafka::consumer::Consumer;
    use rdkafka::error::KafkaError;
    use rdkafka::{Offset, TopicPartitionList};
    let reader = super::isolated_reader(bootstrap, "read_uncommitted");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    reader.assign(&tpl).unwrap();
    let (mut read, mut ended) = (Vec::new(), HashSet::new());
    let started = Instant::now();
    while ended.len() < partitions as usize {
        assert!(started.elapsed() < LONG, "{topic} not read to its end");
        match reader.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => read.push(super::Consumed::of(&m)),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            _ => {}
        }
    }
    read
}

/// Partitions of each of the fault tests' topics.
pub const PARTITIONS: i32 = 3;

/// The workload of the fault tests, on a ready three-broker cluster `c`
/// whose controller is `controller`: replication-factor-3 topics (min ISR 2),
/// records streamed in rounds by rdkafka (idempotent), kafkajs and kcat while
/// `fault` runs; then, once every broker is back in every ISR, everything
/// acknowledged is read back and checked, leader epochs must not have gone
/// backwards and the replicas must be identical. Prints the counts.
pub async fn checked_under_fault<F, Fut>(c: Cluster, controller: i32, name: &str, fault: F)
where
    F: FnOnce(Cluster, i32, BTreeMap<i32, Told>) -> Fut,
    Fut: std::future::Future<Output = Cluster>,
{
    let mut w = Wire::connect(c.addr(1)).await;
    for topic in ["jepsen", KAFKAJS_TOPIC, KCAT_TOPIC] {
        create_replicated_topic(&mut w, topic, PARTITIONS, 3, &[("min.insync.replicas", "2")]).await;
    }
    for topic in ["jepsen", KAFKAJS_TOPIC, KCAT_TOPIC] {
        until_told(&c, &[1, 2, 3], topic, |v| {
            v.as_ref()
                .is_some_and(|ps| ps.len() == PARTITIONS as usize && ps.values().all(|p| p.isr.len() == 3))
        })
        .await;
    }
    let all = bootstrap(&c, &[1, 2, 3]);
    // kafkajs and kcat write through the same fault, each to a topic of its own.
    let others = OtherWriters::start(&all, PARTITIONS, 60);
    let producer = idempotent_producer(&all);
    let stream = {
        let producer = producer.clone();
        tokio::spawn(async move {
            let mut acked = Acked::new();
            for round in 0..60 {
                produce_acked(&producer, "jepsen", PARTITIONS, round * 20, 20, &mut acked).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            acked
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let told = until_told(&c, &[1, 2, 3], "jepsen", |v| v.is_some()).await.unwrap();
    let mut c = fault(c, controller, told.clone()).await;
    let acked = stream.await.unwrap();
    let kcat_values = others.kcat_values.clone();
    let js_acked = tokio::task::spawn_blocking(move || others.finish()).await.unwrap();
    // Healed: every broker back and in every ISR.
    let healed = until_told(&c, &[1, 2, 3], "jepsen", |v| {
        v.as_ref()
            .is_some_and(|ps| ps.values().all(|p| p.isr.len() == 3 && p.leader > 0))
    })
    .await
    .unwrap();
    for (p, before) in &told {
        assert!(
            healed[p].epoch >= before.epoch,
            "{name}: leader epoch of {p} went backwards"
        );
    }
    check(&acked, super::consume(&all, "jepsen", PARTITIONS, acked.len()).await);
    let read = super::consume(&all, KCAT_TOPIC, PARTITIONS, kcat_values.len()).await;
    check_values(&kcat_values, read);
    let js = js_acked.as_ref().map_or(0, |js| js.len());
    if let Some(js_acked) = &js_acked {
        let everything = all.clone();
        let read = tokio::task::spawn_blocking(move || read_to_end(&everything, KAFKAJS_TOPIC, PARTITIONS));
        check_at_least_once(js_acked, &read.await.unwrap());
    }
    until_identical(&c, &[1, 2, 3], "jepsen", PARTITIONS).await;
    eprintln!(
        "{name}: {} acknowledged (rdkafka), {js} (kafkajs), {} (kcat); 0 lost; rdkafka and kcat 0 duplicates; leader epochs {:?}",
        acked.len(),
        kcat_values.len(),
        healed.values().map(|p| p.epoch).collect::<Vec<_>>()
    );
    c.terminate_all();
}
