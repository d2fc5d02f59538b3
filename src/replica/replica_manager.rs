//! Appending with acks and fetching with waits, for every partition this broker
//! leads (on one broker: all of them).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::delayed_fetch::{DelayedFetches, TopicPartition};
pub use super::fetch::{FetchParams, FetchPartition, FetchPartitionData};
use super::leader::Leaders;
use super::partition::{check_leader, NO_LEADER_EPOCH};
use crate::client::pool::BrokerConnections;
use crate::cluster::controller::leadership::IsrChange;
use crate::cluster::image::MetadataImage;
use crate::cluster::metadata_cache::PartitionMetadata;
use crate::config::cluster::InterBroker;
use crate::error::{Error, Result};
use crate::log::manager::{is_internal_topic, LogManager};
use crate::log::producer_state::VerificationGuard;
use crate::log::unified_log::{AppendInfo, UnifiedLog};
use crate::record::batch::BatchHeader;
use crate::record::control::Marker;
use crate::record::{legacy, records};
use crate::txn::coordinator::{MarkerWriter, TxnVerifier};
use crate::util::clock::now_ms;

/// What a produce request asks to wait for before it is answered (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// 0: no answer at all.
    None,
    /// 1: the leader has the batch in its log.
    Leader,
    /// −1 (all): every in-sync replica has it; on one broker, fsynced.
    All,
}

impl TryFrom<i16> for Acks {
    type Error = Error;
    fn try_from(acks: i16) -> Result<Acks> {
        match acks {
            0 => Ok(Acks::None),
            1 => Ok(Acks::Leader),
            -1 => Ok(Acks::All),
            other => Err(Error::InvalidRequiredAcks(other)),
        }
    }
}

/// One partition's batch in a produce request.
#[derive(Debug)]
pub struct AppendRequest {
    pub topic: String,
    pub partition: i32,
    pub records: Option<Bytes>,
    /// The records may be a v0/v1 message set (Produce v0–2): it is converted to
    /// a v2 batch before the append, as Kafka's LogValidator did.
    pub message_set_allowed: bool,
}

/// A produce request's transactional producer: its id, and the coordinator that
/// verifies its batches belong to its open transaction.
#[derive(Clone, Copy)]
pub struct Transactional<'a> {
    pub id: &'a str,
    pub coordinator: &'a (dyn TxnVerifier + Sync),
}

pub struct ReplicaManager {
    /// This broker's id (`node.id`).
    pub(super) node_id: i32,
    pub(super) logs: Arc<LogManager>,
    pub(super) delayed_fetches: Arc<DelayedFetches>,
    /// Flips to `true` when shutdown begins: waiting fetches answer at once.
    pub(super) shutting_down: watch::Receiver<bool>,
    /// In a cluster, the partitions this broker leads and their followers.
    pub(super) leaders: Leaders,
    /// In a cluster, the tasks copying the partitions this broker follows.
    pub(super) fetchers: super::fetcher::Fetchers,
    /// In a cluster, how this broker holds each partition it has a replica
    /// of, as the cluster's metadata says (`apply_image`); None on one broker.
    pub(super) states: std::sync::RwLock<Option<std::collections::HashMap<(String, i32), PartitionMetadata>>>,
    /// How leaders are fetched from (inter.broker.listener.name).
    pub(super) inter_broker: InterBroker,
    /// Connections to other brokers for transaction markers and checks.
    connections: BrokerConnections,
    /// The cluster's metadata as the metadata cache shows it, which can be
    /// ahead of `states` while the applier creates the replicas.
    published: watch::Receiver<Option<Arc<MetadataImage>>>,
}

impl ReplicaManager {
    pub fn new(
        node_id: i32,
        logs: Arc<LogManager>,
        shutting_down: watch::Receiver<bool>,
        inter_broker: InterBroker,
        published: watch::Receiver<Option<Arc<MetadataImage>>>,
    ) -> ReplicaManager {
        let delayed_fetches = Arc::new(DelayedFetches::default());
        ReplicaManager {
            fetchers: super::fetcher::Fetchers::new(
                node_id,
                logs.clone(),
                delayed_fetches.clone(),
                shutting_down.clone(),
                inter_broker.clone(),
            ),
            node_id,
            logs,
            delayed_fetches,
            shutting_down,
            leaders: Leaders::default(),
            states: std::sync::RwLock::new(None),
            connections: BrokerConnections::new(inter_broker.clone(), "strom-broker"),
            inter_broker,
            published,
        }
    }

    /// How the cluster's metadata has a partition (None on one broker, or if
    /// it has no such partition).
    pub(super) fn states_of(&self, topic: &str, partition: i32) -> Option<PartitionMetadata> {
        let states = self.states.read().unwrap_or_else(|e| e.into_inner());
        states.as_ref()?.get(&(topic.to_string(), partition)).cloned()
    }

    /// Whether the cluster's newest metadata has this partition.
    fn is_published(&self, topic: &str, partition: i32) -> bool {
        let image = self.published.borrow();
        image
            .as_ref()
            .and_then(|i| i.topic(topic))
            .is_some_and(|t| t.partitions.contains_key(&partition))
    }

    /// In a cluster, as the cluster's metadata says; a partition it says
    /// nothing of is led by nobody here.
    fn leadership(&self, log: &UnifiedLog) -> PartitionMetadata {
        let sole = PartitionMetadata::sole(log.index, self.node_id);
        let states = self.states.read().unwrap_or_else(|e| e.into_inner());
        match states.as_ref().map(|s| s.get(&(log.topic.clone(), log.index))) {
            None => sole,
            Some(Some(state)) => state.clone(),
            Some(None) => PartitionMetadata { leader: -1, ..sole },
        }
    }

    /// The log of a partition this broker leads, checked against the leader epoch
    /// a request names (−1: none): UNKNOWN_TOPIC_OR_PARTITION,
    /// NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH or UNKNOWN_LEADER_EPOCH
    /// otherwise. Every request that reads or writes a partition's data comes
    /// through here.
    pub fn leader_log(&self, topic: &str, partition: i32, current_leader_epoch: i32) -> Result<Arc<UnifiedLog>> {
        let log = match self.logs.partition(topic, partition) {
            Ok(log) => log,
            // In the cluster, but no replica here (yet: a leader told of a new
            // topic answers before its applier has made the replica, as
            // Kafka's does when its metadata cache has the partition).
            Err(_) if self.states_of(topic, partition).is_some() || self.is_published(topic, partition) => {
                return Err(Error::NotLeaderOrFollower {
                    topic: topic.to_string(),
                    partition,
                });
            }
            Err(e) => return Err(e),
        };
        check_leader(&self.leadership(&log), self.node_id, topic, current_leader_epoch)?;
        Ok(log)
    }

    /// Stop following leaders for good and wait for the fetchers to end
    /// (shutdown, before the logs close).
    pub async fn stop_fetchers(&self) {
        self.fetchers.stop_and_wait().await;
    }

    /// Whether this broker leads `log`'s partition now.
    pub fn leads(&self, log: &UnifiedLog) -> bool {
        self.leadership(log).leader == self.node_id
    }

    /// The leader epoch a partition this broker leads is at (Metadata,
    /// ListOffsets and OffsetForLeaderEpoch answer with it).
    pub fn leader_epoch(&self, log: &UnifiedLog) -> i32 {
        self.leadership(log).leader_epoch
    }

    /// Append each batch in order, then wait as `acks` asks: with `All`, until
    /// every appended batch is fsynced (fsyncs of different partitions and requests
    /// overlap and are shared). Every append happens before the first wait, so a
    /// connection's requests are appended in their order. One result per request,
    /// in order. Transactional batches are verified first (`transactional`: the
    /// request's transactional producer, if it named one).
    pub async fn append_records(
        &self,
        acks: i16,
        timeout: Duration,
        requests: Vec<AppendRequest>,
        transactional: Option<Transactional<'_>>,
    ) -> Vec<Result<AppendInfo>> {
        let acks = match Acks::try_from(acks) {
            Ok(acks) => acks,
            Err(_) => return requests.iter().map(|_| Err(Error::InvalidRequiredAcks(acks))).collect(),
        };
        let now = now_ms();
        let mut results = Vec::with_capacity(requests.len());
        let mut durable = Vec::new();
        for (i, request) in requests.into_iter().enumerate() {
            let appended = self.append_one(request, acks, transactional, now);
            if let Ok((log, info)) = &appended {
                if acks == Acks::All {
                    durable.push((i, log.clone(), info.log_end_offset));
                } else if info.flush_due {
                    flush_in_background(log.clone(), info.log_end_offset);
                }
            }
            results.push(appended.map(|(_, info)| info));
        }
        let deadline = Instant::now() + timeout;
        for (i, log, offset) in durable {
            if let Err(e) = log.flush_to(offset, now_ms()).await {
                tracing::error!(topic = %log.topic, partition = log.index, error = %e, "fsync failed");
                results[i] = Err(Error::Io(e));
                continue;
            }
            // In a cluster, acks=all also waits for the in-sync replicas.
            if log.replicated_high_watermark().is_some() {
                if let Err(e) = self.replicated(&log, offset, deadline).await {
                    results[i] = Err(e);
                }
            }
        }
        results
    }

    fn append_one(
        &self,
        request: AppendRequest,
        acks: Acks,
        transactional: Option<Transactional<'_>>,
        now: i64,
    ) -> Result<(Arc<UnifiedLog>, AppendInfo)> {
        if is_internal_topic(&request.topic) {
            return Err(Error::InvalidTopic {
                name: request.topic,
                reason: "internal topics are written by the broker only",
            });
        }
        let log = self.leader_log(&request.topic, request.partition, NO_LEADER_EPOCH)?;
        // An acks=all write needs min.insync.replicas in-sync replicas; this broker
        // is the only replica, so a topic asking for more refuses such writes
        // (Kafka's leader does the same check before appending).
        let min_insync = log.config().min_insync_replicas;
        let in_sync = self
            .leaders
            .isr_len(&(request.topic.clone(), request.partition))
            .map_or(IN_SYNC_REPLICAS, |n| n as i32);
        if acks == Acks::All && min_insync > in_sync {
            return Err(Error::NotEnoughReplicas {
                topic: request.topic,
                partition: request.partition,
                in_sync,
                min_insync,
            });
        }
        let mut records = request
            .records
            .filter(|r| !r.is_empty())
            .ok_or(Error::InvalidRecord("no records"))?;
        if request.message_set_allowed && legacy::is_message_set(&records) {
            let max_uncompressed = records::max_uncompressed(log.config().message_max_bytes);
            records = Bytes::from(legacy::up_convert(&records, max_uncompressed)?);
        }
        let guard = match BatchHeader::parse(&records) {
            Some(h) if h.is_transactional() && !h.is_control() => {
                Some(verify(&log, &h, &request.topic, request.partition, transactional)?)
            }
            _ => None,
        };
        // The batch is kept as sent and written from the request's buffer; only its
        // base offset and leader epoch are set, in a copy of the header.
        let info = log.append_verified(&records, guard, now)?;
        // Followers have new data to fetch; on one broker (and a partition with
        // no other replica in sync) consumers too, the high watermark being the
        // log end.
        self.advance_high_watermark(&log);
        self.delayed_fetches.complete(&(request.topic, request.partition));
        Ok((log, info))
    }

    /// (partitions this broker leads, those of them with replicas out of the
    /// ISR), for the metrics; on one broker every partition and none.
    pub fn leader_counts(&self) -> (usize, usize) {
        let states = self.states.read().unwrap_or_else(|e| e.into_inner());
        match &*states {
            None => (self.logs.topics().iter().map(|t| t.partitions.len()).sum(), 0),
            Some(states) => states
                .values()
                .filter(|s| s.leader == self.node_id)
                .fold((0, 0), |(led, under), s| {
                    (led + 1, under + usize::from(s.isr.len() < s.replicas.len()))
                }),
        }
    }

    /// The ISR changes this broker, as leader, should ask the controller for
    /// now (followers behind for `lag_ms` out, caught-up replicas in).
    pub fn isr_changes(&self, now_ms: i64, lag_ms: i64) -> Vec<IsrChange> {
        self.leaders.isr_changes(self.node_id, now_ms, lag_ms, |tp| {
            self.logs
                .partition(&tp.0, tp.1)
                .map_or(i64::MAX, |l| l.high_watermark())
        })
    }

    /// This broker was not running for a while (paused, or starved of CPU):
    /// what its followers did meanwhile is not known yet, so none counts as
    /// lagging until it has had a lag's time to fetch again.
    pub fn forgive_pause(&self, now_ms: i64) {
        self.leaders.restart_lag_clocks(now_ms);
    }

    /// How other brokers are reached (inter.broker.listener.name).
    pub fn inter_broker(&self) -> &InterBroker {
        &self.inter_broker
    }

    /// Connections to other brokers, kept between calls.
    pub fn connections(&self) -> &BrokerConnections {
        &self.connections
    }

    /// An ISR change asked for was refused or not delivered.
    pub fn isr_change_failed(&self, topic: &str, partition: i32) {
        self.leaders.isr_change_failed(&(topic.to_string(), partition));
    }

    /// Raise a partition's high watermark to what its in-sync replicas allow
    /// now (a leader's, in a cluster), waking fetches and produces waiting on it.
    /// Records were appended to `log` by this broker (a coordinator's):
    /// followers and waiting fetches have more to read.
    pub fn appended(&self, log: &UnifiedLog) {
        self.advance_high_watermark(log);
        self.delayed_fetches.complete(&(log.topic.clone(), log.index));
    }

    pub(super) fn advance_high_watermark(&self, log: &UnifiedLog) {
        let tp = (log.topic.clone(), log.index);
        if let Some(hw) = self.leaders.high_watermark(&tp, self.node_id, log.log_end_offset()) {
            if log.maybe_increment_high_watermark(hw) {
                self.delayed_fetches.complete(&tp);
            }
        }
    }

    /// Wait until `log`'s high watermark reaches `offset` (an acks=all
    /// produce, in a cluster): REQUEST_TIMED_OUT after `timeout`,
    /// NOT_LEADER_OR_FOLLOWER if this broker stops leading it meanwhile.
    pub async fn replicated(&self, log: &UnifiedLog, offset: i64, deadline: Instant) -> Result<()> {
        let tp = (log.topic.clone(), log.index);
        let waker = Arc::new(Notify::new());
        loop {
            self.delayed_fetches.watch(&tp, &waker);
            if self.leadership(log).leader != self.node_id || *self.shutting_down.borrow() {
                return Err(Error::NotLeaderOrFollower {
                    topic: log.topic.clone(),
                    partition: log.index,
                });
            }
            if log.high_watermark() >= offset {
                // Replicated to the ISR, but an ISR that shrank below
                // min.insync.replicas meanwhile does not make it durable
                // enough (Kafka's NOT_ENOUGH_REPLICAS_AFTER_APPEND).
                let min_insync = log.config().min_insync_replicas;
                let in_sync = self.leaders.isr_len(&tp).map_or(IN_SYNC_REPLICAS, |n| n as i32);
                if in_sync < min_insync {
                    return Err(Error::NotEnoughReplicasAfterAppend {
                        topic: log.topic.clone(),
                        partition: log.index,
                        in_sync,
                        min_insync,
                    });
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::RequestTimedOut(format!(
                    "{}-{}: in-sync replicas did not reach offset {offset} in time",
                    log.topic, log.index
                )));
            }
            tokio::select! {
                _ = waker.notified() => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

/// Markers go to the partition's log here (with replication, to its leader), are
/// made durable, and wake read_committed fetches waiting for the LSO to move.
impl MarkerWriter for ReplicaManager {
    fn write_marker(
        &self,
        partition: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
    ) -> Result<()> {
        let log = self.leader_log(&partition.0, partition.1, NO_LEADER_EPOCH)?;
        log.append_marker(producer_id, producer_epoch, marker, now_ms())?;
        log.sync_active()?;
        self.advance_high_watermark(&log);
        self.delayed_fetches.complete(partition);
        Ok(())
    }
}

/// A transactional batch is written only into an open transaction its producer
/// added this partition to (KIP-890's verification): otherwise INVALID_TXN_STATE,
/// or INVALID_PRODUCER_EPOCH for a fenced producer (Produce never answers
/// PRODUCER_FENCED). The partition's guard is taken before the coordinator is
/// asked, so a marker written after the answer still refuses the batch.
fn verify(
    log: &UnifiedLog,
    h: &BatchHeader,
    topic: &str,
    partition: i32,
    transactional: Option<Transactional<'_>>,
) -> Result<VerificationGuard> {
    let Some(t) = transactional else {
        return Err(Error::TransactionalIdAuthorizationFailed);
    };
    let guard = log.verification_guard(h.producer_id);
    let tp = (topic.to_string(), partition);
    match t.coordinator.verify(t.id, h.producer_id, h.producer_epoch, &tp) {
        Ok(()) => Ok(guard),
        Err(e) => {
            // A refused producer leaves no guard behind (producer ids made up by
            // a client would otherwise pile up).
            log.release_verification_guard(h.producer_id, guard);
            Err(match e {
                Error::ProducerFenced(_) => Error::InvalidProducerEpoch {
                    producer_id: h.producer_id,
                    epoch: h.producer_epoch,
                    current: h.producer_epoch,
                },
                // The coordinator could not be asked (another broker's, moving
                // or loading): Kafka answers a retriable NOT_ENOUGH_REPLICAS.
                Error::NotCoordinator | Error::CoordinatorNotAvailable(_) | Error::CoordinatorLoadInProgress(_) => {
                    Error::NotEnoughReplicas {
                        topic: topic.to_string(),
                        partition,
                        in_sync: 0,
                        min_insync: 0,
                    }
                }
                e => e,
            })
        }
    }
}

/// The replicas in sync with each partition's leader: on one broker, the leader.
const IN_SYNC_REPLICAS: i32 = 1;

fn flush_in_background(log: Arc<UnifiedLog>, offset: i64) {
    tokio::spawn(async move {
        if let Err(e) = log.flush_to(offset, now_ms()).await {
            tracing::error!(topic = %log.topic, partition = log.index, error = %e, "flush failed");
        }
    });
}

#[cfg(test)]
#[path = "replica_manager_tests.rs"]
mod tests;
