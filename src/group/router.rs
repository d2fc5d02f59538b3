//! The group coordinator of a broker: one [`GroupShard`] for each
//! `__consumer_offsets` partition it leads (Kafka's coordinator runtime).
//!
//! A group belongs to the partition its id hashes to (Kafka's
//! `abs(groupId.hashCode()) % partitions`, the same hash FindCoordinator
//! uses), so every request about it goes to that partition's leader. When
//! this broker becomes the leader of a partition, the shard is loaded from the
//! partition's log (requests answer COORDINATOR_LOAD_IN_PROGRESS meanwhile);
//! when it stops leading it, the shard is dropped (NOT_COORDINATOR; the
//! clients find the new coordinator). On one broker there is one partition,
//! always led here.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, RwLock};

use super::consumer::topics::TopicsView;
use super::coordinator::{GroupShard, TopicPartition};
use super::shard_log::{LocalLog, ShardLog};
use super::state::GroupConfig;
use crate::error::{Error, Result};
use crate::log::manager::{is_internal_topic, LogManager, OFFSETS_TOPIC};
use crate::util::hash::coordinator_partition;

type View = Arc<dyn Fn() -> TopicsView + Send + Sync>;

/// The topics consumer-protocol subscriptions resolve against: the broker's
/// own on one broker, the cluster's metadata in a cluster (set once it is
/// known). Shared by every shard.
#[derive(Clone)]
pub struct Catalog(Arc<RwLock<View>>);

impl Catalog {
    pub fn local(logs: &Arc<LogManager>) -> Catalog {
        let logs = Arc::downgrade(logs);
        Catalog::new(Arc::new(move || {
            let topics = logs.upgrade().map(|l| l.topics()).unwrap_or_default();
            TopicsView::new(topics.into_iter().map(|t| {
                let internal = is_internal_topic(&t.name);
                (t.name.clone(), t.id, t.partitions.len() as i32, internal)
            }))
        }))
    }

    pub fn new(view: View) -> Catalog {
        Catalog(Arc::new(RwLock::new(view)))
    }

    pub fn view(&self) -> TopicsView {
        let view = self.0.read().unwrap_or_else(|e| e.into_inner()).clone();
        view()
    }

    pub fn set(&self, view: View) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = view;
    }
}

#[derive(Clone)]
enum Slot {
    /// Being read from the partition's log, for this leader epoch; the
    /// transactions that ended meanwhile (producer id, committed), applied
    /// once it is read (again, if the read saw their markers: no change).
    Loading {
        epoch: i32,
        ended: Vec<(i64, bool)>,
    },
    Ready {
        epoch: i32,
        shard: Arc<GroupShard>,
    },
}

pub struct GroupCoordinator {
    config: GroupConfig,
    catalog: Catalog,
    /// How many partitions `__consumer_offsets` has: group ids hash over them.
    partitions: AtomicI32,
    shards: RwLock<BTreeMap<i32, Slot>>,
}

impl GroupCoordinator {
    /// A coordinator with no shard yet (a cluster's broker, before it leads
    /// any `__consumer_offsets` partition).
    pub fn new(config: GroupConfig, catalog: Catalog) -> GroupCoordinator {
        GroupCoordinator {
            config,
            catalog,
            partitions: AtomicI32::new(1),
            shards: RwLock::new(BTreeMap::new()),
        }
    }

    /// One broker's coordinator: every partition of its own
    /// `__consumer_offsets` (created with one partition if missing), loaded.
    pub fn open(logs: &Arc<LogManager>, config: GroupConfig, now: i64) -> Result<GroupCoordinator> {
        let coordinator = GroupCoordinator::new(config, Catalog::local(logs));
        let topic = GroupShard::local_offsets_topic(logs, now)?;
        coordinator.set_partitions(topic.partitions.len() as i32);
        for p in &topic.partitions {
            coordinator.elect(p.index, 0, Arc::new(LocalLog(p.clone())), now)?;
        }
        Ok(coordinator)
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn consumer_config(&self) -> &super::consumer::ConsumerConfig {
        &self.config.consumer
    }

    /// `__consumer_offsets` has `n` partitions (as the cluster's metadata says).
    pub fn set_partitions(&self, n: i32) {
        self.partitions.store(n.max(1), Ordering::Relaxed);
    }

    /// The `__consumer_offsets` partition that holds `group`'s offsets, which
    /// AddOffsetsToTxn adds to a transaction.
    pub fn offsets_partition(&self, group: &str) -> TopicPartition {
        let partitions = self.partitions.load(Ordering::Relaxed);
        (OFFSETS_TOPIC.to_string(), coordinator_partition(group, partitions))
    }

    fn slots(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<i32, Slot>> {
        self.shards.read().unwrap_or_else(|e| e.into_inner())
    }

    fn slots_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<i32, Slot>> {
        self.shards.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The shard coordinating `group`: NOT_COORDINATOR if this broker does
    /// not lead its partition, COORDINATOR_LOAD_IN_PROGRESS while it loads.
    pub fn shard(&self, group: &str) -> Result<Arc<GroupShard>> {
        let (_, partition) = self.offsets_partition(group);
        match self.slots().get(&partition) {
            Some(Slot::Ready { shard, .. }) => Ok(shard.clone()),
            Some(Slot::Loading { .. }) => Err(Error::CoordinatorLoadInProgress(partition)),
            None => Err(Error::NotCoordinator),
        }
    }

    /// The shard of partition `partition`, if it is loaded here.
    pub fn shard_at(&self, partition: i32) -> Option<Arc<GroupShard>> {
        match self.slots().get(&partition) {
            Some(Slot::Ready { shard, .. }) => Some(shard.clone()),
            _ => None,
        }
    }

    /// Every loaded shard.
    pub fn shards(&self) -> Vec<Arc<GroupShard>> {
        self.slots()
            .values()
            .filter_map(|s| match s {
                Slot::Ready { shard, .. } => Some(shard.clone()),
                Slot::Loading { .. } => None,
            })
            .collect()
    }

    /// Partition → the leader epoch its shard is loaded (or loading) for.
    pub fn held(&self) -> BTreeMap<i32, i32> {
        self.slots()
            .iter()
            .map(|(p, s)| match s {
                Slot::Loading { epoch, .. } | Slot::Ready { epoch, .. } => (*p, *epoch),
            })
            .collect()
    }

    /// Start coordinating `partition` at leader `epoch`: false if it already
    /// is (loaded or loading at that epoch). Requests wait with
    /// COORDINATOR_LOAD_IN_PROGRESS until [`Self::finish_load`].
    pub fn begin_load(&self, partition: i32, epoch: i32) -> bool {
        let mut slots = self.slots_mut();
        match slots.get(&partition) {
            Some(Slot::Loading { epoch: e, .. } | Slot::Ready { epoch: e, .. }) if *e == epoch => false,
            _ => {
                let ended = Vec::new();
                slots.insert(partition, Slot::Loading { epoch, ended });
                true
            }
        }
    }

    /// Read the shard of `partition` from `log` (the blocking part) and serve
    /// it, unless leadership moved on meanwhile.
    pub fn finish_load(&self, partition: i32, epoch: i32, log: Arc<dyn ShardLog>, now: i64) -> Result<()> {
        let loaded = GroupShard::load(log, self.config.clone(), self.catalog.clone(), now);
        let mut slots = self.slots_mut();
        let ended = match slots.get_mut(&partition) {
            Some(Slot::Loading { epoch: e, ended }) if *e == epoch => std::mem::take(ended),
            _ => return Ok(()),
        };
        match loaded {
            Ok(shard) => {
                for (producer_id, commit) in ended {
                    shard.complete_txn(producer_id, commit);
                }
                let shard = Arc::new(shard);
                slots.insert(partition, Slot::Ready { epoch, shard });
                Ok(())
            }
            Err(e) => {
                slots.remove(&partition);
                Err(e)
            }
        }
    }

    /// [`Self::begin_load`] and [`Self::finish_load`] in one go.
    pub fn elect(&self, partition: i32, epoch: i32, log: Arc<dyn ShardLog>, now: i64) -> Result<()> {
        match self.begin_load(partition, epoch) {
            true => self.finish_load(partition, epoch, log, now),
            false => Ok(()),
        }
    }

    /// Stop coordinating `partition` (another broker leads it now).
    pub fn resign(&self, partition: i32) {
        if self.slots_mut().remove(&partition).is_some() {
            tracing::info!(partition, "group coordinator shard resigned");
        }
    }

    /// Every session in every group starts again from now (see
    /// [`GroupShard::forgive_pause`]).
    pub fn forgive_pause(&self, now: i64) {
        for shard in self.shards() {
            shard.forgive_pause(now);
        }
    }

    /// Expire members and finish timed-out rebalances in every group.
    pub fn tick(&self, now: i64) {
        for shard in self.shards() {
            shard.tick(now);
        }
    }

    /// Every group coordinated here ([`GroupShard::list`]), sorted.
    pub fn list(&self) -> Vec<(String, String, &'static str)> {
        let mut all: Vec<_> = self.shards().iter().flat_map(|s| s.list()).collect();
        all.sort();
        all
    }

    /// A topic was deleted: every group here forgets its offsets.
    pub async fn topic_deleted(&self, topic: &str, now: i64) -> Result<()> {
        for shard in self.shards() {
            shard.topic_deleted(topic, now).await?;
        }
        Ok(())
    }

    /// A transaction marker was written to `partition`: the offsets the
    /// producer's transaction committed there complete (or are dropped).
    pub fn complete_txn(&self, partition: i32, producer_id: i64, commit: bool) {
        let mut slots = self.slots_mut();
        match slots.get_mut(&partition) {
            Some(Slot::Ready { shard, .. }) => shard.complete_txn(producer_id, commit),
            Some(Slot::Loading { ended, .. }) => ended.push((producer_id, commit)),
            None => {}
        }
    }
}
