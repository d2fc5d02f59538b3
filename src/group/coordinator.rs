//! A group coordinator shard: the groups of one `__consumer_offsets`
//! partition (those whose id hashes to it), their committed offsets, and the
//! durable record of both in that partition. The broker holds a shard for
//! each partition it leads ([`super::router::GroupCoordinator`]).
//!
//! One mutex guards the groups and offsets; it is never held across an await.
//! Records are appended to the internal log under it (so they land in the order the
//! state changed) and made durable after it is released.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::consumer::group::ConsumerGroup;
use super::member::{JoinArgs, JoinResult, Member, MemberProfile, MemberRef, SyncResult};
use super::record_serde::{self, CoordinatorRecord, GroupMetadataValue, MemberMetadata, OffsetCommitValue, Stored};
use super::router::Catalog;
use super::shard_log::{LocalLog, ShardLog};
use super::state::{Group, GroupConfig, GroupState};
use crate::error::{Error, Result};
use crate::log::manager::{offsets_topic_configs, LogManager, OFFSETS_TOPIC};
use crate::log::unified_log::UnifiedLog;

/// Kafka's offset.metadata.max.bytes.
const OFFSET_METADATA_MAX_BYTES: usize = 4096;

pub type TopicPartition = (String, i32);

mod consumer;
mod offsets;

pub use consumer::{ConsumerGroupDescription, ConsumerMemberDescription, GroupType, NamedAssignment};
pub use offsets::VerifiedProducer;

/// A committed offset and the `__consumer_offsets` offset of its record. When a
/// transaction's offsets complete, a partition keeps the later record of the two
/// (Kafka's replayEndTransactionMarker): a plain commit made after a
/// transactional one stays, and the answer is the same after compaction.
#[derive(Debug, Clone)]
struct Committed {
    value: OffsetCommitValue,
    record_offset: i64,
}

/// A group's offsets, by partition.
type GroupOffsets = BTreeMap<TopicPartition, Committed>;

#[derive(Default)]
struct Inner {
    groups: HashMap<String, Group>,
    offsets: HashMap<String, GroupOffsets>,
    /// Offsets committed in transactions not yet ended, by producer id.
    pending: HashMap<i64, offsets::PendingOffsets>,
    /// Groups of the consumer protocol (KIP-848), by id; an id is in `groups`
    /// or here, never both.
    consumer: HashMap<String, ConsumerGroup>,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: &'static str,
    /// −1 for a group that does not exist. (Not in DescribeGroups; for tools.)
    pub generation_id: i32,
    pub protocol_type: String,
    pub protocol_name: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

pub struct GroupShard {
    config: GroupConfig,
    log: Arc<dyn ShardLog>,
    /// The topics consumer-protocol subscriptions resolve against.
    catalog: Catalog,
    inner: Mutex<Inner>,
}

fn group_record(g: &Group, now: i64) -> CoordinatorRecord {
    let protocol = g.protocol_name.clone().unwrap_or_default();
    let value = (g.state != GroupState::Dead).then(|| GroupMetadataValue {
        protocol_type: g.protocol_type.clone().unwrap_or_default(),
        generation_id: g.generation_id,
        protocol_name: g.protocol_name.clone(),
        leader_id: g.leader_id.clone(),
        state_timestamp: now,
        members: g
            .members
            .values()
            .map(|m| MemberMetadata {
                profile: MemberProfile {
                    protocols: vec![(protocol.clone(), m.metadata_for(&protocol))],
                    ..m.profile.clone()
                },
                assignment: m.assignment.clone(),
            })
            .collect(),
    });
    CoordinatorRecord::GroupMetadata {
        group: g.group_id.clone(),
        value,
    }
}

fn restore_group(group_id: &str, r: GroupMetadataValue, now: i64) -> Group {
    let members = r
        .members
        .into_iter()
        .map(|m| Member {
            assignment: m.assignment,
            ..Member::new(m.profile, now)
        })
        .collect();
    let protocol_type = Some(r.protocol_type).filter(|p| !p.is_empty());
    Group::restore(
        group_id,
        r.generation_id,
        protocol_type,
        r.protocol_name,
        r.leader_id,
        members,
    )
}

/// The longest group id, instance id or protocol name: an i16-prefixed string.
const NAME_MAX: usize = i16::MAX as usize;

impl GroupShard {
    /// A shard on a broker's own `__consumer_offsets` partition 0 (created if
    /// missing), with the broker's own topics for subscriptions: one broker's
    /// coordinator as its tests see it.
    pub fn open(logs: &Arc<LogManager>, config: GroupConfig, now: i64) -> Result<GroupShard> {
        let log = Self::local_offsets_topic(logs, now)?.partitions[0].clone();
        Self::load(Arc::new(LocalLog(log)), config, Catalog::local(logs), now)
    }

    /// A broker's own `__consumer_offsets` (one partition), created if missing.
    pub fn local_offsets_topic(logs: &LogManager, now: i64) -> Result<Arc<crate::log::manager::Topic>> {
        match logs.topic(OFFSETS_TOPIC) {
            Some(t) => Ok(t),
            None => logs.create_topic(OFFSETS_TOPIC, 1, &offsets_topic_configs(), now),
        }
    }

    /// Load a shard from its partition, replaying every stored record (the
    /// whole log: a new leader's log is the truth, replicated or not yet).
    pub fn load(log: Arc<dyn ShardLog>, config: GroupConfig, catalog: Catalog, now: i64) -> Result<GroupShard> {
        let mut inner = Inner::default();
        let replayed = Self::replay_log(log.log(), &mut inner, now)?;
        for g in inner.consumer.values_mut() {
            g.restart_timers(&config.consumer, now);
        }
        tracing::info!(
            partition = log.log().index,
            groups = inner.groups.len(),
            consumer_groups = inner.consumer.len(),
            records = replayed,
            "group coordinator shard loaded"
        );
        Ok(GroupShard {
            config,
            log,
            catalog,
            inner: Mutex::new(inner),
        })
    }

    fn replay_log(log: &UnifiedLog, inner: &mut Inner, now: i64) -> Result<usize> {
        let mut offset = log.log_start_offset();
        let end = log.log_end_offset();
        let mut replayed = 0usize;
        while offset < end {
            let batches = log.read(offset, 1 << 20)?;
            if batches.is_empty() {
                break;
            }
            for (_, h) in crate::record::batch::Batches::new(&batches) {
                offset = h.last_offset() + 1;
            }
            for stored in record_serde::decode_batches(batches)? {
                replayed += 1;
                Self::replay(inner, stored, now);
            }
        }
        Ok(replayed)
    }

    /// The `__consumer_offsets` partition this shard keeps.
    pub fn partition(&self) -> i32 {
        self.log.log().index
    }

    fn replay(inner: &mut Inner, stored: Stored, now: i64) {
        match stored {
            Stored::Record { offset, record } => Self::apply(inner, record, offset, now),
            Stored::TxnEnd { producer_id, commit } => Self::end_txn(inner, producer_id, commit),
            Stored::InTransaction {
                offset,
                producer_id,
                record:
                    CoordinatorRecord::OffsetCommit {
                        group,
                        topic,
                        partition,
                        value: Some(value),
                    },
            } => {
                let by_group = inner.pending.entry(producer_id).or_default();
                let committed = Committed {
                    value,
                    record_offset: offset,
                };
                by_group.entry(group).or_default().insert((topic, partition), committed);
            }
            // Kafka's transactions carry only offset commits.
            Stored::InTransaction { producer_id, .. } => {
                tracing::warn!(
                    producer_id,
                    "ignoring a transactional group record that is not an offset commit"
                );
            }
        }
    }

    fn apply(inner: &mut Inner, record: CoordinatorRecord, record_offset: i64, now: i64) {
        match record {
            CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                value: Some(value),
            } => {
                let committed = Committed { value, record_offset };
                inner
                    .offsets
                    .entry(group)
                    .or_default()
                    .insert((topic, partition), committed);
            }
            CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                value: None,
            } => {
                Self::remove_offset(inner, &group, &(topic, partition));
            }
            CoordinatorRecord::GroupMetadata { group, value: None } => {
                inner.groups.remove(&group);
            }
            CoordinatorRecord::GroupMetadata { group, value: Some(r) } => {
                inner.groups.insert(group.clone(), restore_group(&group, r, now));
            }
            CoordinatorRecord::Consumer(r) => Self::replay_consumer(inner, r),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append records to the internal log; returns the offset to flush to.
    fn append(&self, records: &[CoordinatorRecord], now: i64) -> Result<i64> {
        let batch = record_serde::encode_batch(records, None, now)?;
        Ok(self.log.append(&batch, None, now)?.log_end_offset)
    }

    /// Write the group's record if its durable state changed; the flush is left to
    /// the caller (or to the next durable write).
    fn persist_if_dirty(&self, group: &mut Group, now: i64) -> Option<i64> {
        if !group.take_dirty() {
            return None;
        }
        match self.append(&[group_record(group, now)], now) {
            Ok(end) => Some(end),
            Err(e) => {
                tracing::error!(group = %group.group_id, error = %e, "cannot write group metadata");
                None
            }
        }
    }

    async fn flush(&self, end: Option<i64>, now: i64) -> Result<()> {
        if let Some(end) = end {
            self.log.commit(end, now).await?;
        }
        Ok(())
    }

    // ---- membership -------------------------------------------------------------

    pub async fn join(&self, group_id: &str, args: JoinArgs, now: i64) -> Result<JoinResult> {
        if group_id.is_empty() || group_id.len() > NAME_MAX {
            return Err(Error::InvalidGroupId(group_id.to_string()));
        }
        // Flexible JoinGroup versions allow longer strings than the group's record
        // and the older responses that carry them can hold: one such member would
        // make its whole group unanswerable.
        let p = &args.profile;
        let too_long = p.group_instance_id.as_ref().is_some_and(|i| i.len() > NAME_MAX)
            || args.protocol_type.len() > NAME_MAX
            || p.protocols.iter().any(|(name, _)| name.len() > NAME_MAX);
        if too_long {
            return Err(Error::InvalidRequest(format!(
                "group instance ids, protocol types and protocol names are at most {NAME_MAX} bytes"
            )));
        }
        if let Some(routed) = self.classic_join_consumer(group_id, &args, now) {
            let (result, end) = routed?;
            self.flush(end, now).await?;
            return Ok(result);
        }
        let member_id = args.profile.member_id.clone();
        let pending = {
            let mut inner = self.lock();
            if !inner.groups.contains_key(group_id) && !args.profile.member_id.is_empty() {
                return Err(Error::UnknownMemberId(args.profile.member_id));
            }
            let group = inner
                .groups
                .entry(group_id.to_string())
                .or_insert_with(|| Group::new(group_id));
            let pending = group.join(args, &self.config, now);
            let end = self.persist_if_dirty(group, now);
            (pending, end)
        };
        self.flush(pending.1, now).await?;
        let result = pending.0.resolve(&member_id).await?;
        // A rebalance completed by this join may have changed the durable state.
        self.persist_group(group_id, now).await;
        Ok(result)
    }

    async fn persist_group(&self, group_id: &str, now: i64) {
        let end = {
            let mut inner = self.lock();
            match inner.groups.get_mut(group_id) {
                Some(g) => self.persist_if_dirty(g, now),
                None => None,
            }
        };
        if let Err(e) = self.flush(end, now).await {
            tracing::error!(group = group_id, error = %e, "cannot flush group metadata");
        }
    }

    pub async fn sync(
        &self,
        group_id: &str,
        caller: MemberRef<'_>,
        assignments: Vec<(String, Bytes)>,
        now: i64,
    ) -> Result<SyncResult> {
        let member_id = caller.member_id;
        if let Some(synced) = self.classic_sync_consumer(group_id, caller, now) {
            return synced;
        }
        let (pending, end) = {
            let mut inner = self.lock();
            let Some(group) = inner.groups.get_mut(group_id) else {
                return Err(Error::UnknownMemberId(member_id.to_string()));
            };
            let pending = group.sync(caller, assignments, now);
            let end = self.persist_if_dirty(group, now);
            (pending, end)
        };
        // Kafka answers SyncGroup once the new assignment is durable.
        self.flush(end, now).await?;
        pending.resolve(member_id).await
    }

    pub fn heartbeat(&self, group_id: &str, caller: MemberRef<'_>, now: i64) -> Result<()> {
        let mut inner = self.lock();
        if let Some(r) = self.classic_heartbeat_consumer(&mut inner, group_id, caller, now) {
            return r;
        }
        let group = inner
            .groups
            .get_mut(group_id)
            .ok_or_else(|| Error::UnknownMemberId(caller.member_id.to_string()))?;
        group.heartbeat(caller, now)
    }

    /// Remove leaving members; one result per member.
    pub fn leave(&self, group_id: &str, members: &[(String, Option<String>)], now: i64) -> Result<Vec<Result<()>>> {
        let mut inner = self.lock();
        if let Some(results) = self.classic_leave_consumer(&mut inner, group_id, members, now) {
            return Ok(results);
        }
        let group = inner
            .groups
            .get_mut(group_id)
            .ok_or_else(|| Error::UnknownMemberId(String::new()))?;
        let results = members
            .iter()
            .map(|(id, instance)| group.leave(id, instance.as_deref(), &self.config, now))
            .collect();
        self.persist_if_dirty(group, now);
        Ok(results)
    }

    /// This broker did not run for a while (paused, starved): no member
    /// could reach it, so every session starts again from now rather than
    /// expire (and, in a cluster, the metadata is caught up with first).
    pub fn forgive_pause(&self, now: i64) {
        let mut inner = self.lock();
        for group in inner.groups.values_mut() {
            group.restart_sessions(now);
        }
        for group in inner.consumer.values_mut() {
            group.restart_timers(&self.config.consumer, now);
        }
    }

    /// Expire members and finish timed-out rebalances in every group.
    pub fn tick(&self, now: i64) {
        let mut inner = self.lock();
        for group in inner.groups.values_mut() {
            group.tick(&self.config, now);
            self.persist_if_dirty(group, now);
        }
        self.tick_consumer(&mut inner, now);
    }

    // ---- administration --------------------------------------------------------

    /// A group's description; a consumer-protocol group's in the same shape
    /// (its members' assignments encoded as a classic consumer's would be).
    pub fn describe(&self, group_id: &str) -> GroupDescription {
        let inner = self.lock();
        if let Some(d) = self.describe_consumer_as_classic(&inner, group_id) {
            return d;
        }
        let Some(g) = inner.groups.get(group_id) else {
            return GroupDescription {
                group_id: group_id.to_string(),
                state: GroupState::Dead.as_str(),
                generation_id: -1,
                protocol_type: String::new(),
                protocol_name: String::new(),
                members: Vec::new(),
            };
        };
        let protocol = g.protocol_name.clone().unwrap_or_default();
        // Kafka shows members' assignments only once they exist (Stable).
        let stable = g.state == GroupState::Stable;
        GroupDescription {
            group_id: g.group_id.clone(),
            state: g.state.as_str(),
            generation_id: g.generation_id,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_name: if stable { protocol.clone() } else { String::new() },
            members: g
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.profile.member_id.clone(),
                    group_instance_id: m.profile.group_instance_id.clone(),
                    client_id: m.profile.client_id.clone(),
                    client_host: m.profile.client_host.clone(),
                    metadata: if stable {
                        m.metadata_for(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable { m.assignment.clone() } else { Bytes::new() },
                })
                .collect(),
        }
    }

    /// (group id, protocol type, state) of every group, including groups that only
    /// hold committed offsets (shown as Empty); consumer-protocol groups have
    /// protocol type "consumer" and their own state names ([`Self::group_type`]
    /// tells them apart).
    pub fn list(&self) -> Vec<(String, String, &'static str)> {
        let inner = self.lock();
        let consumer: Vec<_> = Self::list_consumer(&inner).collect();
        let mut out: Vec<_> = inner
            .groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| {
                (
                    g.group_id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state.as_str(),
                )
            })
            .collect();
        for id in inner.offsets.keys() {
            if !inner.groups.contains_key(id) && !inner.consumer.contains_key(id) {
                out.push((id.clone(), String::new(), GroupState::Empty.as_str()));
            }
        }
        out.extend(
            consumer
                .into_iter()
                .map(|(id, state)| (id, "consumer".to_string(), state)),
        );
        out.sort();
        out
    }

    /// Delete a group without members, with its offsets.
    pub async fn delete_group(&self, group_id: &str, now: i64) -> Result<()> {
        let end = {
            let mut inner = self.lock();
            let stored = Self::stored_partitions(&inner, group_id);
            let consumer_records = self.delete_consumer_group(&mut inner, group_id)?;
            match inner.groups.get_mut(group_id) {
                Some(g) => g.mark_dead()?,
                None if !stored.is_empty() || consumer_records.is_some() => {}
                None => return Err(Error::GroupIdNotFound(group_id.to_string())),
            }
            // Offsets still pending in transactions go too (tombstones end them).
            for tp in &stored {
                Self::remove_offset(&mut inner, group_id, tp);
            }
            let mut records: Vec<CoordinatorRecord> = stored
                .into_iter()
                .map(|(topic, partition)| CoordinatorRecord::OffsetCommit {
                    group: group_id.to_string(),
                    topic,
                    partition,
                    value: None,
                })
                .collect();
            match consumer_records {
                Some(consumer) => records.extend(consumer),
                None => records.push(CoordinatorRecord::GroupMetadata {
                    group: group_id.to_string(),
                    value: None,
                }),
            }
            inner.groups.remove(group_id);
            self.append(&records, now)?
        };
        self.flush(Some(end), now).await
    }
}
