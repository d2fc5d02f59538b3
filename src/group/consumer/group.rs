//! One consumer-protocol group (KIP-848): its members, the group epoch, the target
//! assignment and its epoch, and the heartbeat that drives them all.
//!
//! - The **group epoch** goes up whenever what the assignment depends on changes:
//!   a member joins or leaves, a subscription changes, or a subscribed topic is
//!   created, deleted or grows partitions.
//! - The **target assignment** is recomputed by the server assignor when the group
//!   epoch passed the assignment epoch; it is what every member should end up with.
//! - Each **member** reconciles towards its target at its own pace
//!   ([`super::member::reconcile`]).
//!
//! Every change is also returned as `__consumer_offsets` records (`out`), in the
//! order Kafka writes them, so the group can be rebuilt at start. Nothing here
//! reads a clock: `now` comes in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

use super::assignor::{self, Assignment, MemberSpec};
use super::member::{is_subset, reconcile, ConsumerMember, MemberState};
use super::records::{ConsumerRecord, MemberMetadataValue};
use super::topics::TopicsView;
use super::ConsumerConfig;
use crate::error::{Error, Result};

mod classic;
mod lifecycle;
#[cfg(test)]
mod tests;

/// Kafka's ConsumerGroupState names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    /// The group epoch moved past the target assignment's.
    Assigning,
    /// Some member has not reached the target yet.
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// A subscribed topic as the assignment saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub id: Uuid,
    pub partitions: i32,
}

/// A subscription pattern, compiled, with the topics it matched when the topics
/// had `fingerprint`.
#[derive(Debug, Clone)]
struct Pattern {
    re: Option<regex::Regex>,
    fingerprint: Option<u64>,
    matches: BTreeSet<String>,
}

/// A member's timers (not stored: they restart with the broker).
#[derive(Debug, Clone, Copy, Default)]
struct Timers {
    session_deadline: i64,
    /// Set while the member has partitions to revoke.
    revocation_deadline: Option<i64>,
}

/// A ConsumerGroupHeartbeat, as the group sees it.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatArgs {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// What the member says it owns (None: unchanged since its last heartbeat).
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatResult {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's assignment, when it has news for it.
    pub assignment: Option<Assignment>,
}

#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    pub group_id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    /// By member id.
    pub members: BTreeMap<String, ConsumerMember>,
    /// The target assignment, by member id.
    pub target: BTreeMap<String, Assignment>,
    /// The subscribed topics (by name) the current group epoch was computed with.
    pub subscribed: BTreeMap<String, TopicMeta>,
    timers: HashMap<String, Timers>,
    patterns: HashMap<String, Pattern>,
    /// Records produced while picking a heartbeat's member (a static member's
    /// replaced incarnation), and the id of a member that replaced one.
    pending_out: Vec<ConsumerRecord>,
}

impl ConsumerGroup {
    pub fn new(group_id: &str) -> ConsumerGroup {
        ConsumerGroup {
            group_id: group_id.to_string(),
            ..Default::default()
        }
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.rec.epoch != self.assignment_epoch || m.rec.state != MemberState::Stable)
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The member holding static instance `instance`, if any.
    pub fn static_member(&self, instance: &str) -> Option<&ConsumerMember> {
        self.members
            .values()
            .find(|m| m.meta.instance_id.as_deref() == Some(instance))
    }

    /// Whether any member subscribes to `topic` (by name or by its regex).
    pub fn subscribes_to(&self, topic: &str) -> bool {
        self.subscribed.contains_key(topic)
    }

    /// Start the timers of every member after a load (a session from now).
    pub fn restart_timers(&mut self, config: &ConsumerConfig, now: i64) {
        for id in self.members.keys() {
            self.timers.insert(
                id.clone(),
                Timers {
                    session_deadline: now + config.session_timeout_for(self.members.get(id)) as i64,
                    // A revocation owed before the restart is owed still.
                    revocation_deadline: self
                        .members
                        .get(id)
                        .filter(|m| m.rec.state == MemberState::UnrevokedPartitions)
                        .map(|m| now + m.meta.rebalance_timeout_ms.max(0) as i64),
                },
            );
        }
    }

    // ---- the heartbeat --------------------------------------------------------

    /// Handle a ConsumerGroupHeartbeat with member epoch ≥ 0.
    pub fn heartbeat(
        &mut self,
        args: HeartbeatArgs,
        config: &ConsumerConfig,
        topics: &TopicsView,
        now: i64,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<HeartbeatResult> {
        let joining = args.member_epoch == 0;
        let full_request = args.rebalance_timeout_ms != -1
            && (args.subscribed_topic_names.is_some() || args.subscribed_topic_regex.is_some())
            && args.owned.is_some();
        let mut member = self.member_for(&args, config)?;
        out.append(&mut self.pending_out);
        let before = member.clone();
        let assigned_before = self.members.get(&member.member_id).map(|m| m.rec.assigned.clone());
        member.meta.rack_id = args.rack_id.clone().or(member.meta.rack_id);
        if args.rebalance_timeout_ms >= 0 {
            member.meta.rebalance_timeout_ms = args.rebalance_timeout_ms;
        }
        member.meta.instance_id = args.instance_id.clone().or(member.meta.instance_id);
        member.meta.client_id = args.client_id.clone();
        member.meta.client_host = args.client_host.clone();
        // A member that heartbeats speaks the consumer protocol now.
        member.meta.classic = None;
        if let Some(names) = &args.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            member.meta.subscribed_topic_names = names;
        }
        if let Some(regex) = &args.subscribed_topic_regex {
            member.meta.subscribed_topic_regex = Some(regex.clone()).filter(|r| !r.is_empty());
        }
        if let Some(a) = &args.server_assignor {
            member.meta.server_assignor = Some(a.clone());
        }
        let member_id = member.member_id.clone();
        self.touch(&member_id, config.session_timeout_for(Some(&member)), now);
        let bump = self.store_member(&before, member, out);
        self.refresh(bump, config, topics, out);
        self.reconcile_member(&member_id, args.owned.as_ref(), now, out);
        let m = &self.members[&member_id];
        let changed = assigned_before.as_ref() != Some(&m.rec.assigned);
        Ok(HeartbeatResult {
            member_id: member_id.clone(),
            member_epoch: m.rec.epoch,
            heartbeat_interval_ms: config.heartbeat_interval_ms,
            assignment: (joining || full_request || changed).then(|| m.rec.assigned.clone()),
        })
    }

    /// The member a heartbeat is from, checked (Kafka's rules), or a new one.
    fn member_for(&mut self, args: &HeartbeatArgs, config: &ConsumerConfig) -> Result<ConsumerMember> {
        if self.members.len() >= config.max_size && !self.members.contains_key(&args.member_id) {
            return Err(Error::GroupMaxSizeReached(self.group_id.clone()));
        }
        if args.member_epoch == 0 {
            if let Some(instance) = &args.instance_id {
                let old = self
                    .static_member(instance)
                    .filter(|m| m.member_id != args.member_id || m.rec.epoch == -2 || m.meta.classic.is_some());
                if let Some(old) = old {
                    // A classic member's slot may be taken at once (a rolling
                    // upgrade); a consumer-protocol member must have left (−2).
                    if old.rec.epoch != -2 && old.meta.classic.is_none() {
                        return Err(Error::UnreleasedInstanceId(instance.clone()));
                    }
                    // A static member back under a new member id takes over what
                    // its previous incarnation had: its partitions and its target.
                    let mut m = old.clone();
                    let old_id = old.member_id.clone();
                    m.member_id = args.member_id.clone();
                    m.rec.epoch = 0;
                    m.rec.previous_epoch = 0;
                    let target = self.target.get(&old_id).cloned();
                    self.forget_member(&old_id);
                    for record in ConsumerRecord::member_tombstones(&self.group_id, &old_id) {
                        self.pending_out.push(record);
                    }
                    if let Some(t) = target {
                        self.target.insert(m.member_id.clone(), t);
                    }
                    return Ok(m);
                }
            }
            // A known member rejoining (after it was fenced, it keeps its id)
            // starts over; a new one starts empty.
            let mut m = self
                .members
                .get(&args.member_id)
                .cloned()
                .unwrap_or_else(|| ConsumerMember::new(&args.member_id));
            m.rec.epoch = 0;
            m.rec.previous_epoch = 0;
            m.rec.state = MemberState::Stable;
            m.rec.assigned.clear();
            m.rec.pending_revocation.clear();
            return Ok(m);
        }
        // A static member is found by its instance id: another member id holding
        // it means this one was replaced.
        let m = match &args.instance_id {
            Some(instance) => match self.static_member(instance) {
                Some(m) if m.member_id != args.member_id => return Err(Error::FencedInstanceId(instance.clone())),
                Some(m) => m,
                None => return Err(Error::UnknownMemberId(args.member_id.clone())),
            },
            None => self
                .members
                .get(&args.member_id)
                .ok_or_else(|| Error::UnknownMemberId(args.member_id.clone()))?,
        };
        check_epoch(m, args.member_epoch, args.owned.as_ref())?;
        Ok(m.clone())
    }

    /// Put the member in, writing what changed against the stored member.
    /// True if the group epoch must move on: Kafka bumps it for a new group and
    /// for a subscription that differs from `before`, not for a rack, an
    /// assignor, or a static member replaced as it was.
    fn store_member(&mut self, before: &ConsumerMember, member: ConsumerMember, out: &mut Vec<ConsumerRecord>) -> bool {
        let stored = self.members.get(&member.member_id);
        let write_metadata = stored.is_none_or(|s| s.meta != member.meta);
        let write_reconciliation = stored.is_none_or(|s| s.rec.clone() != member.rec.clone());
        let subscription_changed = member.meta.subscribed_topic_names != before.meta.subscribed_topic_names
            || member.meta.subscribed_topic_regex != before.meta.subscribed_topic_regex;
        if write_metadata {
            out.push(ConsumerRecord::MemberMetadata {
                group: self.group_id.clone(),
                member: member.member_id.clone(),
                value: Some(member.meta.clone()),
            });
        }
        let id = member.member_id.clone();
        self.members.insert(id.clone(), member);
        if write_reconciliation {
            self.write_reconciliation(&id, out);
        }
        subscription_changed || self.group_epoch == 0
    }

    fn bump_epoch(&mut self, out: &mut Vec<ConsumerRecord>) {
        self.group_epoch = self.group_epoch.max(self.assignment_epoch) + 1;
        out.push(ConsumerRecord::Metadata {
            group: self.group_id.clone(),
            epoch: Some(self.group_epoch),
        });
    }

    /// The topics the members subscribe to, resolved against the topics that
    /// exist now.
    /// Patterns are compiled once and re-matched only when the topics change.
    fn resolve_subscriptions(&mut self, topics: &TopicsView) -> BTreeMap<String, TopicMeta> {
        let mut names: BTreeSet<String> = BTreeSet::new();
        let mut regexes: BTreeSet<String> = BTreeSet::new();
        for m in self.members.values() {
            names.extend(m.meta.subscribed_topic_names.iter().cloned());
            if let Some(r) = &m.meta.subscribed_topic_regex {
                regexes.insert(r.clone());
            }
        }
        self.patterns.retain(|p, _| regexes.contains(p));
        for r in regexes {
            let p = self.patterns.entry(r.clone()).or_insert_with(|| Pattern {
                re: super::topics::compile(&r).ok(),
                fingerprint: None,
                matches: BTreeSet::new(),
            });
            if p.fingerprint != Some(topics.fingerprint()) {
                p.matches =
                    p.re.as_ref()
                        .map(|re| topics.matching_compiled(re))
                        .unwrap_or_default()
                        .into_iter()
                        .collect();
                p.fingerprint = Some(topics.fingerprint());
            }
            names.extend(p.matches.iter().cloned());
        }
        names
            .into_iter()
            .filter_map(|n| {
                let (id, partitions) = topics.get(&n)?;
                Some((n, TopicMeta { id, partitions }))
            })
            .collect()
    }

    /// Recompute what the assignment depends on and, if the group epoch moved
    /// past the target's, a new target assignment.
    /// `bump`: the group epoch moves on in any case (once).
    pub fn refresh(&mut self, bump: bool, config: &ConsumerConfig, topics: &TopicsView, out: &mut Vec<ConsumerRecord>) {
        if self.members.is_empty() {
            return;
        }
        let subscribed = self.resolve_subscriptions(topics);
        let changed = subscribed != self.subscribed;
        if changed {
            self.subscribed = subscribed;
            out.push(ConsumerRecord::PartitionMetadata {
                group: self.group_id.clone(),
                topics: Some(self.subscribed.iter().map(|(n, t)| (n.clone(), t.clone())).collect()),
            });
        }
        if changed || bump {
            self.bump_epoch(out);
        }
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(config, out);
        }
    }

    fn compute_target(&mut self, config: &ConsumerConfig, out: &mut Vec<ConsumerRecord>) {
        let by_name: HashMap<&str, &TopicMeta> = self.subscribed.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let topic_counts: BTreeMap<Uuid, i32> = self.subscribed.values().map(|t| (t.id, t.partitions)).collect();
        let empty = Assignment::new();
        let specs: Vec<MemberSpec<'_>> = self
            .members
            .values()
            .map(|m| {
                let mut ids: BTreeSet<Uuid> = m
                    .meta
                    .subscribed_topic_names
                    .iter()
                    .filter_map(|n| by_name.get(n.as_str()).map(|t| t.id))
                    .collect();
                if let Some(p) = m
                    .meta
                    .subscribed_topic_regex
                    .as_ref()
                    .and_then(|r| self.patterns.get(r))
                {
                    ids.extend(p.matches.iter().filter_map(|n| by_name.get(n.as_str()).map(|t| t.id)));
                }
                MemberSpec {
                    member_id: &m.member_id,
                    topics: ids,
                    previous: self.target.get(&m.member_id).unwrap_or(&empty),
                }
            })
            .collect();
        let assignor = self.preferred_assignor(config);
        let target = assignor::assign(&assignor, &specs, &topic_counts);
        for (member, a) in &target {
            if self.target.get(member) != Some(a) {
                out.push(ConsumerRecord::TargetAssignmentMember {
                    group: self.group_id.clone(),
                    member: member.clone(),
                    partitions: Some(a.clone()),
                });
            }
        }
        self.target = target;
        self.assignment_epoch = self.group_epoch;
        out.push(ConsumerRecord::TargetAssignmentMetadata {
            group: self.group_id.clone(),
            epoch: Some(self.assignment_epoch),
        });
    }

    /// The assignor most members ask for, or the broker's default.
    pub fn preferred_assignor(&self, config: &ConsumerConfig) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.meta.server_assignor {
                *votes.entry(a).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|(name, n)| (*n, std::cmp::Reverse(*name)))
            .map(|(name, _)| name.to_string())
            .unwrap_or_else(|| config.default_assignor().to_string())
    }

    /// Move one member a step towards its target; true if it changed.
    fn reconcile_member(
        &mut self,
        member_id: &str,
        owned: Option<&Assignment>,
        now: i64,
        out: &mut Vec<ConsumerRecord>,
    ) -> bool {
        let Some(member) = self.members.get(member_id) else {
            return false;
        };
        if member.rec.epoch == -2 {
            return false;
        }
        // Who holds what, gathered only if the member has partitions to get.
        let held: std::cell::OnceCell<BTreeSet<(Uuid, i32)>> = std::cell::OnceCell::new();
        let held_by_other = |t: &Uuid, p: i32| {
            held.get_or_init(|| {
                self.members
                    .values()
                    .filter(|m| m.member_id != member_id)
                    .flat_map(|m| m.held())
                    .collect()
            })
            .contains(&(*t, p))
        };
        let empty = Assignment::new();
        let target = self.target.get(member_id).unwrap_or(&empty);
        let next = reconcile(member, self.assignment_epoch, target, owned, held_by_other);
        if next == member.rec {
            return false;
        }
        let revoking = next.state == MemberState::UnrevokedPartitions;
        let rebalance_timeout = member.meta.rebalance_timeout_ms.max(0) as i64;
        if let Some(m) = self.members.get_mut(member_id) {
            m.rec = next;
        }
        let timers = self.timers.entry(member_id.to_string()).or_default();
        timers.revocation_deadline = match (revoking, timers.revocation_deadline) {
            (true, Some(d)) => Some(d),
            (true, None) => Some(now + rebalance_timeout),
            (false, _) => None,
        };
        self.write_reconciliation(member_id, out);
        true
    }

    fn write_reconciliation(&self, member_id: &str, out: &mut Vec<ConsumerRecord>) {
        if let Some(m) = self.members.get(member_id) {
            out.push(ConsumerRecord::CurrentMemberAssignment {
                group: self.group_id.clone(),
                member: member_id.to_string(),
                value: Some(m.rec.clone()),
            });
        }
    }

    fn touch(&mut self, member_id: &str, session_timeout_ms: i32, now: i64) {
        self.timers.entry(member_id.to_string()).or_default().session_deadline = now + session_timeout_ms as i64;
    }
}

/// Kafka's epoch check: a member ahead of the group is fenced; one behind is
/// accepted only when it is one epoch behind (its last response was lost) and
/// owns nothing it should not.
fn check_epoch(m: &ConsumerMember, epoch: i32, owned: Option<&Assignment>) -> Result<()> {
    if epoch == m.rec.epoch {
        return Ok(());
    }
    let lost_response = epoch == m.rec.previous_epoch && owned.is_some_and(|o| is_subset(o, &m.rec.assigned));
    if epoch > m.rec.epoch || !lost_response {
        return Err(Error::FencedMemberEpoch(format!(
            "member {} sent epoch {epoch}; its epoch is {}",
            m.member_id, m.rec.epoch
        )));
    }
    Ok(())
}
