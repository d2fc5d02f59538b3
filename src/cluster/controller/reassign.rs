//! Moving a partition's replicas (KIP-455, Kafka's
//! `kafka-reassign-partitions`): the controller first widens the assignment
//! to the target and the current replicas together (`adding` the new ones,
//! `removing` those not in the target), so the new replicas copy the leader's
//! log as followers; once every target replica is in sync it narrows the
//! assignment to the target, moving leadership into it if the leader is
//! leaving. Nothing acknowledged is lost: the records reach the target's ISR
//! before any old replica goes. A reassignment is cancelled by going back to
//! the replicas it started from (the ones being added leave).

use super::super::image::PartitionRecord;
use crate::error::{Error, Result};

/// The replicas a reassignment moves to (without those being removed); the
/// assignment itself when none runs.
pub fn target(r: &PartitionRecord) -> Vec<i32> {
    r.replicas.iter().copied().filter(|b| !r.removing.contains(b)).collect()
}

/// The replicas a reassignment started from (without those being added).
pub fn original(r: &PartitionRecord) -> Vec<i32> {
    r.replicas.iter().copied().filter(|b| !r.adding.contains(b)).collect()
}

pub fn ongoing(r: &PartitionRecord) -> bool {
    !r.adding.is_empty() || !r.removing.is_empty()
}

/// A target is distinct, non-empty broker ids, each `registered`.
pub fn check_target(target: &[i32], registered: impl Fn(i32) -> bool) -> Result<()> {
    let mut seen = target.to_vec();
    seen.sort_unstable();
    seen.dedup();
    if target.is_empty() || seen.len() != target.len() {
        return Err(Error::InvalidReplicaAssignment(format!(
            "{target:?}: replicas must be distinct and at least one"
        )));
    }
    if let Some(b) = target.iter().find(|b| !registered(**b)) {
        return Err(Error::InvalidReplicaAssignment(format!("broker {b} is not registered")));
    }
    Ok(())
}

fn bumped(r: &PartitionRecord) -> PartitionRecord {
    PartitionRecord {
        partition_epoch: r.partition_epoch.saturating_add(1),
        ..r.clone()
    }
}

/// Start moving `r` to `target` (checked): None when there is nothing to do.
/// A running reassignment is replaced, from the replicas it started from; a
/// target equal to those cancels it. Completes at once when the target is in
/// sync already (fewer replicas, say).
pub fn start(r: &PartitionRecord, target: &[i32], alive: impl Fn(i32) -> bool) -> Result<Option<PartitionRecord>> {
    let from = original(r);
    if target == from.as_slice() {
        return if ongoing(r) {
            cancel(r, alive).map(Some)
        } else {
            Ok(None)
        };
    }
    let mut replicas = target.to_vec();
    replicas.extend(from.iter().copied().filter(|b| !target.contains(b)));
    let widened = PartitionRecord {
        adding: target.iter().copied().filter(|b| !from.contains(b)).collect(),
        removing: from.iter().copied().filter(|b| !target.contains(b)).collect(),
        // Replicas being added that were in sync for a reassignment now
        // replaced leave with it, unless the new target keeps them.
        isr: r.isr.iter().copied().filter(|b| replicas.contains(b)).collect(),
        replicas,
        ..bumped(r)
    };
    if widened.isr.is_empty() {
        return Err(Error::InvalidReplicaAssignment(
            "the partition would have no in-sync replica left".into(),
        ));
    }
    // The leader of a replaced reassignment may itself be leaving.
    let widened = led_from_isr(widened, &alive);
    Ok(Some(complete(&widened, alive).unwrap_or(widened)))
}

/// Go back to the replicas a running reassignment started from
/// (NO_REASSIGNMENT_IN_PROGRESS if none runs). The replicas being added
/// leave the ISR; if the leader was one of them, an in-sync original replica
/// leads (refused when there is none: that would be an unclean election).
pub fn cancel(r: &PartitionRecord, alive: impl Fn(i32) -> bool) -> Result<PartitionRecord> {
    if !ongoing(r) {
        return Err(Error::NoReassignmentInProgress);
    }
    let replicas = original(r);
    let isr: Vec<i32> = r.isr.iter().copied().filter(|b| replicas.contains(b)).collect();
    if isr.is_empty() {
        return Err(Error::InvalidReplicaAssignment(
            "cancelling would leave no in-sync replica (an unclean election)".into(),
        ));
    }
    let reverted = PartitionRecord {
        replicas,
        isr,
        adding: Vec::new(),
        removing: Vec::new(),
        ..bumped(r)
    };
    Ok(led_from_isr(reverted, &alive))
}

/// Finish a running reassignment whose target replicas are all in sync: the
/// assignment becomes the target, and if the leader is leaving, the first
/// running target replica leads at a new epoch. None while it must wait.
pub fn complete(r: &PartitionRecord, alive: impl Fn(i32) -> bool) -> Option<PartitionRecord> {
    if !ongoing(r) {
        return None;
    }
    let target = target(r);
    if !target.iter().all(|b| r.isr.contains(b)) {
        return None;
    }
    let done = PartitionRecord {
        isr: r.isr.iter().copied().filter(|b| target.contains(b)).collect(),
        replicas: target,
        adding: Vec::new(),
        removing: Vec::new(),
        ..bumped(r)
    };
    Some(led_from_isr(done, &alive))
}

/// `r` as it is if its leader is in its ISR (or it has none); else led by its
/// first running in-sync replica (in assignment order), at a new leader
/// epoch, or offline (−1) if none runs.
fn led_from_isr(r: PartitionRecord, alive: impl Fn(i32) -> bool) -> PartitionRecord {
    if r.leader == -1 || r.isr.contains(&r.leader) {
        return r;
    }
    let leader = r
        .replicas
        .iter()
        .copied()
        .find(|b| r.isr.contains(b) && alive(*b))
        .unwrap_or(-1);
    PartitionRecord {
        leader,
        leader_epoch: r.leader_epoch.saturating_add(1),
        ..r
    }
}

#[cfg(test)]
mod tests {
    use super::super::leadership::tests::record;
    use super::*;

    const ALL: fn(i32) -> bool = |_| true;

    #[test]
    fn a_move_widens_then_narrows_once_the_target_is_in_sync() {
        let r = record(&[1, 2, 3], &[1, 2, 3], 1);
        let widened = start(&r, &[2, 3, 4], ALL).unwrap().unwrap();
        assert_eq!(widened.replicas, vec![2, 3, 4, 1]);
        assert_eq!((widened.adding.clone(), widened.removing.clone()), (vec![4], vec![1]));
        assert_eq!(
            (widened.leader, widened.leader_epoch),
            (1, 4),
            "the leader stays meanwhile"
        );
        assert_eq!(widened.partition_epoch, 10);
        assert_eq!(target(&widened), vec![2, 3, 4]);
        assert_eq!(original(&widened), vec![2, 3, 1]);
        // Not before 4 is in sync.
        assert_eq!(complete(&widened, ALL), None);
        let caught_up = PartitionRecord {
            isr: vec![1, 2, 3, 4],
            ..widened
        };
        let done = complete(&caught_up, ALL).unwrap();
        assert_eq!(
            (done.replicas.clone(), done.isr.clone()),
            (vec![2, 3, 4], vec![2, 3, 4])
        );
        assert!(done.adding.is_empty() && done.removing.is_empty());
        assert_eq!(
            (done.leader, done.leader_epoch),
            (2, 5),
            "the leaving leader hands over"
        );
    }

    #[test]
    fn shrinking_completes_at_once_and_the_same_target_is_nothing() {
        let r = record(&[1, 2, 3], &[1, 2, 3], 2);
        let done = start(&r, &[2, 3], ALL).unwrap().unwrap();
        assert_eq!((done.replicas, done.leader, done.leader_epoch), (vec![2, 3], 2, 4));
        assert_eq!(start(&r, &[1, 2, 3], ALL).unwrap(), None);
        // Another order is a reassignment of its own (the preferred leader).
        let reordered = start(&r, &[3, 2, 1], ALL).unwrap().unwrap();
        assert_eq!(reordered.replicas, vec![3, 2, 1]);
        assert!(!ongoing(&reordered));
    }

    #[test]
    fn cancel_goes_back_and_a_new_target_replaces_the_old() {
        let r = record(&[1, 2, 3], &[1, 2, 3], 1);
        assert!(matches!(cancel(&r, ALL), Err(Error::NoReassignmentInProgress)));
        let widened = start(&r, &[1, 2, 3, 4], ALL).unwrap().unwrap();
        assert_eq!(widened.adding, vec![4]);
        let back = cancel(&widened, ALL).unwrap();
        assert_eq!(
            (back.replicas.clone(), back.isr.clone()),
            (vec![1, 2, 3], vec![1, 2, 3])
        );
        assert!(!ongoing(&back));
        // The original target as a new target cancels too.
        assert_eq!(
            start(&widened, &[1, 2, 3], ALL).unwrap().unwrap().replicas,
            vec![1, 2, 3]
        );
        // A new target starts from the original replicas, not the widened ones.
        let other = start(&widened, &[1, 2, 5], ALL).unwrap().unwrap();
        assert_eq!(other.replicas, vec![1, 2, 5, 3]);
        assert_eq!((other.adding.clone(), other.removing.clone()), (vec![5], vec![3]));
        // An added replica that leads when cancelled hands over to an original one.
        let led_by_new = PartitionRecord {
            isr: vec![1, 4],
            leader: 4,
            ..widened
        };
        let back = cancel(&led_by_new, ALL).unwrap();
        assert_eq!((back.leader, back.isr), (1, vec![1]));
        let only_new = PartitionRecord {
            isr: vec![4],
            ..led_by_new
        };
        assert!(cancel(&only_new, ALL).is_err(), "unclean");
    }

    #[test]
    fn targets_are_checked() {
        let registered = |b| (1..=4).contains(&b);
        assert!(check_target(&[1, 2, 3], registered).is_ok());
        for bad in [&[][..], &[1, 1], &[1, 9]] {
            assert!(check_target(bad, registered).is_err(), "{bad:?}");
        }
    }
}
