//! Appending with acks and fetching with waits, for every partition this broker
//! leads (on one broker: all of them).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::delayed_fetch::{DelayedFetches, TopicPartition};
use super::partition::{check_leader, NO_LEADER_EPOCH};
use crate::cluster::metadata_cache::PartitionMetadata;
use crate::error::{Error, Result};
use crate::log::manager::{is_internal_topic, LogManager};
use crate::log::producer_state::VerificationGuard;
use crate::log::txn_index::AbortedTxn;
use crate::log::unified_log::{AppendInfo, UnifiedLog};
use crate::record::batch::BatchHeader;
use crate::record::control::Marker;
use crate::record::file_slice::FileSlice;
use crate::record::{legacy, records};
use crate::txn::coordinator::{MarkerWriter, TxnVerifier};
use crate::util::clock::now_ms;

/// Record bytes one fetch may carry whatever the limits asked for: a frame's size
/// must fit an i32, and Kafka's own cap (`fetch.max.bytes`) is far below.
const FETCH_DATA_CAP: usize = 1 << 30;

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

/// One partition a fetch reads, its log resolved by the caller (`None`: no such
/// topic or partition).
pub struct FetchPartition {
    pub log: Option<Arc<UnifiedLog>>,
    pub topic: String,
    pub partition: i32,
    pub fetch_offset: i64,
    /// The request's `partition_max_bytes`.
    pub max_bytes: i32,
}

/// A fetch's limits, as the request gives them.
#[derive(Debug, Clone, Copy)]
pub struct FetchParams {
    pub max_wait: Duration,
    pub min_bytes: usize,
    /// For the whole response (already capped by `fetch.max.bytes`).
    pub max_bytes: usize,
    /// read_committed: only below the last stable offset, with the aborted
    /// transactions of the range.
    pub read_committed: bool,
}

/// What a fetch got from one partition: whole batches as a file range (or none),
/// and the partition's offsets at the time of the read.
#[derive(Debug)]
pub struct FetchPartitionData {
    pub records: Result<Option<FileSlice>>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub last_stable_offset: i64,
    /// For read_committed fetches: the aborted transactions of what was read.
    pub aborted: Option<Vec<AbortedTxn>>,
}

pub struct ReplicaManager {
    /// This broker's id (`node.id`).
    pub(super) node_id: i32,
    pub(super) logs: Arc<LogManager>,
    delayed_fetches: DelayedFetches,
    /// Flips to `true` when shutdown begins: waiting fetches answer at once.
    shutting_down: watch::Receiver<bool>,
    /// In a cluster, how this broker holds each partition it has a replica
    /// of, as the cluster's metadata says (`apply_image`); None on one broker.
    pub(super) states: std::sync::RwLock<Option<std::collections::HashMap<(String, i32), PartitionMetadata>>>,
}

impl ReplicaManager {
    pub fn new(node_id: i32, logs: Arc<LogManager>, shutting_down: watch::Receiver<bool>) -> ReplicaManager {
        ReplicaManager {
            node_id,
            logs,
            delayed_fetches: DelayedFetches::default(),
            shutting_down,
            states: std::sync::RwLock::new(None),
        }
    }

    /// How this broker holds a partition: on one broker, it leads every partition
    /// it has at leader epoch 0, the only replica.
    /// How the cluster's metadata has a partition (None on one broker, or if
    /// it has no such partition).
    fn states_of(&self, topic: &str, partition: i32) -> Option<PartitionMetadata> {
        let states = self.states.read().unwrap_or_else(|e| e.into_inner());
        states.as_ref()?.get(&(topic.to_string(), partition)).cloned()
    }

    /// In a cluster, as the cluster's metadata says; a partition it says
    /// nothing of is led by nobody here (internal topics stay this broker's
    /// own until coordinators follow partition leadership).
    fn leadership(&self, log: &UnifiedLog) -> PartitionMetadata {
        let cluster = self.states.read().unwrap_or_else(|e| e.into_inner()).is_some();
        if !cluster || is_internal_topic(&log.topic) {
            return PartitionMetadata::sole(log.index, self.node_id);
        }
        self.states_of(&log.topic, log.index).unwrap_or(PartitionMetadata {
            leader: -1,
            ..PartitionMetadata::sole(log.index, self.node_id)
        })
    }

    /// The log of a partition this broker leads, checked against the leader epoch
    /// a request names (−1: none): UNKNOWN_TOPIC_OR_PARTITION,
    /// NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH or UNKNOWN_LEADER_EPOCH
    /// otherwise. Every request that reads or writes a partition's data comes
    /// through here.
    pub fn leader_log(&self, topic: &str, partition: i32, current_leader_epoch: i32) -> Result<Arc<UnifiedLog>> {
        let log = match self.logs.partition(topic, partition) {
            Ok(log) => log,
            // In the cluster, but no replica here.
            Err(_) if self.states_of(topic, partition).is_some() => {
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
        for (i, log, offset) in durable {
            if let Err(e) = log.flush_to(offset, now_ms()).await {
                tracing::error!(topic = %log.topic, partition = log.index, error = %e, "fsync failed");
                results[i] = Err(Error::Io(e));
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
        if acks == Acks::All && min_insync > IN_SYNC_REPLICAS {
            return Err(Error::NotEnoughReplicas {
                topic: request.topic,
                partition: request.partition,
                in_sync: IN_SYNC_REPLICAS,
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
        // On one broker the high watermark is the log end offset: the new data is
        // readable now.
        self.delayed_fetches.complete(&(request.topic, request.partition));
        Ok((log, info))
    }

    /// Read whole batches from each partition, waiting up to `max_wait` until at
    /// least `min_bytes` are there (woken by appends, never by a timer loop), an
    /// error occurs, or the broker shuts down. One result per partition, in order.
    pub async fn fetch_messages(&self, params: FetchParams, partitions: &[FetchPartition]) -> Vec<FetchPartitionData> {
        let deadline = Instant::now() + params.max_wait;
        let waker = Arc::new(Notify::new());
        let mut shutdown = self.shutting_down.clone();
        let keys: Vec<TopicPartition> = partitions
            .iter()
            .filter(|p| p.log.is_some())
            .map(|p| (p.topic.clone(), p.partition))
            .collect();
        loop {
            // Watch before reading, so an append between the read and the wait
            // still wakes this fetch.
            for key in &keys {
                self.delayed_fetches.watch(key, &waker);
            }
            let (read, bytes) = read_from_logs(partitions, params.max_bytes, params.read_committed);
            let any_error = read.iter().any(|r| r.records.is_err());
            if bytes >= params.min_bytes || any_error || Instant::now() >= deadline || *shutdown.borrow() {
                return read;
            }
            tokio::select! {
                _ = waker.notified() => {}
                _ = tokio::time::sleep_until(deadline) => {}
                _ = shutdown.changed() => {}
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

/// One pass over every partition, and the bytes found. Kafka's limits: `max_bytes`
/// for the whole response and each partition's own `max_bytes`, except that the
/// first partition with data always gets at least one whole batch (so a batch
/// larger than the limits is never stuck); later ones get only batches that fit.
fn read_from_logs(
    partitions: &[FetchPartition],
    max_bytes: usize,
    read_committed: bool,
) -> (Vec<FetchPartitionData>, usize) {
    let max_bytes = max_bytes.min(FETCH_DATA_CAP);
    let mut total = 0usize;
    let read = partitions
        .iter()
        .map(|p| {
            let Some(log) = &p.log else {
                return FetchPartitionData {
                    records: Err(Error::UnknownTopicOrPartition {
                        topic: p.topic.clone(),
                        partition: p.partition,
                    }),
                    high_watermark: -1,
                    log_start_offset: -1,
                    last_stable_offset: -1,
                    aborted: None,
                };
            };
            let (log_start_offset, high_watermark) = log.offsets();
            let last_stable_offset = log.last_stable_offset();
            // Consumers read below the high watermark (read_committed: the last
            // stable offset, which never passes it).
            let upper = if read_committed {
                last_stable_offset
            } else {
                high_watermark
            };
            let limit = (p.max_bytes.max(0) as usize).min(max_bytes.saturating_sub(total));
            let first_with_data = total == 0;
            // The first partition with data gets its first batch even when its
            // limit is 0 (Kafka's minOneMessage); the others only what fits.
            let records = if limit == 0 && !first_with_data {
                Ok(None)
            } else {
                log.read_slice_below(p.fetch_offset, limit.max(1), upper)
                    .map(|slice| slice.filter(|s| first_with_data || s.len <= limit))
            };
            if let Ok(Some(slice)) = &records {
                total += slice.len;
            }
            // Every aborted transaction that may overlap what was read (up to the
            // LSO); clients skip the ones past their data.
            let aborted = read_committed.then(|| log.aborted_transactions(p.fetch_offset, last_stable_offset));
            FetchPartitionData {
                records,
                high_watermark,
                log_start_offset,
                last_stable_offset,
                aborted,
            }
        })
        .collect();
    (read, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::config::LogConfig;
    use crate::record::records::{build_batch, NewRecord};

    fn manager(dir: &std::path::Path) -> (ReplicaManager, Arc<UnifiedLog>, watch::Sender<bool>) {
        let logs = Arc::new(LogManager::open(dir, LogConfig::default(), 0).unwrap());
        let topic = logs.create_topic("t", 1, &Default::default(), 0).unwrap();
        let (stop, shutting_down) = watch::channel(false);
        (
            ReplicaManager::new(0, logs, shutting_down),
            topic.partitions[0].clone(),
            stop,
        )
    }

    fn one_record() -> Bytes {
        Bytes::from(build_batch(&[NewRecord::default()], None))
    }

    fn wanting(log: &Arc<UnifiedLog>, offset: i64) -> Vec<FetchPartition> {
        vec![FetchPartition {
            log: Some(log.clone()),
            topic: "t".into(),
            partition: 0,
            fetch_offset: offset,
            max_bytes: 1 << 20,
        }]
    }

    fn params(max_wait_ms: u64) -> FetchParams {
        FetchParams {
            read_committed: false,
            max_wait: Duration::from_millis(max_wait_ms),
            min_bytes: 1,
            max_bytes: 1 << 20,
        }
    }

    fn append() -> Vec<AppendRequest> {
        vec![AppendRequest {
            topic: "t".into(),
            partition: 0,
            records: Some(one_record()),
            message_set_allowed: false,
        }]
    }

    /// A fetch from offset 0 waiting up to 30 s, in its own task.
    fn spawn_fetch(
        replicas: &Arc<ReplicaManager>,
        log: &Arc<UnifiedLog>,
    ) -> tokio::task::JoinHandle<Vec<FetchPartitionData>> {
        let (replicas, log) = (replicas.clone(), log.clone());
        tokio::spawn(async move { replicas.fetch_messages(params(30_000), &wanting(&log, 0)).await })
    }

    #[tokio::test(start_paused = true)]
    async fn a_fetch_without_data_waits_exactly_max_wait() {
        let dir = tempfile::tempdir().unwrap();
        let (replicas, log, _stop) = manager(dir.path());
        let started = Instant::now();
        let read = replicas.fetch_messages(params(30_000), &wanting(&log, 0)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(30_000));
        assert!(matches!(read[0].records, Ok(None)));
        assert_eq!(read[0].high_watermark, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_append_completes_a_waiting_fetch_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (replicas, log, _stop) = manager(dir.path());
        let replicas = Arc::new(replicas);
        let fetching = spawn_fetch(&replicas, &log);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        let appended = replicas.append_records(1, append(), None).await;
        assert_eq!(appended[0].as_ref().unwrap().base_offset, 0);
        let read = fetching.await.unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO, "woken by the append, not a timer");
        assert!(read[0].records.as_ref().unwrap().as_ref().is_some_and(|s| s.len > 0));
        assert_eq!(read[0].high_watermark, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_answers_waiting_fetches() {
        let dir = tempfile::tempdir().unwrap();
        let (replicas, log, stop) = manager(dir.path());
        let replicas = Arc::new(replicas);
        let fetching = spawn_fetch(&replicas, &log);
        tokio::time::sleep(Duration::from_millis(10)).await;
        stop.send(true).unwrap();
        let started = Instant::now();
        fetching.await.unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test]
    async fn the_first_partition_gets_a_whole_batch_whatever_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        let (replicas, log, _stop) = manager(dir.path());
        replicas.append_records(1, append(), None).await[0].as_ref().unwrap();
        for (partition_max, response_max) in [(0, 1 << 20), (1, 1 << 20), (1 << 20, 0)] {
            let mut wanted = wanting(&log, 0);
            wanted[0].max_bytes = partition_max;
            let params = FetchParams {
                max_bytes: response_max,
                ..params(0)
            };
            let read = replicas.fetch_messages(params, &wanted).await;
            let slice = read[0].records.as_ref().unwrap().as_ref();
            assert!(
                slice.is_some_and(|s| s.len > 0),
                "limits {partition_max}/{response_max}"
            );
        }
    }

    #[tokio::test]
    async fn acks_are_checked_and_internal_topics_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (replicas, _log, _stop) = manager(dir.path());
        let r = replicas.append_records(2, append(), None).await;
        assert!(matches!(r[0], Err(Error::InvalidRequiredAcks(2))));
        let internal = vec![AppendRequest {
            topic: "__consumer_offsets".into(),
            partition: 0,
            records: Some(one_record()),
            message_set_allowed: false,
        }];
        let r = replicas.append_records(1, internal, None).await;
        assert!(matches!(r[0], Err(Error::InvalidTopic { .. })));
        // acks=all returns once fsynced.
        let r = replicas.append_records(-1, append(), None).await;
        assert_eq!(r[0].as_ref().unwrap().log_end_offset, 1);
    }
}
