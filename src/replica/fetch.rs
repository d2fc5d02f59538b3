//! Reading for fetches (Kafka's ReplicaManager.fetchMessages): consumers read
//! below the high watermark (read_committed: below the last stable offset);
//! followers read up to the log end, and each follower fetch tells the leader
//! how far that follower's log reaches, which may move the high watermark. A
//! follower whose last fetched epoch disagrees with the leader's log is told
//! where they diverge (KIP-320's DivergingEpoch) and truncates.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::delayed_fetch::TopicPartition;
use super::replica_manager::ReplicaManager;
use crate::error::{Error, Result};
use crate::log::txn_index::AbortedTxn;
use crate::log::unified_log::UnifiedLog;
use crate::record::file_slice::FileSlice;

/// Record bytes one fetch may carry whatever the limits asked for: a frame's size
/// must fit an i32, and Kafka's own cap (`fetch.max.bytes`) is far below.
const FETCH_DATA_CAP: usize = 1 << 30;

/// One partition a fetch reads, its log resolved by the caller (`None`: no such
/// topic or partition).
pub struct FetchPartition {
    pub log: Option<Arc<UnifiedLog>>,
    pub topic: String,
    pub partition: i32,
    pub fetch_offset: i64,
    /// The request's `partition_max_bytes`.
    pub max_bytes: i32,
    /// The epoch of the last batch the fetching follower holds (Fetch v12+),
    /// −1 for none or a consumer.
    pub last_fetched_epoch: i32,
    /// The fetching follower's log start (Fetch v5+), −1 for none or a consumer.
    pub log_start_offset: i64,
    /// The replica the consumer should read from instead (KIP-392): nothing
    /// is read, and the fetch answers at once.
    pub preferred_read_replica: Option<i32>,
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
    /// The broker whose follower fetches (None: a consumer).
    pub replica: Option<i32>,
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
    /// For a follower whose log diverges from the leader's: the leader's
    /// (epoch, end offset) to truncate to; nothing was read.
    pub diverging: Option<(i32, i64)>,
}

impl ReplicaManager {
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
        // A follower's fetch says how far its log reaches (or that it diverges).
        let diverging: Vec<Follower> = partitions
            .iter()
            .map(|p| match (&p.log, params.replica) {
                (Some(log), Some(id)) => self.follower_fetch(log, id, p),
                _ => Follower::InStep,
            })
            .collect();
        loop {
            // Watch before reading, so an append between the read and the wait
            // still wakes this fetch.
            for key in &keys {
                self.delayed_fetches.watch(key, &waker);
            }
            let (read, bytes) = read_from_logs(partitions, &params, &diverging);
            let any_error = read.iter().any(|r| r.records.is_err());
            // A consumer sent to another replica is told so at once (Kafka too).
            let redirected = partitions.iter().any(|p| p.preferred_read_replica.is_some());
            if bytes >= params.min_bytes || any_error || redirected || Instant::now() >= deadline || *shutdown.borrow()
            {
                return read;
            }
            tokio::select! {
                _ = waker.notified() => {}
                _ = tokio::time::sleep_until(deadline) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// A follower fetched `log` from `fetch_offset`: where it diverges from
    /// this leader's log, or else its progress recorded (perhaps moving the
    /// high watermark). A broker that holds no replica of it is refused
    /// (NOT_LEADER_OR_FOLLOWER, as Kafka): it must neither read past the high
    /// watermark nor count as a follower.
    fn follower_fetch(&self, log: &Arc<UnifiedLog>, id: i32, p: &FetchPartition) -> Follower {
        let (fetch_offset, last_fetched_epoch) = (p.fetch_offset, p.last_fetched_epoch);
        if last_fetched_epoch >= 0 {
            let (epoch, end) = log.end_offset_for_epoch(last_fetched_epoch);
            if epoch != last_fetched_epoch || end < fetch_offset {
                return Follower::Diverging(epoch, end);
            }
        }
        let tp: TopicPartition = (log.topic.clone(), log.index);
        if self.leaders.follower_fetched(
            &tp,
            id,
            fetch_offset,
            p.log_start_offset,
            log.log_end_offset(),
            crate::util::clock::now_ms(),
        ) {
            self.advance_high_watermark(log);
            return Follower::InStep;
        }
        Follower::NotAReplica
    }
}

/// How a fetching follower's log stands against this leader's.
#[derive(Debug, Clone, Copy)]
enum Follower {
    /// It continues this log (or the fetch is a consumer's).
    InStep,
    /// It diverges: the leader's (epoch, end offset) to truncate to.
    Diverging(i32, i64),
    /// The fetching broker holds no replica of the partition.
    NotAReplica,
}

/// One pass over every partition, and the bytes found. Kafka's limits: `max_bytes`
/// for the whole response and each partition's own `max_bytes`, except that the
/// first partition with data always gets at least one whole batch (so a batch
/// larger than the limits is never stuck); later ones get only batches that fit.
fn read_from_logs(
    partitions: &[FetchPartition],
    params: &FetchParams,
    followers: &[Follower],
) -> (Vec<FetchPartitionData>, usize) {
    let read_committed = params.read_committed;
    let max_bytes = params.max_bytes.min(FETCH_DATA_CAP);
    let mut total = 0usize;
    let read = partitions
        .iter()
        .zip(followers)
        .map(|(p, follower)| {
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
                    diverging: None,
                };
            };
            let (log_start_offset, high_watermark) = log.offsets();
            let last_stable_offset = log.last_stable_offset();
            // Consumers read below the high watermark (read_committed: the last
            // stable offset, which never passes it); followers to the log end.
            let upper = if params.replica.is_some() {
                log.log_end_offset()
            } else if read_committed {
                last_stable_offset
            } else {
                high_watermark
            };
            let limit = (p.max_bytes.max(0) as usize).min(max_bytes.saturating_sub(total));
            let first_with_data = total == 0;
            // The first partition with data gets its first batch even when its
            // limit is 0 (Kafka's minOneMessage); the others only what fits.
            let diverging = match follower {
                Follower::Diverging(epoch, end) => Some((*epoch, *end)),
                _ => None,
            };
            let skip = diverging.is_some() || p.preferred_read_replica.is_some();
            let records = if matches!(follower, Follower::NotAReplica) {
                Err(Error::NotLeaderOrFollower {
                    topic: p.topic.clone(),
                    partition: p.partition,
                })
            } else if (limit == 0 && !first_with_data) || skip {
                Ok(None)
            } else {
                log.read_slice_below(p.fetch_offset, limit.max(1), upper)
                    .map(|slice| slice.filter(|s| first_with_data || s.len <= limit))
            };
            if let Ok(Some(slice)) = &records {
                total += slice.len;
            }
            // Every aborted transaction that may overlap what was read (up to the
            // LSO); clients skip the ones past their data. Nothing read, none.
            let read_any = matches!(records, Ok(Some(_)));
            let aborted = read_committed.then(|| match read_any {
                true => log.aborted_transactions(p.fetch_offset, last_stable_offset),
                false => Vec::new(),
            });
            FetchPartitionData {
                records,
                high_watermark,
                log_start_offset,
                last_stable_offset,
                aborted,
                diverging,
            }
        })
        .collect();
    (read, total)
}
