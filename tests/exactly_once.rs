//! Consume-transform-produce that processes every input exactly once across a
//! kill -9 of the processor and, separately, of strom.
//!
//! The processor is this test binary run again as a child process (the
//! `processor` test, which does nothing unless `EO_PROCESSOR` is set), so it can
//! be killed with SIGKILL like a real service: no abort, no LeaveGroup. Like a
//! real deployment, a supervisor restarts it whenever it exits; on any error in
//! a transaction it exits (a fresh instance fences the old one and starts from
//! the group's committed offset).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::BrokerProcess;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

const INPUTS: usize = 150;
const T: Duration = Duration::from_secs(20);

/// One processor instance: transactions of up to 5 inputs until killed, or
/// until an error (then the process exits and the supervisor starts another).
#[test]
fn processor() {
    let Ok(bootstrap) = std::env::var("EO_PROCESSOR") else {
        return; // an ordinary test run
    };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "eo-processor")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .unwrap();
    consumer.subscribe(&["eo-in"]).unwrap();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("transactional.id", "eo-processor")
        .set("transaction.timeout.ms", "10000")
        .create()
        .unwrap();
    if producer.init_transactions(T).is_err() {
        std::process::exit(1);
    }
    loop {
        let mut batch = Vec::new();
        let deadline = Instant::now() + Duration::from_millis(300);
        while batch.len() < 5 && Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => batch.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()),
                Some(Err(_)) => std::process::exit(1),
                None => {}
            }
        }
        if batch.is_empty() {
            continue;
        }
        let done = (|| -> Result<(), Box<dyn std::error::Error>> {
            producer.begin_transaction()?;
            for v in &batch {
                let out = format!("out-{v}");
                producer
                    .send(BaseRecord::<(), _>::to("eo-out").partition(0).payload(&out))
                    .map_err(|(e, _)| e)?;
            }
            // Most of the time is spent here, inside the transaction with its
            // records in the log: where the kills land.
            producer.flush(T)?;
            // Tell the supervisor a transaction with records is open.
            if let Ok(mark) = std::env::var("EO_IN_TRANSACTION") {
                let _ = std::fs::write(mark, b"");
            }
            std::thread::sleep(Duration::from_millis(200));
            let position = consumer.position()?;
            producer.send_offsets_to_transaction(&position, &consumer.group_metadata().ok_or("no group")?, T)?;
            producer.commit_transaction(T)?;
            Ok(())
        })();
        if done.is_err() {
            std::process::exit(1);
        }
    }
}

struct Supervisor {
    bootstrap: String,
    /// A file the processor writes once its transaction's records are flushed.
    mark: std::path::PathBuf,
    child: Child,
    restarts: usize,
}

impl Supervisor {
    fn start(bootstrap: &str, mark: std::path::PathBuf) -> Supervisor {
        Supervisor {
            bootstrap: bootstrap.to_string(),
            child: Self::spawn(bootstrap, &mark),
            mark,
            restarts: 0,
        }
    }

    fn spawn(bootstrap: &str, mark: &std::path::Path) -> Child {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "processor", "--nocapture", "--test-threads", "1"])
            .env("EO_PROCESSOR", bootstrap)
            .env("EO_IN_TRANSACTION", mark)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Restart the processor if it exited.
    fn tend(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            self.restarts += 1;
            self.child = Self::spawn(&self.bootstrap, &self.mark);
        }
    }

    /// kill -9 the processor while a transaction of its has records in the
    /// log (it sleeps 200 ms there), then start another.
    fn kill9_mid_transaction(&mut self) {
        let _ = std::fs::remove_file(&self.mark);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.mark.exists() {
            assert!(Instant::now() < deadline, "no transaction opened in 60 s");
            self.tend();
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.bootstrap, &self.mark);
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Values of partition 0 of `topic` with `isolation`, up to its end.
fn read(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "eo-reader")
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    c.assign(&tpl).unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + T;
    while Instant::now() < deadline {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return values,
            _ => {}
        }
    }
    values
}

/// The processor group's committed offset on the input (what committed
/// transactions have consumed), or 0.
fn progress(bootstrap: &str) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "eo-processor")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("eo-in", 0);
    match c.committed_offsets(tpl, Duration::from_secs(5)) {
        Ok(found) => match found.find_partition("eo-in", 0).map(|p| p.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => 0,
        },
        Err(_) => 0,
    }
}

/// Tend the supervisor until committed transactions have consumed `n` inputs.
fn wait_for_progress(sup: &mut Supervisor, bootstrap: &str, n: i64, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        sup.tend();
        let done = progress(bootstrap);
        if done >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {n} inputs processed in {secs} s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_input_is_processed_exactly_once_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::spawn(dir.path(), &["--group-initial-rebalance-delay-ms", "0"]);
    let bs = broker.bootstrap();
    let admin: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", &bs).create().unwrap();
    // Auto-created topics (one partition each) by a first write.
    admin
        .send(BaseRecord::<(), _>::to("eo-out").partition(0).payload("seed"))
        .unwrap();
    for i in 0..INPUTS {
        let v = i.to_string();
        admin
            .send(BaseRecord::<(), _>::to("eo-in").partition(0).payload(&v))
            .unwrap();
    }
    admin.flush(T).unwrap();
    drop(admin);

    let marks = tempfile::tempdir().unwrap();
    let mut sup = Supervisor::start(&bs, marks.path().join("in-transaction"));
    let n = INPUTS as i64;
    wait_for_progress(&mut sup, &bs, n / 3, 60);
    sup.kill9_mid_transaction(); // the processor

    wait_for_progress(&mut sup, &bs, 2 * n / 3, 60);
    let port = broker.port;
    broker.kill9(); // strom, mid-stream
    drop(broker);
    let mut broker = BrokerProcess::spawn_on(dir.path(), port, &["--group-initial-rebalance-delay-ms", "0"]);

    wait_for_progress(&mut sup, &bs, n, 120);
    let committed = read(&bs, "eo-out", "read_committed");
    let expected: Vec<String> = std::iter::once("seed".to_string())
        .chain((0..INPUTS).map(|i| format!("out-{i}")))
        .collect();
    assert_eq!(
        committed, expected,
        "each input once, in order (restarts: {})",
        sup.restarts
    );
    let uncommitted = read(&bs, "eo-out", "read_uncommitted").len();
    eprintln!(
        "processor restarts: {}, records in the log: {uncommitted}",
        sup.restarts
    );
    assert!(uncommitted > committed.len(), "the kills left aborted records behind");
    drop(sup);
    broker.kill9();
}
