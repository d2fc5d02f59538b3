//! A group consumer (rdkafka StreamConsumer) running in the background, recording
//! what it consumes and every rebalance it goes through.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::ClientContext;
use tokio::sync::oneshot;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Assigned(BTreeSet<i32>),
    Revoked(BTreeSet<i32>),
}

#[derive(Default)]
pub struct Shared {
    pub records: Vec<(i32, i64, Vec<u8>)>,
    pub events: Vec<Event>,
    /// The same events numbered in the order they happened across members.
    pub sequenced: Vec<(u64, Event)>,
    pub assignment: BTreeSet<i32>,
}

/// Orders events of all members of a test.
static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn next_sequence() -> u64 {
    SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

pub struct Tracker(Arc<Mutex<Shared>>);

impl ClientContext for Tracker {}

impl ConsumerContext for Tracker {
    fn post_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut s = self.0.lock().unwrap();
        match rebalance {
            Rebalance::Assign(tpl) => {
                let parts: BTreeSet<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                s.assignment.extend(parts.iter().copied());
                s.sequenced.push((next_sequence(), Event::Assigned(parts.clone())));
                s.events.push(Event::Assigned(parts));
            }
            Rebalance::Revoke(tpl) => {
                let parts: BTreeSet<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                s.assignment.retain(|p| !parts.contains(p));
                s.sequenced.push((next_sequence(), Event::Revoked(parts.clone())));
                s.events.push(Event::Revoked(parts));
            }
            Rebalance::Error(_) => {}
        }
    }
}

pub struct GroupMember {
    pub shared: Arc<Mutex<Shared>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl GroupMember {
    pub fn start(bootstrap: &str, group: &str, topic: &str, extra: &[(&str, &str)]) -> GroupMember {
        let classic = [("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "300")];
        let all: Vec<(&str, &str)> = classic.iter().chain(extra).copied().collect();
        Self::start_subscribed(bootstrap, group, &[topic], &all)
    }

    /// A member with `group.protocol=consumer` (KIP-848): the broker sets its
    /// session and heartbeat interval.
    pub fn start_consumer_protocol(
        bootstrap: &str,
        group: &str,
        topics: &[&str],
        extra: &[(&str, &str)],
    ) -> GroupMember {
        let all: Vec<(&str, &str)> = [("group.protocol", "consumer")].iter().chain(extra).copied().collect();
        Self::start_subscribed(bootstrap, group, topics, &all)
    }

    fn start_subscribed(bootstrap: &str, group: &str, topics: &[&str], extra: &[(&str, &str)]) -> GroupMember {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("auto.commit.interval.ms", "100")
            .set("enable.partition.eof", "false");
        for (k, v) in extra {
            config.set(*k, *v);
        }
        let consumer: StreamConsumer<Tracker> = config.create_with_context(Tracker(shared.clone())).unwrap();
        consumer.subscribe(topics).unwrap();
        let (stop, mut stopped) = oneshot::channel();
        let records = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    m = consumer.recv() => match m {
                        Ok(m) => records.lock().unwrap().records.push((
                            m.partition(),
                            m.offset(),
                            m.payload().unwrap_or_default().to_vec(),
                        )),
                        Err(e) => eprintln!("consumer error: {e}"),
                    },
                    _ = &mut stopped => break,
                }
            }
            // Dropping the consumer closes it: commits and leaves the group.
            drop(consumer);
        });
        GroupMember {
            shared,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn assignment(&self) -> BTreeSet<i32> {
        self.shared.lock().unwrap().assignment.clone()
    }

    pub fn records(&self) -> Vec<(i32, i64, Vec<u8>)> {
        self.shared.lock().unwrap().records.clone()
    }

    pub fn events(&self) -> Vec<Event> {
        self.shared.lock().unwrap().events.clone()
    }

    pub fn sequenced(&self) -> Vec<(u64, Event)> {
        self.shared.lock().unwrap().sequenced.clone()
    }

    /// Close the consumer (LeaveGroup for a dynamic member) and wait for it.
    pub async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::task::spawn_blocking(move || futures_block(t)).await.unwrap();
        }
    }
}

fn futures_block(t: tokio::task::JoinHandle<()>) {
    tokio::runtime::Handle::current().block_on(async move {
        let _ = t.await;
    });
}

/// Poll `cond` until it holds, for at most `secs` seconds.
pub async fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Create `name` with `partitions` partitions through librdkafka's admin client.
pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for r in admin
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap()
    {
        r.unwrap();
    }
}

/// `per_partition` records to each partition, values "{tag}-{partition}-{i}".
pub async fn fill(
    p: &rdkafka::producer::FutureProducer,
    topic: &str,
    partitions: i32,
    per_partition: usize,
    tag: &str,
) {
    for part in 0..partitions {
        for i in 0..per_partition {
            let value = format!("{tag}-{part}-{i}");
            let r = rdkafka::producer::FutureRecord::to(topic)
                .key("k")
                .payload(&value)
                .partition(part);
            p.send(r, Duration::from_secs(10)).await.unwrap();
        }
    }
}
