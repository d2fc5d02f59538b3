//! A member of a consumer-protocol group and its reconciliation: how it moves
//! from the partitions it has to the ones the target assignment gives it
//! (Kafka's ConsumerGroupMember and CurrentAssignmentBuilder).
//!
//! The one rule that makes KIP-848 safe: a partition is never owned by two
//! members. A member first gives up (revokes) what the target takes from it and
//! keeps its epoch until it says, in a heartbeat, that it did; only then does it
//! move to the target's epoch. A partition the target gives a member while
//! another member still holds it is held back (unreleased) until that member
//! revoked it.

use std::collections::BTreeSet;

use bytes::Bytes;
use uuid::Uuid;

use super::assignor::Assignment;

/// Where a member stands in its reconciliation (Kafka's MemberState, with its
/// byte values as `__consumer_offsets` stores them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// It owns what the target gives it at its epoch.
    Stable,
    /// It was asked to give up partitions and has not confirmed yet; its epoch
    /// stays the old one.
    UnrevokedPartitions,
    /// It has the target's epoch but waits for partitions other members still hold.
    UnreleasedPartitions,
}

impl MemberState {
    pub fn as_byte(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
        }
    }

    pub fn from_byte(b: i8) -> MemberState {
        match b {
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Stable,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Stable => "stable",
            MemberState::UnrevokedPartitions => "unrevoked_partitions",
            MemberState::UnreleasedPartitions => "unreleased_partitions",
        }
    }
}

/// A member that speaks the classic protocol (JoinGroup/SyncGroup/Heartbeat)
/// inside a consumer-protocol group, during an online upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicMember {
    pub session_timeout_ms: i32,
    /// Protocol name and its metadata (a ConsumerProtocolSubscription), in the
    /// member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
}

/// A member as the group keeps it: its id, what it told the group, and where
/// it is in its reconciliation (each stored as its own record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMember {
    pub member_id: String,
    pub meta: MemberMetadataValue,
    pub rec: Reconciled,
}

/// What a member told the group: who it is and what it subscribes to (Kafka's
/// ConsumerGroupMemberMetadataValue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    /// Set for a member that speaks the classic protocol.
    pub classic: Option<ClassicMember>,
}

impl ConsumerMember {
    pub fn new(member_id: &str) -> ConsumerMember {
        ConsumerMember {
            member_id: member_id.to_string(),
            meta: MemberMetadataValue {
                instance_id: None,
                rack_id: None,
                client_id: String::new(),
                client_host: String::new(),
                subscribed_topic_names: Vec::new(),
                subscribed_topic_regex: None,
                server_assignor: None,
                rebalance_timeout_ms: -1,
                classic: None,
            },
            rec: Reconciled {
                epoch: 0,
                previous_epoch: 0,
                state: MemberState::Stable,
                assigned: Assignment::new(),
                pending_revocation: Assignment::new(),
            },
        }
    }

    /// Every partition the member holds: assigned or still to be revoked.
    pub fn held(&self) -> impl Iterator<Item = (Uuid, i32)> + '_ {
        self.rec
            .assigned
            .iter()
            .chain(&self.rec.pending_revocation)
            .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
    }
}

/// A member's reconciliation (Kafka's ConsumerGroupCurrentMemberAssignmentValue):
/// its epoch — the target-assignment epoch it reconciled to, −2 while a static
/// member is away —, its state, and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    pub epoch: i32,
    pub previous_epoch: i32,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
}

/// Whether `a` holds any partition of `b`.
fn overlaps(a: &Assignment, b: &Assignment) -> bool {
    b.iter()
        .any(|(t, ps)| a.get(t).is_some_and(|have| !have.is_disjoint(ps)))
}

/// Whether every partition of `a` is in `b`.
pub fn is_subset(a: &Assignment, b: &Assignment) -> bool {
    a.iter()
        .all(|(t, ps)| ps.is_empty() || b.get(t).is_some_and(|have| ps.is_subset(have)))
}

/// Move `member` one step towards `target` (at `target_epoch`). `owned` is what
/// the member said it owns in this heartbeat (None: it did not say);
/// `held_by_other` tells whether another member still holds a partition.
pub fn reconcile(
    member: &ConsumerMember,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    held_by_other: impl Fn(&Uuid, i32) -> bool,
) -> Reconciled {
    match member.rec.state {
        MemberState::Stable if member.rec.epoch == target_epoch => return member.rec.clone(),
        // Still waiting for the member to confirm it gave the partitions up.
        MemberState::UnrevokedPartitions if owned.is_none_or(|o| overlaps(o, &member.rec.pending_revocation)) => {
            return member.rec.clone()
        }
        _ => {}
    }
    let mut kept = Assignment::new();
    let mut revoke = Assignment::new();
    let mut added = Assignment::new();
    let mut unreleased = false;
    let topics: BTreeSet<&Uuid> = target.keys().chain(member.rec.assigned.keys()).collect();
    let empty = BTreeSet::new();
    for topic in topics {
        let want = target.get(topic).unwrap_or(&empty);
        let have = member.rec.assigned.get(topic).unwrap_or(&empty);
        let keep: BTreeSet<i32> = have.intersection(want).copied().collect();
        let give_up: BTreeSet<i32> = have.difference(want).copied().collect();
        let mut free = BTreeSet::new();
        for &p in want.difference(have) {
            if held_by_other(topic, p) {
                unreleased = true;
            } else {
                free.insert(p);
            }
        }
        if !keep.is_empty() {
            kept.insert(*topic, keep);
        }
        if !give_up.is_empty() {
            revoke.insert(*topic, give_up);
        }
        if !free.is_empty() {
            added.insert(*topic, free);
        }
    }
    // Revoke first: nothing new until the member confirmed. A member that says
    // it already let them go skips the wait.
    if !revoke.is_empty() && owned.is_none_or(|o| overlaps(o, &revoke)) {
        return Reconciled {
            epoch: member.rec.epoch,
            previous_epoch: member.rec.previous_epoch,
            state: MemberState::UnrevokedPartitions,
            assigned: kept,
            pending_revocation: revoke,
        };
    }
    for (t, ps) in added {
        kept.entry(t).or_default().extend(ps);
    }
    Reconciled {
        epoch: target_epoch,
        previous_epoch: if member.rec.epoch == target_epoch {
            member.rec.previous_epoch
        } else {
            member.rec.epoch
        },
        state: if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        },
        assigned: kept,
        pending_revocation: Assignment::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Uuid {
        Uuid::from_bytes([7; 16])
    }

    fn parts(ps: &[i32]) -> Assignment {
        if ps.is_empty() {
            return Assignment::new();
        }
        Assignment::from([(t(), ps.iter().copied().collect())])
    }

    fn member(epoch: i32, assigned: &[i32]) -> ConsumerMember {
        let mut m = ConsumerMember::new("m");
        m.rec.epoch = epoch;
        m.rec.previous_epoch = epoch - 1;
        m.rec.assigned = parts(assigned);
        m
    }

    #[test]
    fn a_new_member_gets_free_partitions_at_the_target_epoch() {
        let m = member(0, &[]);
        let r = reconcile(&m, 3, &parts(&[0, 1]), Some(&Assignment::new()), |_, _| false);
        assert_eq!((r.epoch, r.state, r.assigned), (3, MemberState::Stable, parts(&[0, 1])));
    }

    #[test]
    fn revocation_comes_first_and_keeps_the_epoch_until_confirmed() {
        let m = member(2, &[0, 1, 2]);
        // Target at epoch 3: keep 0, give up 1 and 2, get 5.
        let r = reconcile(&m, 3, &parts(&[0, 5]), None, |_, _| false);
        assert_eq!(r.state, MemberState::UnrevokedPartitions);
        assert_eq!(r.epoch, 2);
        assert_eq!(r.assigned, parts(&[0]));
        assert_eq!(r.pending_revocation, parts(&[1, 2]));
        let mut m = m;
        m.rec = r;
        // A heartbeat that does not say, or still owns 2: still waiting.
        assert_eq!(
            reconcile(&m, 3, &parts(&[0, 5]), None, |_, _| false).state,
            MemberState::UnrevokedPartitions
        );
        let still = reconcile(&m, 3, &parts(&[0, 5]), Some(&parts(&[0, 2])), |_, _| false);
        assert_eq!(still.state, MemberState::UnrevokedPartitions);
        // Confirmed: epoch 3, and 5 with it.
        let done = reconcile(&m, 3, &parts(&[0, 5]), Some(&parts(&[0])), |_, _| false);
        assert_eq!(
            (done.epoch, done.previous_epoch, done.state),
            (3, 2, MemberState::Stable)
        );
        assert_eq!(done.assigned, parts(&[0, 5]));
    }

    #[test]
    fn partitions_another_member_holds_wait() {
        let m = member(2, &[0]);
        let r = reconcile(&m, 3, &parts(&[0, 1]), Some(&parts(&[0])), |_, p| p == 1);
        assert_eq!((r.epoch, r.state), (3, MemberState::UnreleasedPartitions));
        assert_eq!(r.assigned, parts(&[0]));
        let mut m = m;
        m.rec = r;
        // Released: the same epoch, now with 1.
        let r = reconcile(&m, 3, &parts(&[0, 1]), None, |_, _| false);
        assert_eq!((r.epoch, r.previous_epoch, r.state), (3, 2, MemberState::Stable));
        assert_eq!(r.assigned, parts(&[0, 1]));
    }

    #[test]
    fn a_member_that_already_let_go_skips_the_revocation() {
        let m = member(2, &[0, 1]);
        let r = reconcile(&m, 3, &parts(&[0]), Some(&parts(&[0])), |_, _| false);
        assert_eq!((r.epoch, r.state, r.assigned), (3, MemberState::Stable, parts(&[0])));
    }

    #[test]
    fn a_stable_member_at_the_target_epoch_stays() {
        let m = member(3, &[0]);
        assert_eq!(reconcile(&m, 3, &parts(&[0, 1]), None, |_, _| false), m.rec.clone());
    }

    #[test]
    fn subsets() {
        assert!(is_subset(&parts(&[1]), &parts(&[0, 1])));
        assert!(!is_subset(&parts(&[2]), &parts(&[0, 1])));
        assert!(is_subset(&Assignment::new(), &Assignment::new()));
    }
}
