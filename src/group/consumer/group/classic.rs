//! Classic-protocol members inside a consumer-protocol group: how a group moves
//! between the two protocols while it runs (Kafka 4's online migration).
//!
//! - **Upgrade**: a member with `group.protocol=consumer` joins a classic group
//!   that has members. The group becomes a consumer group at the classic
//!   generation, its members keep their assignments and stay classic members.
//! - Classic members in a consumer group still send JoinGroup, SyncGroup and
//!   Heartbeat; the broker answers them from the server-side assignment: a
//!   JoinGroup makes no one leader and returns at once, SyncGroup hands out the
//!   member's partitions, Heartbeat says REBALANCE_IN_PROGRESS when the member
//!   has something to give up or to get.
//! - **Downgrade**: when the last consumer-protocol member leaves and classic
//!   members remain, the group becomes a classic group again and rebalances.

use std::collections::BTreeSet;

use super::*;
use crate::group::assignment::{decode_assignment, encode_assignment, subscription};
use crate::group::consumer::member::ClassicMember;
use crate::group::member::{JoinArgs, JoinResult, Member, MemberProfile, MemberRef, SyncResult};
use crate::group::state::Group;

/// Topic names and partitions → topic ids (topics that no longer exist drop out).
fn by_id(named: &[(String, Vec<i32>)], topics: &TopicsView) -> Assignment {
    let mut a = Assignment::new();
    for (name, parts) in named {
        if let Some((id, _)) = topics.get(name) {
            a.entry(id).or_default().extend(parts.iter().copied());
        }
    }
    a
}

/// Topic ids → names, as a classic member's assignment carries them.
fn by_name(a: &Assignment, topics: &TopicsView) -> Vec<(String, Vec<i32>)> {
    a.iter()
        .filter_map(|(id, ps)| Some((topics.name_of(id)?.to_string(), ps.iter().copied().collect())))
        .collect()
}

impl ConsumerGroup {
    /// Whether a classic member may join with these protocols: "consumer" type and
    /// a protocol every classic member supports.
    fn supports_classic(&self, args: &JoinArgs) -> bool {
        args.protocol_type == "consumer"
            && self.members.values().filter_map(|m| m.meta.classic.as_ref()).all(|c| {
                c.protocols
                    .iter()
                    .any(|(name, _)| args.profile.protocols.iter().any(|(n, _)| n == name))
            })
    }

    /// A classic JoinGroup to this consumer group: answered at once, with the
    /// member's epoch as the generation and no leader.
    pub fn classic_join(
        &mut self,
        args: JoinArgs,
        config: &ConsumerConfig,
        topics: &TopicsView,
        now: i64,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<JoinResult> {
        if !self.supports_classic(&args) {
            return Err(Error::InconsistentGroupProtocol);
        }
        let p = &args.profile;
        let Some((protocol, metadata)) = p.protocols.first() else {
            return Err(Error::InconsistentGroupProtocol);
        };
        let sub = subscription(metadata).ok_or(Error::InconsistentGroupProtocol)?;
        let static_old = p
            .group_instance_id
            .as_deref()
            .and_then(|i| self.static_member(i))
            .cloned();
        let member_id = match p.member_id.is_empty() {
            true => format!("{}-{}", p.client_id, uuid::Uuid::new_v4()),
            false => p.member_id.clone(),
        };
        // KIP-394: a new dynamic member first learns its id.
        if p.member_id.is_empty() && p.group_instance_id.is_none() && args.require_known_member_id {
            return Err(Error::MemberIdRequired(member_id));
        }
        if self.members.len() >= config.max_size && !self.members.contains_key(&member_id) {
            return Err(Error::GroupMaxSizeReached(self.group_id.clone()));
        }
        let mut member = match static_old {
            // A consumer-protocol member's instance id is taken only once it left (−2).
            Some(old) if old.member_id != member_id && old.meta.classic.is_none() && old.rec.epoch != -2 => {
                return Err(Error::UnreleasedInstanceId(
                    p.group_instance_id.clone().unwrap_or_default(),
                ));
            }
            // A static member's new incarnation takes over its partitions.
            Some(old) if old.member_id != member_id => {
                let target = self.target.get(&old.member_id).cloned();
                self.forget_member(&old.member_id);
                out.extend(ConsumerRecord::member_tombstones(&self.group_id, &old.member_id));
                if let Some(t) = target {
                    self.target.insert(member_id.clone(), t);
                }
                let mut m = ConsumerMember {
                    member_id: member_id.clone(),
                    ..old
                };
                // It starts over at epoch 0 (its predecessor may be away, at −2)
                // and reconciles back to the partitions it takes over.
                m.rec.epoch = 0;
                m.rec.previous_epoch = 0;
                m
            }
            _ => match self.members.get(&member_id) {
                // A consumer-protocol member's id is not a classic member's.
                Some(m) if m.meta.classic.is_none() => return Err(Error::UnknownMemberId(member_id)),
                Some(m) => m.clone(),
                None => ConsumerMember::new(&member_id),
            },
        };
        let before = member.clone();
        member.meta.instance_id = p.group_instance_id.clone();
        member.meta.client_id = p.client_id.clone();
        member.meta.client_host = p.client_host.clone();
        member.meta.rebalance_timeout_ms = p.rebalance_timeout_ms;
        member.meta.rack_id = sub.rack_id.clone();
        let mut names = sub.topics.clone();
        names.sort();
        names.dedup();
        member.meta.subscribed_topic_names = names;
        member.meta.subscribed_topic_regex = None;
        member.meta.classic = Some(ClassicMember {
            session_timeout_ms: p.session_timeout_ms,
            protocols: p.protocols.clone(),
        });
        let owned = by_id(&sub.owned, topics);
        self.touch(&member_id, p.session_timeout_ms, now);
        let bump = self.store_member(&before, member, out);
        self.refresh(bump, config, topics, out);
        self.reconcile_member(&member_id, Some(&owned), now, out);
        Ok(JoinResult {
            member_id: member_id.clone(),
            generation_id: self.members[&member_id].rec.epoch,
            protocol_type: Some("consumer".to_string()),
            protocol_name: Some(protocol.clone()),
            leader: String::new(),
            members: Vec::new(),
            skip_assignment: false,
        })
    }

    /// The classic member a SyncGroup or Heartbeat comes from, checked.
    fn classic_member(&self, caller: MemberRef<'_>) -> Result<&ConsumerMember> {
        let m = self
            .members
            .get(caller.member_id)
            .filter(|m| m.meta.classic.is_some())
            .ok_or_else(|| Error::UnknownMemberId(caller.member_id.to_string()))?;
        if let Some(instance) = caller.instance {
            if m.meta.instance_id.as_deref() != Some(instance) {
                return Err(Error::FencedInstanceId(instance.to_string()));
            }
        }
        if caller.generation_id != m.rec.epoch {
            return Err(Error::IllegalGeneration {
                found: caller.generation_id,
                current: m.rec.epoch,
            });
        }
        Ok(m)
    }

    /// A classic SyncGroup: the member's partitions (what the leader sends is
    /// ignored: the broker assigns).
    pub fn classic_sync(&mut self, caller: MemberRef<'_>, topics: &TopicsView, now: i64) -> Result<SyncResult> {
        let m = self.classic_member(caller)?;
        if self.group_epoch > m.rec.epoch && m.rec.state != MemberState::UnrevokedPartitions {
            return Err(Error::RebalanceInProgress);
        }
        let protocol = m
            .meta
            .classic
            .as_ref()
            .and_then(|c| c.protocols.first())
            .map(|(n, _)| n.clone());
        let assignment = encode_assignment(&by_name(&m.rec.assigned, topics));
        let timeout = m.meta.classic.as_ref().map_or(0, |c| c.session_timeout_ms);
        self.touch(caller.member_id, timeout, now);
        Ok(SyncResult {
            protocol_type: Some("consumer".to_string()),
            protocol_name: protocol,
            assignment,
        })
    }

    /// A classic Heartbeat: REBALANCE_IN_PROGRESS when the member should rejoin
    /// to give something up or to get something.
    pub fn classic_heartbeat(&mut self, caller: MemberRef<'_>, now: i64) -> Result<()> {
        let m = self.classic_member(caller)?;
        let timeout = m.meta.classic.as_ref().map_or(0, |c| c.session_timeout_ms);
        let rejoin = m.rec.epoch < self.group_epoch
            || m.rec.state == MemberState::UnrevokedPartitions
            || (m.rec.state == MemberState::UnreleasedPartitions && self.has_released_for(m));
        self.touch(caller.member_id, timeout, now);
        if rejoin {
            return Err(Error::RebalanceInProgress);
        }
        Ok(())
    }

    /// Whether a partition `m`'s target gives it and it does not have is free now.
    fn has_released_for(&self, m: &ConsumerMember) -> bool {
        let held: BTreeSet<(uuid::Uuid, i32)> = self
            .members
            .values()
            .filter(|o| o.member_id != m.member_id)
            .flat_map(|o| o.held())
            .collect();
        self.target.get(&m.member_id).is_some_and(|t| {
            t.iter().any(|(topic, ps)| {
                ps.iter()
                    .any(|p| !m.rec.assigned.get(topic).is_some_and(|a| a.contains(p)) && !held.contains(&(*topic, *p)))
            })
        })
    }

    /// A classic LeaveGroup of one member (by id, or by static instance).
    pub fn classic_leave(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<()> {
        let found = match instance {
            Some(i) => match self.static_member(i) {
                Some(m) if !member_id.is_empty() && m.member_id != member_id => {
                    return Err(Error::FencedInstanceId(i.to_string()))
                }
                Some(m) => m.member_id.clone(),
                None => return Err(Error::UnknownMemberId(member_id.to_string())),
            },
            None if self.members.contains_key(member_id) => member_id.to_string(),
            None => return Err(Error::UnknownMemberId(member_id.to_string())),
        };
        self.remove_member(&found, out);
        Ok(())
    }

    /// Upgrade: the consumer group a classic group with members becomes, at its
    /// generation, each member keeping its assignment as a classic member.
    /// None if a member's subscription or assignment is not the consumer
    /// protocol's.
    pub fn from_classic(
        classic: &Group,
        topics: &TopicsView,
        now: i64,
        out: &mut Vec<ConsumerRecord>,
    ) -> Option<ConsumerGroup> {
        let mut g = ConsumerGroup::new(&classic.group_id);
        g.group_epoch = classic.generation_id;
        g.assignment_epoch = classic.generation_id;
        let protocol = classic.protocol_name.clone().unwrap_or_default();
        for m in classic.members.values() {
            let sub = subscription(&m.metadata_for(&protocol))?;
            let mut names = sub.topics.clone();
            names.sort();
            names.dedup();
            let assigned = by_id(&decode_assignment(&m.assignment), topics);
            let p = &m.profile;
            let mut member = ConsumerMember::new(&p.member_id);
            member.meta = MemberMetadataValue {
                instance_id: p.group_instance_id.clone(),
                rack_id: sub.rack_id.clone(),
                client_id: p.client_id.clone(),
                client_host: p.client_host.clone(),
                subscribed_topic_names: names,
                subscribed_topic_regex: None,
                server_assignor: None,
                rebalance_timeout_ms: p.rebalance_timeout_ms,
                classic: Some(ClassicMember {
                    session_timeout_ms: p.session_timeout_ms,
                    protocols: p.protocols.clone(),
                }),
            };
            member.rec.epoch = classic.generation_id;
            member.rec.previous_epoch = classic.generation_id;
            member.rec.assigned = assigned.clone();
            g.target.insert(p.member_id.clone(), assigned);
            g.touch(&p.member_id, p.session_timeout_ms, now);
            g.members.insert(p.member_id.clone(), member);
        }
        g.subscribed = g.resolve_subscriptions(topics);
        for m in g.members.values() {
            out.push(ConsumerRecord::MemberMetadata {
                group: g.group_id.clone(),
                member: m.member_id.clone(),
                value: Some(m.meta.clone()),
            });
        }
        out.push(ConsumerRecord::Metadata {
            group: g.group_id.clone(),
            epoch: Some(g.group_epoch),
        });
        out.push(ConsumerRecord::PartitionMetadata {
            group: g.group_id.clone(),
            topics: Some(g.subscribed.iter().map(|(n, t)| (n.clone(), t.clone())).collect()),
        });
        for (id, a) in &g.target {
            out.push(ConsumerRecord::TargetAssignmentMember {
                group: g.group_id.clone(),
                member: id.clone(),
                partitions: Some(a.clone()),
            });
        }
        out.push(ConsumerRecord::TargetAssignmentMetadata {
            group: g.group_id.clone(),
            epoch: Some(g.assignment_epoch),
        });
        for id in g.members.keys() {
            g.write_reconciliation(id, out);
        }
        Some(g)
    }

    /// Downgrade: the classic group this one becomes when only classic members
    /// are left (None otherwise). Its members get their target assignments and
    /// a rebalance starts.
    pub fn to_classic(&self, topics: &TopicsView, now: i64) -> Option<Group> {
        if self.members.is_empty() || self.members.values().any(|m| m.meta.classic.is_none()) {
            return None;
        }
        let classics: Vec<&ClassicMember> = self.members.values().filter_map(|m| m.meta.classic.as_ref()).collect();
        let protocol = classics
            .first()?
            .protocols
            .iter()
            .map(|(n, _)| n.clone())
            .find(|name| classics.iter().all(|c| c.protocols.iter().any(|(n, _)| n == name)))?;
        let empty = Assignment::new();
        let members = self
            .members
            .values()
            .filter_map(|m| {
                let c = m.meta.classic.as_ref()?;
                let profile = MemberProfile {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.meta.instance_id.clone(),
                    client_id: m.meta.client_id.clone(),
                    client_host: m.meta.client_host.clone(),
                    session_timeout_ms: c.session_timeout_ms,
                    rebalance_timeout_ms: m.meta.rebalance_timeout_ms,
                    protocols: c.protocols.clone(),
                };
                let target = self.target.get(&m.member_id).unwrap_or(&empty);
                Some(Member {
                    assignment: encode_assignment(&by_name(target, topics)),
                    ..Member::new(profile, now)
                })
            })
            .collect();
        Some(Group::restore(
            &self.group_id,
            self.group_epoch,
            Some("consumer".to_string()),
            Some(protocol),
            None,
            members,
        ))
    }
}
