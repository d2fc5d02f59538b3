//! In a cluster, the coordinators follow the leadership of their internal
//! topics: this broker coordinates the groups of each `__consumer_offsets`
//! partition it leads (writing through [`LedShardLog`]) and the transactional
//! ids of each `__transaction_state` partition it leads (through
//! [`super::txn_cluster::LedTxnLog`]), and stops when another broker leads it.

use std::sync::Arc;
use std::time::Duration;

use super::txn_cluster::LedTxnLog;
use super::Broker;
use crate::cluster::image::MetadataImage;
use crate::error::{Error, Result};
use crate::group::shard_log::{Committing, ShardLog};
use crate::log::manager::{OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC};
use crate::log::producer_state::VerificationGuard;
use crate::log::unified_log::{AppendInfo, UnifiedLog};
use crate::replica::replica_manager::ReplicaManager;
use crate::util::clock::now_ms;

/// A `__consumer_offsets` partition this broker leads at `epoch`: writes go
/// in only while it still does, and are committed once the in-sync replicas
/// have them (as an acks=all produce is).
pub struct LedShardLog {
    replicas: Arc<ReplicaManager>,
    log: Arc<UnifiedLog>,
    epoch: i32,
    /// offsets.commit.timeout.ms
    timeout: Duration,
}

impl ShardLog for LedShardLog {
    fn log(&self) -> &Arc<UnifiedLog> {
        &self.log
    }

    fn append(&self, batch: &[u8], guard: Option<VerificationGuard>, now_ms: i64) -> Result<AppendInfo> {
        // Led here at the shard's epoch, or no longer coordinated here.
        self.replicas
            .leader_log(OFFSETS_TOPIC, self.log.index, self.epoch)
            .map_err(|_| Error::NotCoordinator)?;
        let info = match guard {
            Some(guard) => self.log.append_as_coordinator(batch, guard, now_ms),
            None => self.log.append(batch, now_ms),
        }?;
        self.replicas.appended(&self.log);
        Ok(info)
    }

    fn commit(&self, end: i64, now_ms: i64) -> Committing<'_> {
        Box::pin(async move {
            self.log.flush_to(end, now_ms).await?;
            let deadline = tokio::time::Instant::now() + self.timeout;
            // Kafka's answers to a commit whose replication failed.
            self.replicas
                .replicated(&self.log, end, deadline)
                .await
                .map_err(|e| match e {
                    Error::NotLeaderOrFollower { .. } => Error::NotCoordinator,
                    Error::RequestTimedOut(_)
                    | Error::NotEnoughReplicas { .. }
                    | Error::NotEnoughReplicasAfterAppend { .. } => {
                        Error::CoordinatorNotAvailable("the in-sync replicas did not copy the commit in time")
                    }
                    e => e,
                })
        })
    }
}

impl Broker {
    /// Coordinate the groups and transactional ids of the internal
    /// partitions `image` says this broker leads, and no others. Called once
    /// the image is applied to the replicas.
    pub fn follow_coordinator_leadership(self: &Arc<Self>, image: &MetadataImage) {
        self.follow_offsets_leadership(image);
        self.follow_transaction_state_leadership(image);
    }

    /// The group coordinator's shards: one per `__consumer_offsets`
    /// partition led here, each loaded off the async workers.
    fn follow_offsets_leadership(self: &Arc<Self>, image: &MetadataImage) {
        let me = self.node_id();
        let held = self.groups.held();
        let Some(topic) = image.topic(OFFSETS_TOPIC) else {
            held.keys().for_each(|p| self.groups.resign(*p));
            return;
        };
        self.groups.set_partitions(topic.partitions.len() as i32);
        for (index, p) in &topic.partitions {
            let state = image.describe(*index, &p.record);
            let epoch = state.leader_epoch;
            if state.leader != me {
                if held.contains_key(index) {
                    self.groups.resign(*index);
                }
                continue;
            }
            // The replica is made by the image's application; none: not yet.
            let Ok(log) = self.logs.partition(OFFSETS_TOPIC, *index) else {
                continue;
            };
            if !self.groups.begin_load(*index, epoch) {
                continue;
            }
            let shard_log = Arc::new(LedShardLog {
                replicas: self.replicas.clone(),
                log,
                epoch,
                timeout: Duration::from_millis(self.config.cluster.offsets_commit_timeout_ms),
            });
            let broker = self.clone();
            let index = *index;
            tokio::task::spawn_blocking(move || {
                if let Err(e) = broker.groups.finish_load(index, epoch, shard_log, now_ms()) {
                    tracing::error!(partition = index, error = %e, "cannot load a group coordinator shard");
                }
            });
        }
        for p in held.keys().filter(|p| !topic.partitions.contains_key(p)) {
            self.groups.resign(*p);
        }
    }

    /// The transaction coordinator's partitions of `__transaction_state`:
    /// each one led here is loaded off the async workers, then the decided
    /// transactions in it get their markers (a coordinator that failed over
    /// finishes what the last one decided).
    fn follow_transaction_state_leadership(self: &Arc<Self>, image: &MetadataImage) {
        let me = self.node_id();
        let store = self.transactions.store();
        let held = store.held();
        let Some(topic) = image.topic(TRANSACTION_STATE_TOPIC) else {
            held.keys().for_each(|p| store.resign(*p));
            return;
        };
        store.set_partitions(topic.partitions.len() as i32);
        for (index, p) in &topic.partitions {
            let state = image.describe(*index, &p.record);
            let epoch = state.leader_epoch;
            if state.leader != me {
                if held.contains_key(index) {
                    store.resign(*index);
                }
                continue;
            }
            let Ok(log) = self.logs.partition(TRANSACTION_STATE_TOPIC, *index) else {
                continue;
            };
            if !store.begin_load(*index, epoch) {
                continue;
            }
            let txn_log = Arc::new(LedTxnLog {
                replicas: self.replicas.clone(),
                log,
                epoch,
            });
            let broker = self.clone();
            let index = *index;
            tokio::task::spawn_blocking(move || {
                let store = broker.transactions.store();
                match store.finish_load(index, epoch, txn_log) {
                    Ok(()) => broker.transactions.complete_pending(&broker.markers(), now_ms()),
                    Err(e) => tracing::error!(partition = index, error = %e, "cannot load transaction state"),
                }
            });
        }
        for p in held.keys().filter(|p| !topic.partitions.contains_key(p)) {
            store.resign(*p);
        }
    }
}
