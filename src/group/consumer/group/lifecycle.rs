//! How members leave a consumer group (a leave, an expired session, a fence) and
//! how a group is rebuilt from, or deleted with, its records.

use super::*;

impl ConsumerGroup {
    // ---- leaving ---------------------------------------------------------------

    /// A heartbeat with epoch −1 (leave) or −2 (a static member leaving for a
    /// while: it keeps its assignment until its session times out).
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        epoch: i32,
        config: &ConsumerConfig,
        now: i64,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<HeartbeatResult> {
        let found = match instance_id {
            Some(instance) => match self.static_member(instance) {
                Some(m) if m.member_id != member_id => return Err(Error::FencedInstanceId(instance.to_string())),
                Some(m) => m.member_id.clone(),
                None => return Err(Error::UnknownMemberId(member_id.to_string())),
            },
            None if self.members.contains_key(member_id) => member_id.to_string(),
            None => return Err(Error::UnknownMemberId(member_id.to_string())),
        };
        if epoch == -2 {
            if let Some(m) = self.members.get_mut(&found) {
                m.rec.epoch = -2;
                m.rec.pending_revocation.clear();
            }
            let timeout = config.session_timeout_for(self.members.get(&found));
            self.touch(&found, timeout, now);
            self.write_reconciliation(&found, out);
        } else {
            self.remove_member(&found, out);
        }
        Ok(HeartbeatResult {
            member_id: member_id.to_string(),
            member_epoch: epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        })
    }

    /// Take a member out (left, expired or fenced): tombstones for its records,
    /// its partitions free, the group epoch up.
    pub fn remove_member(&mut self, member_id: &str, out: &mut Vec<ConsumerRecord>) {
        if !self.members.contains_key(member_id) {
            return;
        }
        for record in ConsumerRecord::member_tombstones(&self.group_id, member_id) {
            out.push(record);
        }
        self.forget_member(member_id);
        self.bump_epoch(out);
    }

    pub(super) fn forget_member(&mut self, member_id: &str) {
        self.members.remove(member_id);
        self.target.remove(member_id);
        self.timers.remove(member_id);
    }

    /// Expire members whose session ran out and fence those that did not revoke
    /// within their rebalance timeout. Returns the removed members' ids.
    pub fn tick(&mut self, now: i64, out: &mut Vec<ConsumerRecord>) -> Vec<String> {
        let gone: Vec<String> = self
            .timers
            .iter()
            .filter(|(_, t)| t.session_deadline <= now || t.revocation_deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            tracing::info!(group = %self.group_id, member = %id, "consumer group member expired or fenced");
            self.remove_member(id, out);
        }
        gone
    }

    /// Records that delete the whole group (after its members).
    pub fn tombstones(&self) -> Vec<ConsumerRecord> {
        let mut out = Vec::new();
        for id in self.members.keys() {
            out.extend(ConsumerRecord::member_tombstones(&self.group_id, id));
        }
        out.extend(ConsumerRecord::group_tombstones(&self.group_id));
        out
    }

    // ---- replay -------------------------------------------------------------------

    /// Apply one stored record (at start).
    pub fn replay(&mut self, record: ConsumerRecord) {
        match record {
            ConsumerRecord::Metadata { epoch, .. } => self.group_epoch = epoch.unwrap_or(0),
            ConsumerRecord::PartitionMetadata { topics, .. } => {
                self.subscribed = topics.unwrap_or_default().into_iter().collect();
            }
            ConsumerRecord::MemberMetadata { member, value, .. } => match value {
                Some(v) => {
                    let m = self
                        .members
                        .entry(member.clone())
                        .or_insert_with(|| ConsumerMember::new(&member));
                    m.meta = v;
                }
                None => self.forget_member(&member),
            },
            ConsumerRecord::TargetAssignmentMetadata { epoch, .. } => self.assignment_epoch = epoch.unwrap_or(0),
            ConsumerRecord::TargetAssignmentMember { member, partitions, .. } => match partitions {
                Some(a) => {
                    self.target.insert(member, a);
                }
                None => {
                    self.target.remove(&member);
                }
            },
            ConsumerRecord::CurrentMemberAssignment { member, value, .. } => {
                if let (Some(v), Some(m)) = (value, self.members.get_mut(&member)) {
                    m.rec = v;
                }
            }
        }
    }
}
