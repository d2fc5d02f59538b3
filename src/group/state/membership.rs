//! SyncGroup, Heartbeat and LeaveGroup, the member-side steps of the state machine,
//! plus the timer that expires silent members.

use std::collections::HashMap;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{Group, GroupConfig, GroupState};
use crate::error::{Error, Result};
use crate::group::member::{MemberRef, Pending, SyncResult};

impl Group {
    pub fn sync(&mut self, caller: MemberRef<'_>, assignments: Vec<(String, Bytes)>, now: i64) -> Pending<SyncResult> {
        let MemberRef {
            member_id,
            instance,
            generation_id,
        } = caller;
        let checked = match self.state {
            GroupState::Empty | GroupState::Dead => Err(Error::UnknownMemberId(member_id.to_string())),
            _ => self
                .check_member(member_id, instance)
                .and_then(|_| self.check_generation(generation_id)),
        };
        if let Err(e) = checked {
            return Pending::Ready(Err(e));
        }
        self.members[member_id].touch(now);
        match self.state {
            GroupState::PreparingRebalance => Pending::Ready(Err(Error::RebalanceInProgress)),
            GroupState::Stable => Pending::Ready(Ok(self.sync_result(member_id))),
            _ => {
                let (tx, rx) = oneshot::channel();
                self.members[member_id].awaiting_sync = Some(tx);
                if self.leader_id.as_deref() == Some(member_id) {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.profile.member_id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    self.dirty = true;
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        let result = self.sync_result(&id);
                        if let Some(tx) = self.members[&id].awaiting_sync.take() {
                            let _ = tx.send(Ok(result));
                        }
                    }
                }
                Pending::Wait(rx)
            }
        }
    }

    fn sync_result(&self, member_id: &str) -> SyncResult {
        SyncResult {
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self.members[member_id].assignment.clone(),
        }
    }

    pub fn heartbeat(&mut self, caller: MemberRef<'_>, now: i64) -> Result<()> {
        let MemberRef {
            member_id,
            instance,
            generation_id,
        } = caller;
        if matches!(self.state, GroupState::Empty | GroupState::Dead) {
            return Err(Error::UnknownMemberId(member_id.to_string()));
        }
        self.check_member(member_id, instance)?;
        self.check_generation(generation_id)?;
        self.members[member_id].touch(now);
        if self.state == GroupState::PreparingRebalance {
            return Err(Error::RebalanceInProgress);
        }
        Ok(())
    }

    /// Remove one leaving member, by member id or by group.instance.id.
    pub fn leave(&mut self, member_id: &str, instance: Option<&str>, config: &GroupConfig, now: i64) -> Result<()> {
        let id = match instance {
            Some(instance) => {
                let current = self
                    .static_members
                    .get(instance)
                    .cloned()
                    .ok_or_else(|| Error::UnknownMemberId(member_id.to_string()))?;
                if !member_id.is_empty() && member_id != current {
                    return Err(Error::FencedInstanceId(instance.to_string()));
                }
                current
            }
            None => member_id.to_string(),
        };
        if self.pending_members.remove(&id).is_some() {
            self.maybe_complete_join(now);
            return Ok(());
        }
        if !self.members.contains_key(&id) {
            return Err(Error::UnknownMemberId(id));
        }
        self.member_gone(&id, config, now);
        Ok(())
    }

    /// Whether an offset commit from this member and generation is allowed.
    /// Simple consumers (generation −1, no member id) may commit only to a group
    /// without members.
    pub fn validate_commit(&self, caller: MemberRef<'_>) -> Result<()> {
        let MemberRef {
            member_id,
            instance,
            generation_id,
        } = caller;
        if generation_id < 0 && member_id.is_empty() && self.members.is_empty() {
            return Ok(());
        }
        if self.state == GroupState::Dead || self.members.is_empty() {
            return Err(Error::UnknownMemberId(member_id.to_string()));
        }
        self.check_member(member_id, instance)?;
        self.check_generation(generation_id)?;
        if self.state == GroupState::CompletingRebalance {
            return Err(Error::RebalanceInProgress);
        }
        Ok(())
    }

    /// Whether a transactional offset commit (TxnOffsetCommit) from this member is
    /// allowed: KIP-447's check, made only when the producer sent the consumer's
    /// group metadata. Without it (clients before KIP-447, kafkajs) the commit is
    /// accepted even while the group has members, and a rebalance in progress
    /// does not refuse it: the transaction, not the generation, makes it safe.
    pub fn validate_txn_commit(&self, caller: MemberRef<'_>) -> Result<()> {
        let MemberRef {
            member_id,
            instance,
            generation_id,
        } = caller;
        if self.state == GroupState::Dead {
            return Err(Error::CoordinatorNotAvailable("the group is being deleted"));
        }
        let has_metadata = generation_id >= 0 || !member_id.is_empty() || instance.is_some();
        if !has_metadata || (generation_id < 0 && self.state == GroupState::Empty) {
            return Ok(());
        }
        self.check_member(member_id, instance)?;
        self.check_generation(generation_id)
    }

    /// Expire silent members and pending member ids, end a rebalance whose timeout
    /// passed, and end an initial rebalance delay.
    pub fn tick(&mut self, config: &GroupConfig, now: i64) {
        self.pending_members.retain(|_, deadline| *deadline > now);
        let preparing = self.state == GroupState::PreparingRebalance;
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.heartbeat_deadline <= now && !(preparing && m.awaiting_join.is_some()))
            .map(|m| m.profile.member_id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.group_id, member = %id, "member expired after its session timeout");
            self.member_gone(&id, config, now);
        }
        self.maybe_complete_join(now);
    }

    /// Every member's session starts again at `now` (the broker did not run
    /// for a while: a member could not have reached it).
    pub fn restart_sessions(&mut self, now: i64) {
        for member in self.members.values_mut() {
            member.touch(now);
        }
    }

    /// Delete the group: it must have no members.
    pub fn mark_dead(&mut self) -> Result<()> {
        if !self.members.is_empty() {
            return Err(Error::NonEmptyGroup(self.group_id.clone()));
        }
        self.state = GroupState::Dead;
        Ok(())
    }
}
