//! The coordinator's side of consumer-protocol groups (KIP-848): heartbeats,
//! descriptions, commits by member epoch, deletion, expiry, and replay of their
//! records. A group id names either a classic group or a consumer group.

use super::*;
use crate::group::consumer::group::{ConsumerGroupState, HeartbeatArgs, HeartbeatResult};
use crate::group::consumer::records::ConsumerRecord;
use crate::group::consumer::topics::TopicsView;
use crate::group::member::{JoinArgs, JoinResult, SyncResult};

/// A consumer group as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone)]
pub struct ConsumerGroupDescription {
    pub group_id: String,
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<ConsumerMemberDescription>,
}

/// Partitions by topic: id, name (empty if the topic is gone) and partitions.
pub type NamedAssignment = Vec<(uuid::Uuid, String, Vec<i32>)>;

#[derive(Debug, Clone)]
pub struct ConsumerMemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub assignment: NamedAssignment,
    pub target: NamedAssignment,
    /// A classic-protocol member (during a migration).
    pub classic: bool,
}

/// Which protocol a group id is in use with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupType {
    Classic,
    Consumer,
}

impl GroupType {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupType::Classic => "classic",
            GroupType::Consumer => "consumer",
        }
    }
}

fn named(a: &crate::group::consumer::assignor::Assignment, topics: &TopicsView) -> NamedAssignment {
    a.iter()
        .map(|(id, ps)| {
            let name = topics.name_of(id).unwrap_or_default().to_string();
            (*id, name, ps.iter().copied().collect())
        })
        .collect()
}

impl GroupShard {
    pub(super) fn replay_consumer(inner: &mut Inner, r: ConsumerRecord) {
        let group = r.group().to_string();
        if let ConsumerRecord::Metadata { epoch: None, .. } = r {
            inner.consumer.remove(&group);
            return;
        }
        inner.groups.remove(&group);
        inner
            .consumer
            .entry(group.clone())
            .or_insert_with(|| ConsumerGroup::new(&group))
            .replay(r);
    }

    pub fn consumer_config(&self) -> &crate::group::consumer::ConsumerConfig {
        &self.config.consumer
    }

    /// The topics as subscriptions see them now.
    pub fn topics_view(&self) -> TopicsView {
        self.catalog.view()
    }

    /// Which protocol `group_id` is used with, if it exists.
    pub fn group_type(&self, group_id: &str) -> Option<GroupType> {
        let inner = self.lock();
        if inner.consumer.contains_key(group_id) {
            Some(GroupType::Consumer)
        } else if inner.groups.get(group_id).is_some_and(|g| g.state != GroupState::Dead)
            || inner.offsets.contains_key(group_id)
        {
            Some(GroupType::Classic)
        } else {
            None
        }
    }

    fn append_consumer(&self, records: Vec<ConsumerRecord>, now: i64) -> Result<Option<i64>> {
        if records.is_empty() {
            return Ok(None);
        }
        let records: Vec<CoordinatorRecord> = records.into_iter().map(CoordinatorRecord::Consumer).collect();
        self.append(&records, now).map(Some)
    }

    /// ConsumerGroupHeartbeat: join (epoch 0), heartbeat, or leave (−1, −2).
    /// The request's own checks are the handler's; these are the group's.
    pub async fn consumer_heartbeat(&self, group_id: &str, args: HeartbeatArgs, now: i64) -> Result<HeartbeatResult> {
        let topics = self.topics_view();
        let config = &self.config.consumer;
        let args_epoch = args.member_epoch;
        let (result, end) = {
            let mut inner = self.lock();
            let mut out = Vec::new();
            let mut classic_records = Vec::new();
            // The group as it was, put back if its records cannot be written: a
            // member the log does not know must not hold partitions.
            let snapshot = inner.consumer.get(group_id).cloned();
            // The group as an upgrade made it, to turn it back if the join fails.
            let mut upgraded = None;
            if !inner.consumer.contains_key(group_id) {
                if args.member_epoch != 0 {
                    return Err(Error::GroupIdNotFound(group_id.to_string()));
                }
                match inner.groups.get(group_id) {
                    // An empty classic group (perhaps only offsets) becomes a
                    // consumer group; its offsets stay where they are.
                    Some(g) if g.is_empty() => {
                        inner.groups.remove(group_id);
                        classic_records.push(CoordinatorRecord::GroupMetadata {
                            group: group_id.to_string(),
                            value: None,
                        });
                        inner
                            .consumer
                            .insert(group_id.to_string(), ConsumerGroup::new(group_id));
                    }
                    Some(_) => {
                        classic_records = self.upgrade(&mut inner, group_id, now)?;
                        upgraded = inner.consumer.get(group_id).cloned();
                    }
                    None => {
                        inner
                            .consumer
                            .insert(group_id.to_string(), ConsumerGroup::new(group_id));
                    }
                }
            }
            let Some(group) = inner.consumer.get_mut(group_id) else {
                return Err(Error::GroupIdNotFound(group_id.to_string()));
            };
            let result = if args.member_epoch < 0 {
                group.leave(
                    &args.member_id,
                    args.instance_id.as_deref(),
                    args.member_epoch,
                    config,
                    now,
                    &mut out,
                )
            } else {
                group.heartbeat(args, config, &topics, now, &mut out)
            };
            // Records in the order the state changed: a conversion first.
            let converted = !classic_records.is_empty();
            let mut records = classic_records;
            records.extend(out.into_iter().map(CoordinatorRecord::Consumer));
            if result.is_ok() && args_epoch == -1 {
                records.extend(self.maybe_downgrade(&mut inner, group_id, now));
            }
            // Like Kafka's, a heartbeat is all or nothing: one that fails, or
            // whose records cannot be written, leaves the groups as they were.
            let written = match (&result, records.is_empty()) {
                (Err(_), _) if upgraded.is_some() => Err(None),
                (_, true) => Ok(None),
                (_, false) => self.append(&records, now).map(Some).map_err(Some),
            };
            let end = match written {
                Ok(end) => end,
                Err(e) => {
                    match (upgraded, converted) {
                        (Some(u), _) => self.undo_upgrade(&mut inner, group_id, &u, now),
                        (None, true) => {
                            inner.consumer.remove(group_id);
                        }
                        (None, false) => {
                            match snapshot {
                                Some(g) => inner.consumer.insert(group_id.to_string(), g),
                                None => inner.consumer.remove(group_id),
                            };
                        }
                    }
                    return match e {
                        Some(e) => Err(e),
                        None => result,
                    };
                }
            };
            (result, end)
        };
        self.flush(end, now).await?;
        result
    }

    /// Expire silent members of consumer groups (a group left with classic
    /// members only turns classic).
    pub(super) fn tick_consumer(&self, inner: &mut Inner, now: i64) {
        let mut out = Vec::new();
        let mut shrunk = Vec::new();
        for g in inner.consumer.values_mut() {
            if !g.tick(now, &mut out).is_empty() {
                shrunk.push(g.group_id.clone());
            }
        }
        let mut records: Vec<CoordinatorRecord> = out.into_iter().map(CoordinatorRecord::Consumer).collect();
        for id in shrunk {
            records.extend(self.maybe_downgrade(inner, &id, now));
        }
        if !records.is_empty() {
            if let Err(e) = self.append(&records, now) {
                tracing::error!(error = %e, "cannot write consumer group records");
            }
        }
    }

    /// Downgrade (`group.consumer.migration.policy`): a consumer group whose
    /// members all speak the classic protocol becomes a classic group and
    /// rebalances. Returns the records that say so.
    fn maybe_downgrade(&self, inner: &mut Inner, group_id: &str, now: i64) -> Vec<CoordinatorRecord> {
        if !self.config.consumer.migration_policy.downgrade() {
            return Vec::new();
        }
        let Some(g) = inner.consumer.get(group_id) else {
            return Vec::new();
        };
        let Some(mut classic) = g.to_classic(&self.topics_view(), now) else {
            return Vec::new();
        };
        tracing::info!(
            group = group_id,
            "only classic members are left: the group is classic again"
        );
        let mut records: Vec<CoordinatorRecord> = g.tombstones().into_iter().map(CoordinatorRecord::Consumer).collect();
        classic.start_rebalance(&self.config, now);
        classic.take_dirty();
        records.push(group_record(&classic, now));
        inner.consumer.remove(group_id);
        inner.groups.insert(group_id.to_string(), classic);
        records
    }

    /// Upgrade: a classic group with members becomes a consumer group when a
    /// consumer-protocol member joins (if the policy allows and every member
    /// speaks the consumer protocol). The classic members' pending requests
    /// answer REBALANCE_IN_PROGRESS.
    fn upgrade(&self, inner: &mut Inner, group_id: &str, now: i64) -> Result<Vec<CoordinatorRecord>> {
        let refuse = |why: &str| Err(Error::GroupIdNotFound(format!("{group_id} ({why})")));
        let Some(classic) = inner.groups.get_mut(group_id) else {
            return Ok(Vec::new());
        };
        if !self.config.consumer.migration_policy.upgrade() {
            return refuse("group.consumer.migration.policy does not allow an upgrade");
        }
        // Any state: members keep the partitions of the last completed
        // generation (disjoint), and those waiting in a rebalance rejoin.
        if classic.protocol_type.as_deref() != Some("consumer") {
            return refuse("only a group of the consumer protocol type can be upgraded");
        }
        if classic.members.len() >= self.config.consumer.max_size {
            return Err(Error::GroupMaxSizeReached(group_id.to_string()));
        }
        let mut out = Vec::new();
        let topics = self.topics_view();
        let Some(mut g) = ConsumerGroup::from_classic(classic, &topics, now, &mut out) else {
            return refuse("a member's subscription or assignment is not the consumer protocol's");
        };
        for m in classic.members.values_mut() {
            m.fail_waiters(|| Error::RebalanceInProgress, || Error::RebalanceInProgress);
        }
        g.restart_timers(&self.config.consumer, now);
        tracing::info!(
            group = group_id,
            members = g.members.len(),
            "classic group upgraded to the consumer protocol"
        );
        inner.groups.remove(group_id);
        inner.consumer.insert(group_id.to_string(), g);
        let mut records = vec![CoordinatorRecord::GroupMetadata {
            group: group_id.to_string(),
            value: None,
        }];
        records.extend(out.into_iter().map(CoordinatorRecord::Consumer));
        Ok(records)
    }

    /// Turn a just-upgraded group back into the classic group it was (its
    /// members keep their partitions and rejoin).
    fn undo_upgrade(&self, inner: &mut Inner, group_id: &str, upgraded: &ConsumerGroup, now: i64) {
        inner.consumer.remove(group_id);
        if let Some(classic) = upgraded.to_classic(&self.topics_view(), now) {
            inner.groups.insert(group_id.to_string(), classic);
        }
    }

    /// A classic JoinGroup to a consumer-protocol group: answered by the group
    /// (with the end offset to flush to). None when `group_id` is not a consumer
    /// group, or was an empty one, now deleted so the join makes it classic.
    pub(super) fn classic_join_consumer(
        &self,
        group_id: &str,
        args: &JoinArgs,
        now: i64,
    ) -> Option<Result<(JoinResult, Option<i64>)>> {
        let topics = self.topics_view();
        let mut inner = self.lock();
        let g = inner.consumer.get_mut(group_id)?;
        if g.members.is_empty() {
            let records: Vec<CoordinatorRecord> = g.tombstones().into_iter().map(CoordinatorRecord::Consumer).collect();
            inner.consumer.remove(group_id);
            return match self.append(&records, now) {
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            };
        }
        let mut out = Vec::new();
        let snapshot = g.clone();
        let joined = g.classic_join(args.clone(), &self.config.consumer, &topics, now, &mut out);
        match self.append_consumer(out, now) {
            Ok(end) => Some(joined.map(|r| (r, end))),
            // A member the log does not know must not hold partitions.
            Err(e) => {
                inner.consumer.insert(group_id.to_string(), snapshot);
                Some(Err(e))
            }
        }
    }

    /// A classic SyncGroup or Heartbeat to a consumer-protocol group (None if it
    /// is not one).
    pub(super) fn classic_sync_consumer(
        &self,
        group_id: &str,
        caller: MemberRef<'_>,
        now: i64,
    ) -> Option<Result<SyncResult>> {
        let topics = self.topics_view();
        let mut inner = self.lock();
        let g = inner.consumer.get_mut(group_id)?;
        Some(g.classic_sync(caller, &topics, now))
    }

    pub(super) fn classic_heartbeat_consumer(
        &self,
        inner: &mut Inner,
        group_id: &str,
        caller: MemberRef<'_>,
        now: i64,
    ) -> Option<Result<()>> {
        let g = inner.consumer.get_mut(group_id)?;
        Some(g.classic_heartbeat(caller, now))
    }

    /// A classic LeaveGroup from a consumer-protocol group (None if it is not one).
    pub(super) fn classic_leave_consumer(
        &self,
        inner: &mut Inner,
        group_id: &str,
        members: &[(String, Option<String>)],
        now: i64,
    ) -> Option<Vec<Result<()>>> {
        let g = inner.consumer.get_mut(group_id)?;
        let mut out = Vec::new();
        let results = members
            .iter()
            .map(|(id, instance)| g.classic_leave(id, instance.as_deref(), &mut out))
            .collect();
        let mut records: Vec<CoordinatorRecord> = out.into_iter().map(CoordinatorRecord::Consumer).collect();
        records.extend(self.maybe_downgrade(inner, group_id, now));
        if !records.is_empty() {
            if let Err(e) = self.append(&records, now) {
                tracing::error!(group = group_id, error = %e, "cannot write consumer group records");
            }
        }
        Some(results)
    }

    /// ConsumerGroupDescribe: None for a group that is not a consumer group.
    pub fn describe_consumer(&self, group_id: &str) -> Option<ConsumerGroupDescription> {
        let topics = self.topics_view();
        let inner = self.lock();
        let g = inner.consumer.get(group_id)?;
        let empty = Default::default();
        Some(ConsumerGroupDescription {
            group_id: g.group_id.clone(),
            state: g.state().as_str(),
            group_epoch: g.group_epoch,
            assignment_epoch: g.assignment_epoch,
            assignor: g.preferred_assignor(&self.config.consumer),
            members: g
                .members
                .values()
                .map(|m| ConsumerMemberDescription {
                    member_id: m.member_id.clone(),
                    instance_id: m.meta.instance_id.clone(),
                    rack_id: m.meta.rack_id.clone(),
                    member_epoch: m.rec.epoch,
                    client_id: m.meta.client_id.clone(),
                    client_host: m.meta.client_host.clone(),
                    subscribed_topic_names: m.meta.subscribed_topic_names.clone(),
                    subscribed_topic_regex: m.meta.subscribed_topic_regex.clone(),
                    assignment: named(&m.rec.assigned, &topics),
                    target: named(g.target.get(&m.member_id).unwrap_or(&empty), &topics),
                    classic: m.meta.classic.is_some(),
                })
                .collect(),
        })
    }

    /// A consumer group in the classic description's shape (for the console and
    /// metrics): assignments encoded as the consumer protocol encodes them.
    pub(super) fn describe_consumer_as_classic(&self, inner: &Inner, group_id: &str) -> Option<GroupDescription> {
        let g = inner.consumer.get(group_id)?;
        let topics = self.topics_view();
        Some(GroupDescription {
            group_id: g.group_id.clone(),
            state: g.state().as_str(),
            generation_id: g.group_epoch,
            protocol_type: "consumer".to_string(),
            protocol_name: g.preferred_assignor(&self.config.consumer),
            members: g
                .members
                .values()
                .map(|m| {
                    let by_name: Vec<(String, Vec<i32>)> = named(&m.rec.assigned, &topics)
                        .into_iter()
                        .map(|(_, n, ps)| (n, ps))
                        .collect();
                    MemberDescription {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.meta.instance_id.clone(),
                        client_id: m.meta.client_id.clone(),
                        client_host: m.meta.client_host.clone(),
                        metadata: Bytes::new(),
                        assignment: crate::group::assignment::encode_assignment(&by_name),
                    }
                })
                .collect(),
        })
    }

    /// Consumer groups for ListGroups: (id, state).
    pub(super) fn list_consumer(inner: &Inner) -> impl Iterator<Item = (String, &'static str)> + '_ {
        inner
            .consumer
            .values()
            .map(|g| (g.group_id.clone(), g.state().as_str()))
    }

    /// OffsetCommit/TxnOffsetCommit by a member of a consumer group: its epoch
    /// must be the member's (Kafka's validateOffsetCommit). A commit with epoch −1
    /// and no member id (an admin tool) is accepted only while the group is empty.
    pub(super) fn validate_consumer_commit(g: &ConsumerGroup, caller: MemberRef<'_>) -> Result<()> {
        if caller.generation_id < 0 && caller.member_id.is_empty() {
            if g.members.is_empty() {
                return Ok(());
            }
            return Err(Error::UnknownMemberId(String::new()));
        }
        let Some(m) = g.members.get(caller.member_id) else {
            return Err(Error::UnknownMemberId(caller.member_id.to_string()));
        };
        if m.meta.classic.is_some() {
            // A classic member commits with its generation, which is its epoch.
            if caller.generation_id != m.rec.epoch {
                return Err(Error::IllegalGeneration {
                    found: caller.generation_id,
                    current: m.rec.epoch,
                });
            }
            return Ok(());
        }
        match caller.generation_id {
            e if e > m.rec.epoch => Err(Error::FencedMemberEpoch(format!(
                "member {} committed with epoch {e}; its epoch is {}",
                m.member_id, m.rec.epoch
            ))),
            e if e < m.rec.epoch => Err(Error::StaleMemberEpoch {
                found: e,
                current: m.rec.epoch,
            }),
            _ => Ok(()),
        }
    }

    /// OffsetFetch v9+ from a member of a consumer group: a member id and epoch,
    /// when given, must be current.
    pub fn validate_offset_fetch(&self, group_id: &str, member_id: Option<&str>, member_epoch: i32) -> Result<()> {
        let inner = self.lock();
        let (Some(g), Some(member_id)) = (inner.consumer.get(group_id), member_id) else {
            return Ok(());
        };
        if member_epoch < 0 && member_id.is_empty() {
            return Ok(());
        }
        let Some(m) = g.members.get(member_id) else {
            return Err(Error::UnknownMemberId(member_id.to_string()));
        };
        match (m.meta.classic.is_some(), member_epoch == m.rec.epoch) {
            (_, true) => Ok(()),
            (true, false) => Err(Error::IllegalGeneration {
                found: member_epoch,
                current: m.rec.epoch,
            }),
            (false, false) => Err(Error::StaleMemberEpoch {
                found: member_epoch,
                current: m.rec.epoch,
            }),
        }
    }

    /// Tombstones for an empty consumer group; refused while it has members.
    pub(super) fn delete_consumer_group(
        &self,
        inner: &mut Inner,
        group_id: &str,
    ) -> Result<Option<Vec<CoordinatorRecord>>> {
        let Some(g) = inner.consumer.get(group_id) else {
            return Ok(None);
        };
        if g.state() != ConsumerGroupState::Empty {
            return Err(Error::NonEmptyGroup(group_id.to_string()));
        }
        let records = g.tombstones().into_iter().map(CoordinatorRecord::Consumer).collect();
        inner.consumer.remove(group_id);
        Ok(Some(records))
    }
}
