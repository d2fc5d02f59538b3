//! Followers copy their leaders' logs (Kafka's ReplicaFetcherThread): one task
//! per leader broker fetches every partition this broker follows from it, with
//! Kafka's own Fetch (v12: the follower's id, the leader epoch it follows, the
//! epoch of its last batch). Records are appended byte for byte
//! (`append_as_follower`); a log that diverges from the leader's is truncated
//! where the leader says (DivergingEpoch), or started over at the leader's log
//! start when it is out of range; the leader's high watermark is taken, capped
//! by the follower's own log end.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::delayed_fetch::DelayedFetches;
use crate::client::{Bootstrap, Client};
use crate::config::cluster::InterBroker;
use crate::log::manager::LogManager;
use crate::log::unified_log::UnifiedLog;
use crate::util::clock::now_ms;

/// Kafka's replica.fetch.* defaults.
const WAIT_MAX_MS: i32 = 500;
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const RESPONSE_MAX_BYTES: i32 = 10 << 20;
const BACKOFF: Duration = Duration::from_secs(1);
/// How often a fetcher refused by its leader (TLS, SASL) says so.
const REFUSED_REPORT_EVERY: Duration = Duration::from_secs(30);
/// A fetch answers within its wait; longer means the leader is gone.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A partition this broker follows: whom, at which leader epoch, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed {
    pub topic: String,
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    /// The leader's inter-broker address (`host:port`).
    pub leader_addr: String,
}

struct Inner {
    node_id: i32,
    logs: Arc<LogManager>,
    /// Consumers' fetches waiting on a followed partition (KIP-392): woken
    /// when its high watermark moves.
    delayed_fetches: Arc<DelayedFetches>,
    /// By leader.
    followed: Mutex<HashMap<i32, Vec<Followed>>>,
    tasks: Mutex<HashMap<i32, JoinHandle<()>>>,
    shutting_down: watch::Receiver<bool>,
    /// How leaders are reached (inter.broker.listener.name).
    inter_broker: InterBroker,
    /// Set once the fetchers stopped for good: nothing starts them again.
    stopped: std::sync::atomic::AtomicBool,
}

/// The fetcher tasks of this broker, one per leader it follows partitions of.
pub struct Fetchers {
    inner: Arc<Inner>,
}

impl Fetchers {
    pub fn new(
        node_id: i32,
        logs: Arc<LogManager>,
        delayed_fetches: Arc<DelayedFetches>,
        shutting_down: watch::Receiver<bool>,
        inter_broker: InterBroker,
    ) -> Fetchers {
        Fetchers {
            inner: Arc::new(Inner {
                node_id,
                logs,
                delayed_fetches,
                followed: Mutex::new(HashMap::new()),
                tasks: Mutex::new(HashMap::new()),
                shutting_down,
                inter_broker,
                stopped: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Follow exactly `followed` from now on: tasks start for new leaders and
    /// stop for leaders no longer followed. Needs a tokio runtime.
    pub fn set(&self, followed: Vec<Followed>) {
        if self.inner.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let mut by_leader: HashMap<i32, Vec<Followed>> = HashMap::new();
        for f in followed {
            by_leader.entry(f.leader).or_default().push(f);
        }
        let leaders: Vec<i32> = by_leader.keys().copied().collect();
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner());
        // What to follow first, then the tasks: a task started before would
        // find nothing to follow for its leader, end, and never be restarted
        // if no other metadata change came (a reassignment's new replica
        // stayed empty that way).
        *self.inner.followed.lock().unwrap_or_else(|e| e.into_inner()) = by_leader;
        tasks.retain(|leader, task| {
            let keep = leaders.contains(leader) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for leader in leaders {
            if !tasks.contains_key(&leader) {
                let inner = self.inner.clone();
                tasks.insert(leader, tokio::spawn(async move { run(inner, leader).await }));
            }
        }
    }

    /// Stop every fetcher (shutdown).
    pub fn stop(&self) {
        self.set(Vec::new());
    }

    /// Stop every fetcher for good and wait until none runs, so that no
    /// follower append lands after the logs are closed (one that did was
    /// past the end the clean shutdown recorded).
    pub async fn stop_and_wait(&self) {
        self.inner.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        let tasks: Vec<JoinHandle<()>> = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, t)| t)
            .collect();
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// The epoch of the last batch of `log`, −1 when it has none.
fn last_fetched_epoch(log: &UnifiedLog) -> i32 {
    if log.log_end_offset() > log.log_start_offset() {
        log.latest_epoch()
    } else {
        -1
    }
}

async fn run(inner: Arc<Inner>, leader: i32) {
    let mut connection: Option<(String, Client)> = None;
    let mut refused_since: Option<std::time::Instant> = None;
    loop {
        if *inner.shutting_down.borrow() {
            return;
        }
        let followed = {
            let map = inner.followed.lock().unwrap_or_else(|e| e.into_inner());
            map.get(&leader).cloned().unwrap_or_default()
        };
        let Some(addr) = followed.first().map(|f| f.leader_addr.clone()) else {
            return;
        };
        let logs: Vec<(Followed, Arc<UnifiedLog>)> = followed
            .into_iter()
            .filter_map(|f| inner.logs.partition(&f.topic, f.partition).ok().map(|log| (f, log)))
            .collect();
        if logs.is_empty() {
            tokio::time::sleep(BACKOFF).await;
            continue;
        }
        if connection.as_ref().is_none_or(|(a, _)| *a != addr) {
            match Client::connect(&Bootstrap::to_broker(&addr, &inner.inter_broker)).await {
                Ok(mut c) => {
                    c.set_client_id("strom-replica-fetcher");
                    connection = Some((addr.clone(), c));
                }
                Err(e) if e.is_unreachable() => {
                    tracing::debug!(leader, %addr, error = %e, "cannot reach the leader yet");
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
                // A certificate or a login refused: nothing replicates until
                // an operator fixes it, so said loudly (every 30 s at most).
                Err(e) => {
                    if refused_since.is_none_or(|at| at.elapsed() >= REFUSED_REPORT_EVERY) {
                        tracing::error!(leader, %addr, error = %e, "cannot connect to the leader to replicate (inter-broker TLS or SASL settings?)");
                        refused_since = Some(std::time::Instant::now());
                    }
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
            }
        }
        let Some((_, client)) = connection.as_mut() else {
            continue;
        };
        let request = fetch_request(inner.node_id, &logs);
        let answer = tokio::time::timeout(CALL_TIMEOUT, client.call(12, &request)).await;
        let response = match answer {
            Ok(Ok(r)) => r,
            // A leader going away is routine; an answer that is not Kafka's is not.
            Ok(Err(e)) if e.is_unreachable() => {
                tracing::debug!(leader, error = %e, "fetch from the leader failed");
                connection = None;
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
            Ok(Err(e)) => {
                tracing::warn!(leader, %addr, error = %e, "fetch from the leader failed");
                connection = None;
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
            Err(_) => {
                tracing::warn!(leader, %addr, "the leader did not answer a fetch in {CALL_TIMEOUT:?}");
                connection = None;
                continue;
            }
        };
        let mut trouble = response.error_code != 0;
        let by_key: HashMap<(String, i32), &Arc<UnifiedLog>> = logs
            .iter()
            .map(|(f, log)| ((f.topic.clone(), f.partition), log))
            .collect();
        for t in &response.responses {
            for p in &t.partitions {
                let Some(log) = by_key.get(&(t.topic.to_string(), p.partition_index)) else {
                    continue;
                };
                let ok = match p.error_code {
                    0 => {
                        let (taken, hw_moved) = take(log, p);
                        if hw_moved {
                            inner.delayed_fetches.complete(&(log.topic.clone(), log.index));
                        }
                        taken
                    }
                    // OFFSET_OUT_OF_RANGE: start over where the leader's log is.
                    1 => match connection.as_mut() {
                        Some((_, client)) => out_of_range(client, inner.node_id, log).await,
                        None => false,
                    },
                    code => {
                        tracing::debug!(topic = %log.topic, partition = log.index, code, "the leader refused a fetch");
                        false
                    }
                };
                trouble |= !ok;
            }
        }
        if trouble {
            // Leadership moved or the leader is unwell: the metadata will say.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn fetch_request(node_id: i32, logs: &[(Followed, Arc<UnifiedLog>)]) -> FetchRequest {
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for (f, log) in logs {
        let mut p = FetchPartition::default();
        p.partition = f.partition;
        p.current_leader_epoch = f.leader_epoch;
        p.fetch_offset = log.log_end_offset();
        p.last_fetched_epoch = last_fetched_epoch(log);
        p.log_start_offset = log.log_start_offset();
        p.partition_max_bytes = PARTITION_MAX_BYTES;
        topics.entry(f.topic.as_str()).or_default().push(p);
    }
    let mut request = FetchRequest::default();
    request.replica_id = BrokerId(node_id);
    request.max_wait_ms = WAIT_MAX_MS;
    request.min_bytes = 1;
    request.max_bytes = RESPONSE_MAX_BYTES;
    request.session_id = 0;
    request.session_epoch = -1;
    request.topics = topics
        .into_iter()
        .map(|(topic, partitions)| {
            let mut t = FetchTopic::default();
            t.topic = name(topic);
            t.partitions = partitions;
            t
        })
        .collect();
    request
}

/// Take what the leader sent for `log`: truncate where it says the logs
/// diverge, or append its records and take its high watermark. (Whether it
/// was taken, whether the high watermark moved.)
fn take(log: &UnifiedLog, p: &kafka_protocol::messages::fetch_response::PartitionData) -> (bool, bool) {
    let now = now_ms();
    if p.diverging_epoch.epoch >= 0 {
        // Keep what both logs agree on: up to the leader's end of that epoch,
        // and no further than this log's own end of it.
        let (_, own_end) = log.end_offset_for_epoch(p.diverging_epoch.epoch);
        let to = p.diverging_epoch.end_offset.min(own_end.max(0));
        tracing::info!(topic = %log.topic, partition = log.index, to, "truncating to the leader's log");
        return match log.truncate_to(to, now) {
            Ok(_) => (true, false),
            Err(e) => {
                tracing::error!(topic = %log.topic, partition = log.index, error = %e, "cannot truncate");
                (false, false)
            }
        };
    }
    if let Some(records) = p.records.as_ref().filter(|r| !r.is_empty()) {
        if let Err(e) = log.append_as_follower(records, now) {
            // A fetch answered for a position this replica has since moved
            // past (a pause, a truncation meanwhile) is fetched again.
            tracing::warn!(topic = %log.topic, partition = log.index, error = %e, "cannot append the leader's records; fetching again");
            return (false, false);
        }
    }
    // Only forward: a new leader's high watermark may lag what this
    // follower had from the one before (Kafka's maybeUpdateHighWatermark).
    let hw_moved = log.maybe_increment_high_watermark(p.high_watermark.min(log.log_end_offset()));
    // The leader's log start (retention, DeleteRecords) moves this one's too,
    // once this replica's high watermark has passed it; else a follower
    // elected later would serve records the leader had deleted.
    let leader_start = p.log_start_offset;
    if leader_start > log.log_start_offset() && leader_start <= log.high_watermark() {
        if let Err(e) = log.delete_records(leader_start) {
            tracing::warn!(topic = %log.topic, partition = log.index, error = %e, "cannot follow the leader's log start");
        }
    }
    (true, hw_moved)
}

/// This log is outside the leader's: behind its start (retention there), so
/// start over at it; or past its end, so cut back to it.
async fn out_of_range(client: &mut Client, node_id: i32, log: &UnifiedLog) -> bool {
    let offset = |timestamp: i64| {
        let mut p = ListOffsetsPartition::default();
        p.partition_index = log.index;
        p.timestamp = timestamp;
        p.current_leader_epoch = -1;
        let mut t = ListOffsetsTopic::default();
        t.name = name(&log.topic);
        t.partitions = vec![p];
        let mut r = ListOffsetsRequest::default();
        r.replica_id = BrokerId(node_id);
        r.topics = vec![t];
        r
    };
    let mut ask = async |timestamp| -> Option<i64> {
        let answer = match client.call(2, &offset(timestamp)).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(topic = %log.topic, partition = log.index, error = %e, "cannot ask the leader where its log starts and ends");
                return None;
            }
        };
        let p = answer.topics.first()?.partitions.first()?;
        (p.error_code == 0).then_some(p.offset)
    };
    let (Some(start), Some(end)) = (ask(-2).await, ask(-1).await) else {
        return false;
    };
    let now = now_ms();
    let done = if log.log_end_offset() < start {
        log.truncate_fully_and_start_at(start, now)
    } else {
        log.truncate_to(end, now).map(|_| ())
    };
    if let Err(e) = done {
        tracing::error!(topic = %log.topic, partition = log.index, error = %e, "cannot follow the leader's offsets");
        return false;
    }
    true
}
