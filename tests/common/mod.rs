//! Shared helpers: a broker on 127.0.0.1:0 with a temporary data directory, and
//! rdkafka clients pointed at it.
#![allow(dead_code)]

pub mod checker;
pub mod cluster;
pub mod etcd;
pub mod group;
pub mod http;
pub mod netns;
pub mod pki;
pub mod process;
pub mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use strom::config::Config;
use strom::RunningBroker;

pub struct TestBroker {
    pub running: Option<RunningBroker>,
    pub dir: tempfile::TempDir,
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestBroker {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_dir(dir.path());
        tweak(&mut config);
        let running = strom::start(config).await.unwrap();
        TestBroker {
            running: Some(running),
            dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.as_ref().unwrap().addr()
    }

    /// The HTTP endpoint (the test must have asked for one).
    pub fn http(&self) -> SocketAddr {
        self.running.as_ref().unwrap().http_addr.expect("an HTTP endpoint")
    }

    pub fn bootstrap(&self) -> String {
        self.addr().to_string()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Graceful shutdown, keeping the data directory.
    pub async fn stop(&mut self) {
        self.running.take().unwrap().shutdown().await.unwrap();
    }

    /// Start again on the same data directory (on a new port).
    pub async fn restart(&mut self, tweak: impl FnOnce(&mut Config)) {
        if self.running.is_some() {
            self.stop().await;
        }
        let mut config = Config::for_dir(self.dir.path());
        tweak(&mut config);
        self.running = Some(strom::start(config).await.unwrap());
    }
}

/// (success, stdout, stderr) of the strom binary run with `args`, fed `input`.
pub fn strom_cli(args: &[&str], input: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A librdkafka transactional producer with `transactional.id` `id`.
pub fn transactional_producer(
    bootstrap: &str,
    id: &str,
) -> rdkafka::producer::ThreadedProducer<rdkafka::producer::DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", id)
        .set("transaction.timeout.ms", "60000")
        .set("linger.ms", "5")
        .create()
        .expect("transactional producer")
}

/// A consumer that reads with `isolation` (read_committed, read_uncommitted)
/// and reports each partition's end, for assigning partitions by hand.
pub fn isolated_reader(bootstrap: &str, isolation: &str) -> rdkafka::consumer::BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{isolation}"))
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap()
}

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "30000")
        .set("linger.ms", "5");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("producer")
}

/// A record as consumed: partition, offset, key, value, headers, timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp: Option<i64>,
}

impl Consumed {
    /// A record as librdkafka delivered it.
    pub fn of<M: Message>(m: &M) -> Consumed {
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        Consumed {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers,
            timestamp: m.timestamp().to_millis(),
        }
    }
}

pub fn consumer(bootstrap: &str) -> StreamConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // librdkafka's assign() needs a group id even when no group is joined.
        .set("group.id", "strom-tests")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer")
}

/// Read `count` records from the start of every partition of `topic`.
pub async fn consume(bootstrap: &str, topic: &str, partitions: i32, count: usize) -> Vec<Consumed> {
    let c = consumer(bootstrap);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out with {} of {count} records", out.len());
        let m = match tokio::time::timeout(left, c.recv()).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => panic!("consumer error: {e}"),
            Err(_) => panic!("timed out with {} of {count} records", out.len()),
        };
        out.push(Consumed::of(&m));
    }
    // Nothing more than expected arrives.
    if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(300), c.recv()).await {
        panic!("unexpected extra record at {}:{}", m.partition(), m.offset());
    }
    out
}

/// Group consumed records by partition, in the order they arrived.
pub fn by_partition(records: &[Consumed]) -> HashMap<i32, Vec<&Consumed>> {
    let mut map: HashMap<i32, Vec<&Consumed>> = HashMap::new();
    for r in records {
        map.entry(r.partition).or_default().push(r);
    }
    map
}

/// The active (last) segment file of a partition.
pub fn active_segment(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    let dir = data_dir.join(format!("{topic}-{partition}"));
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a segment")
}
