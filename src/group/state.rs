//! One classic consumer group and its state machine (Kafka's ClassicGroupState).
//!
//! Every transition takes `now` (milliseconds) as a parameter; nothing here reads a
//! clock or sleeps, so tests drive time by passing it. Long-held requests are
//! oneshot channels kept in the member, answered when the state machine gets there.

use std::collections::HashMap;

use bytes::Bytes;
use indexmap::IndexMap;
use tokio::sync::oneshot;

use super::member::{JoinArgs, JoinResult, JoinedMember, Member, MemberProfile, Pending};
use crate::error::{Error, Result};

mod membership;

/// Most bytes of a client id a generated member id starts with.
const MEMBER_ID_PREFIX_MAX: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members (there may be committed offsets).
    /// action: a JoinGroup starts a rebalance; offsets may be committed by simple
    ///         consumers (generation −1).
    /// transition: first member joins → PreparingRebalance; deleted → Dead.
    Empty,
    /// Waiting for every known member to (re)join, bounded by the rebalance timeout.
    /// action: JoinGroups are held; heartbeats answer REBALANCE_IN_PROGRESS;
    ///         SyncGroups answer REBALANCE_IN_PROGRESS.
    /// transition: all joined (or the timeout removed the rest) → CompletingRebalance,
    ///             or Empty if nobody is left.
    PreparingRebalance,
    /// Join responses sent; waiting for the leader's SyncGroup with assignments.
    /// action: SyncGroups of followers are held; heartbeats are accepted.
    /// transition: leader syncs → Stable; a member joins, leaves or expires →
    ///             PreparingRebalance.
    CompletingRebalance,
    /// Assignments handed out.
    /// action: heartbeats and commits accepted; SyncGroup returns the assignment.
    /// transition: a member joins with new metadata, the leader rejoins, or a member
    ///             leaves or expires → PreparingRebalance.
    Stable,
    /// The group was deleted.
    /// action: every request gets UNKNOWN_MEMBER_ID / GROUP_ID_NOT_FOUND.
    /// transition: none.
    Dead,
}

impl GroupState {
    /// The name Kafka gives the state in DescribeGroups and ListGroups.
    pub fn as_str(&self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Broker settings for groups (Kafka's names).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// group.min.session.timeout.ms
    pub min_session_timeout_ms: i32,
    /// group.max.session.timeout.ms
    pub max_session_timeout_ms: i32,
    /// group.initial.rebalance.delay.ms: how long a new group waits for more members.
    pub initial_rebalance_delay_ms: i64,
    /// The consumer protocol's settings (group.consumer.*).
    pub consumer: super::consumer::ConsumerConfig,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            consumer: Default::default(),
        }
    }
}

#[derive(Debug)]
pub struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    /// In join order.
    pub members: IndexMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, until the member rejoins with it.
    pending_members: HashMap<String, i64>,
    /// group.instance.id → member id.
    static_members: HashMap<String, String>,
    rebalance_deadline: i64,
    join_not_before: i64,
    /// Set when the group's durable record should be rewritten.
    dirty: bool,
}

impl Group {
    pub fn new(group_id: &str) -> Group {
        Group {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: IndexMap::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: 0,
            join_not_before: 0,
            dirty: false,
        }
    }

    /// Rebuild a group from its durable record: Stable with its members if it had
    /// any (each gets a fresh session), else Empty.
    pub fn restore(
        group_id: &str,
        generation_id: i32,
        protocol_type: Option<String>,
        protocol_name: Option<String>,
        leader_id: Option<String>,
        members: Vec<Member>,
    ) -> Group {
        let mut g = Group::new(group_id);
        g.generation_id = generation_id;
        g.protocol_type = protocol_type;
        if !members.is_empty() {
            g.state = GroupState::Stable;
            g.protocol_name = protocol_name;
            g.leader_id = leader_id;
            for m in members {
                if let Some(instance) = &m.profile.group_instance_id {
                    g.static_members.insert(instance.clone(), m.profile.member_id.clone());
                }
                g.members.insert(m.profile.member_id.clone(), m);
            }
        }
        g
    }

    /// Start a rebalance now (a group just turned classic again asks its members
    /// to rejoin).
    pub fn start_rebalance(&mut self, config: &GroupConfig, now: i64) {
        self.prepare_rebalance(config, now);
        self.dirty = true;
    }

    /// Whether the durable record must be rewritten; clears the flag.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether some member's subscription (consumer protocol) names `topic`.
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        let Some(protocol) = &self.protocol_name else {
            return false;
        };
        self.members.values().any(|m| {
            super::assignment::subscribed_topics(&m.metadata_for(protocol))
                .iter()
                .any(|t| t == topic)
        })
    }

    // ---- JoinGroup ---------------------------------------------------------------

    pub fn join(&mut self, args: JoinArgs, config: &GroupConfig, now: i64) -> Pending<JoinResult> {
        match self.try_join(args, config, now) {
            Ok(p) => p,
            Err(e) => Pending::Ready(Err(e)),
        }
    }

    fn try_join(&mut self, args: JoinArgs, config: &GroupConfig, now: i64) -> Result<Pending<JoinResult>> {
        if args.profile.session_timeout_ms < config.min_session_timeout_ms
            || args.profile.session_timeout_ms > config.max_session_timeout_ms
        {
            return Err(Error::InvalidSessionTimeout(args.profile.session_timeout_ms));
        }
        if self.state == GroupState::Dead {
            return Err(Error::UnknownMemberId(args.profile.member_id));
        }
        if !self.supports(&args) {
            return Err(Error::InconsistentGroupProtocol);
        }
        if args.profile.member_id.is_empty() {
            return self.join_new_member(args, config, now);
        }
        if self.pending_members.remove(&args.profile.member_id).is_some() {
            let id = args.profile.member_id.clone();
            return Ok(self.add_member_and_rebalance(id, &args, config, now));
        }
        self.check_member(&args.profile.member_id, args.profile.group_instance_id.as_deref())?;
        let member = &self.members[&args.profile.member_id];
        let unchanged = member.profile.protocols == args.profile.protocols;
        let is_leader = self.leader_id.as_deref() == Some(args.profile.member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => Ok(self.rejoin(&args, now)),
            GroupState::CompletingRebalance if unchanged => {
                Ok(Pending::Ready(Ok(self.join_result(&args.profile.member_id))))
            }
            GroupState::Stable if unchanged && !is_leader => {
                self.members[&args.profile.member_id].touch(now);
                Ok(Pending::Ready(Ok(self.join_result(&args.profile.member_id))))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.prepare_rebalance(config, now);
                Ok(self.rejoin(&args, now))
            }
            GroupState::Empty | GroupState::Dead => Err(Error::UnknownMemberId(args.profile.member_id)),
        }
    }

    fn join_new_member(&mut self, args: JoinArgs, config: &GroupConfig, now: i64) -> Result<Pending<JoinResult>> {
        // Kafka's form, client id then a UUID, with the client id cut short so the
        // id always fits every response version that carries it (a 32 KiB client
        // id would make the member id unencodable there, and lock its group out).
        let client_id = args.profile.client_id.as_str();
        let prefix = &client_id[..client_id.floor_char_boundary(MEMBER_ID_PREFIX_MAX)];
        let new_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
        if let Some(instance) = &args.profile.group_instance_id {
            if let Some(old_id) = self.static_members.get(instance).cloned() {
                return Ok(self.replace_static_member(&old_id, new_id, &args, config, now));
            }
            return Ok(self.add_member_and_rebalance(new_id, &args, config, now));
        }
        if args.require_known_member_id {
            self.pending_members
                .insert(new_id.clone(), now + args.profile.session_timeout_ms as i64);
            return Err(Error::MemberIdRequired(new_id));
        }
        Ok(self.add_member_and_rebalance(new_id, &args, config, now))
    }

    /// A known member rejoins during a rebalance: hold its JoinGroup.
    fn rejoin(&mut self, args: &JoinArgs, now: i64) -> Pending<JoinResult> {
        let (tx, rx) = oneshot::channel();
        let member = &mut self.members[&args.profile.member_id];
        member.update(&args.profile);
        member.touch(now);
        if let Some(old) = member.awaiting_join.replace(tx) {
            let _ = old.send(Err(Error::RebalanceInProgress));
        }
        self.maybe_complete_join(now);
        Pending::Wait(rx)
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        args: &JoinArgs,
        config: &GroupConfig,
        now: i64,
    ) -> Pending<JoinResult> {
        let (tx, rx) = oneshot::channel();
        let mut member = Member::new(
            MemberProfile {
                member_id: member_id.clone(),
                ..args.profile.clone()
            },
            now,
        );
        member.awaiting_join = Some(tx);
        if let Some(instance) = &args.profile.group_instance_id {
            self.static_members.insert(instance.clone(), member_id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(args.protocol_type.clone());
        }
        self.leader_id.get_or_insert_with(|| member_id.clone());
        self.members.insert(member_id, member);
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(config, now);
        }
        self.maybe_complete_join(now);
        Pending::Wait(rx)
    }

    /// A static member restarted (same group.instance.id, no member id): it takes
    /// over its old membership, fencing the old id. In a Stable group with unchanged
    /// metadata there is no rebalance: it gets the current generation back.
    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        args: &JoinArgs,
        config: &GroupConfig,
        now: i64,
    ) -> Pending<JoinResult> {
        let Some(mut member) = self.members.shift_remove(old_id) else {
            return self.add_member_and_rebalance(new_id, args, config, now);
        };
        let instance = args.profile.group_instance_id.clone().unwrap_or_default();
        member.fail_waiters(
            || Error::FencedInstanceId(instance.clone()),
            || Error::FencedInstanceId(instance.clone()),
        );
        let unchanged = member.profile.protocols == args.profile.protocols;
        member.profile.member_id = new_id.clone();
        member.update(&args.profile);
        member.touch(now);
        self.static_members.insert(instance, new_id.clone());
        if self.leader_id.as_deref() == Some(old_id) {
            self.leader_id = Some(new_id.clone());
        }
        self.members.insert(new_id.clone(), member);
        self.dirty = true;
        if self.state == GroupState::Stable && unchanged {
            let mut result = self.join_result(&new_id);
            result.skip_assignment = self.leader_id.as_deref() == Some(new_id.as_str());
            return Pending::Ready(Ok(result));
        }
        let (tx, rx) = oneshot::channel();
        self.members[&new_id].awaiting_join = Some(tx);
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(config, now);
        }
        self.maybe_complete_join(now);
        Pending::Wait(rx)
    }

    /// The current generation as a join response for `member_id`.
    fn join_result(&self, member_id: &str) -> JoinResult {
        let leader = self.leader_id.clone().unwrap_or_default();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.profile.member_id.clone(),
                    group_instance_id: m.profile.group_instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            member_id: member_id.to_string(),
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            members,
            skip_assignment: false,
        }
    }

    /// Whether a joining member's protocol type and protocols fit the group.
    fn supports(&self, args: &JoinArgs) -> bool {
        if args.protocol_type.is_empty() || args.profile.protocols.is_empty() {
            return false;
        }
        let others: Vec<&Member> = self
            .members
            .values()
            .filter(|m| m.profile.member_id != args.profile.member_id)
            .collect();
        if others.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(args.protocol_type.as_str())
            && args
                .profile
                .protocols
                .iter()
                .any(|(p, _)| others.iter().all(|m| m.profile.protocols.iter().any(|(q, _)| q == p)))
    }

    /// Kafka's choice: among protocols every member supports, the one most members
    /// list first (of those candidates).
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .profile
            .protocols
            .iter()
            .map(|(p, _)| p)
            .filter(|p| {
                self.members
                    .values()
                    .all(|m| m.profile.protocols.iter().any(|(q, _)| q == *p))
            })
            .collect();
        let mut votes: IndexMap<&String, usize> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in self.members.values() {
            if let Some((p, _)) = m.profile.protocols.iter().find(|(p, _)| candidates.contains(&p)) {
                *votes.entry(p).or_default() += 1;
            }
        }
        let max = votes.values().copied().max()?;
        votes.into_iter().find(|(_, v)| *v == max).map(|(p, _)| p.clone())
    }

    fn prepare_rebalance(&mut self, config: &GroupConfig, now: i64) {
        if self.state == GroupState::CompletingRebalance {
            // Followers waiting for assignments of a generation that will not be.
            for m in self.members.values_mut() {
                if let Some(tx) = m.awaiting_sync.take() {
                    let _ = tx.send(Err(Error::RebalanceInProgress));
                }
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.profile.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0);
        self.join_not_before = if self.state == GroupState::Empty {
            now + config.initial_rebalance_delay_ms.min(timeout)
        } else {
            now
        };
        self.rebalance_deadline = now + timeout;
        self.state = GroupState::PreparingRebalance;
    }

    fn maybe_complete_join(&mut self, now: i64) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some());
        if (all_joined && now >= self.join_not_before) || now >= self.rebalance_deadline {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: i64) {
        // Members that did not rejoin in time are out.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.profile.member_id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.pending_members.clear();
        self.generation_id += 1;
        self.dirty = true;
        if self.members.is_empty() {
            // Kafka keeps the protocol type of an emptied group (ListGroups shows it).
            self.state = GroupState::Empty;
            self.protocol_name = None;
            self.leader_id = None;
            return;
        }
        self.protocol_name = self.select_protocol();
        if !self.leader_id.as_ref().is_some_and(|l| self.members.contains_key(l)) {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.join_result(&id);
            let m = &mut self.members[&id];
            m.assignment = Bytes::new();
            m.touch(now);
            if let Some(tx) = m.awaiting_join.take() {
                let _ = tx.send(Ok(result));
            }
        }
    }

    fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.shift_remove(member_id)?;
        if let Some(instance) = &member.profile.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = self.members.keys().next().cloned();
        }
        Some(member)
    }

    /// A member left or expired: rebalance the rest.
    fn member_gone(&mut self, member_id: &str, config: &GroupConfig, now: i64) {
        if self.remove_member(member_id).is_none() {
            return;
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(config, now),
            _ => {}
        }
        self.maybe_complete_join(now);
    }

    /// UNKNOWN_MEMBER_ID or FENCED_INSTANCE_ID unless `member_id` is a current member
    /// (and, for a static member, still the current holder of its instance id).
    fn check_member(&self, member_id: &str, instance: Option<&str>) -> Result<()> {
        if let Some(instance) = instance {
            match self.static_members.get(instance) {
                Some(current) if current != member_id => return Err(Error::FencedInstanceId(instance.to_string())),
                // An instance id the group does not know, even with a known
                // member id, is an unknown member (Kafka's validateMember).
                None => return Err(Error::UnknownMemberId(member_id.to_string())),
                _ => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(Error::UnknownMemberId(member_id.to_string()));
        }
        Ok(())
    }

    fn check_generation(&self, generation_id: i32) -> Result<()> {
        if generation_id != self.generation_id {
            return Err(Error::IllegalGeneration {
                found: generation_id,
                current: self.generation_id,
            });
        }
        Ok(())
    }
}
