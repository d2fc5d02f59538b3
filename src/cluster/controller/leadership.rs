//! How the controller changes a partition when brokers come and go (Kafka's
//! leader election from the ISR): a partition whose leader's broker is gone
//! gets the first in-sync replica (in assignment order) that is running, at a
//! new leader epoch; replicas whose broker is gone leave the ISR, except the
//! last one, which stays so that the partition can come back with it; an
//! offline partition is led again as soon as an in-sync replica runs.
//! Unclean election (a replica not in sync) happens only when asked for
//! ([`elect`], ElectLeaders with the unclean type).

use super::super::image::PartitionRecord;
use crate::error::{Error, Result};

/// A leader's request for a new ISR (Kafka's AlterPartition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub topic: String,
    pub partition: i32,
    /// Who asks, at which leader epoch, from which partition epoch.
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<i32>,
}

/// The record an accepted ISR change makes of `r` (Kafka's checks): a stale
/// leader epoch is FENCED_LEADER_EPOCH, a request from a broker that does not
/// lead NOT_LEADER_OR_FOLLOWER, a stale partition epoch INVALID_UPDATE_VERSION,
/// an ISR without the leader or with a broker that is no replica or not
/// running INELIGIBLE_REPLICA.
pub fn alter_isr(r: &PartitionRecord, change: &IsrChange, alive: impl Fn(i32) -> bool) -> Result<PartitionRecord> {
    if change.leader_epoch < r.leader_epoch {
        return Err(Error::FencedLeaderEpoch {
            topic: change.topic.clone(),
            partition: change.partition,
            requested: change.leader_epoch,
            current: r.leader_epoch,
        });
    }
    if change.leader != r.leader || change.leader_epoch != r.leader_epoch {
        return Err(Error::NotLeaderOrFollower {
            topic: change.topic.clone(),
            partition: change.partition,
        });
    }
    if change.partition_epoch != r.partition_epoch {
        return Err(Error::InvalidUpdateVersion);
    }
    let mut isr = change.new_isr.clone();
    isr.sort_unstable();
    isr.dedup();
    let eligible = isr.len() == change.new_isr.len()
        && isr.contains(&r.leader)
        && isr.iter().all(|b| r.replicas.contains(b) && alive(*b));
    if !eligible {
        return Err(Error::IneligibleReplica(format!("{:?}", change.new_isr)));
    }
    Ok(PartitionRecord {
        isr: change.new_isr.clone(),
        partition_epoch: r.partition_epoch.saturating_add(1),
        ..r.clone()
    })
}

/// The record `r` should become given which brokers are running; None when it
/// stays as it is.
pub fn next_state(r: &PartitionRecord, alive: impl Fn(i32) -> bool) -> Option<PartitionRecord> {
    let live_isr: Vec<i32> = r
        .replicas
        .iter()
        .copied()
        .filter(|b| r.isr.contains(b) && alive(*b))
        .collect();
    let leader_alive = r.leader != -1 && alive(r.leader);
    let (leader, isr) = if leader_alive {
        // Followers that went leave the ISR; the leader stays.
        (
            r.leader,
            r.isr.iter().copied().filter(|b| alive(*b)).collect::<Vec<_>>(),
        )
    } else if let Some(first) = live_isr.first() {
        (*first, r.isr.iter().copied().filter(|b| alive(*b)).collect())
    } else {
        // Nobody in sync runs: offline, and the ISR keeps its last member.
        let last = if r.leader != -1 && r.isr.contains(&r.leader) {
            vec![r.leader]
        } else {
            r.isr.iter().copied().take(1).collect()
        };
        let isr = if r.isr.len() <= 1 { r.isr.clone() } else { last };
        (-1, isr)
    };
    if leader == r.leader && isr == r.isr {
        return None;
    }
    let leader_epoch = if leader != r.leader {
        r.leader_epoch.saturating_add(1)
    } else {
        r.leader_epoch
    };
    Some(PartitionRecord {
        leader,
        leader_epoch,
        isr,
        partition_epoch: r.partition_epoch.saturating_add(1),
        ..r.clone()
    })
}

/// Kafka's automatic preferred-leader election: for each broker, the
/// partitions whose preferred replica (the first assigned) it is but which
/// another broker leads; when they are more than `percentage` % of the
/// partitions it prefers, those whose preferred replica runs and is in sync
/// get it back as leader, at a new leader epoch. `partitions` are (key,
/// record); returns (key, new record).
pub fn preferred_elections<K: Clone>(
    partitions: &[(K, PartitionRecord)],
    percentage: u32,
    alive: impl Fn(i32) -> bool,
) -> Vec<(K, PartitionRecord)> {
    let mut preferred: std::collections::BTreeMap<i32, (usize, Vec<usize>)> = Default::default();
    for (i, (_, r)) in partitions.iter().enumerate() {
        let Some(first) = r.replicas.first() else { continue };
        let entry = preferred.entry(*first).or_default();
        entry.0 += 1;
        if r.leader != *first {
            entry.1.push(i);
        }
    }
    let mut moves = Vec::new();
    for (broker, (total, elsewhere)) in preferred {
        let imbalanced = elsewhere.len() * 100 > total * percentage as usize;
        if !imbalanced || !alive(broker) {
            continue;
        }
        for i in elsewhere {
            let (key, r) = &partitions[i];
            if r.isr.contains(&broker) {
                moves.push((
                    key.clone(),
                    PartitionRecord {
                        leader: broker,
                        leader_epoch: r.leader_epoch.saturating_add(1),
                        partition_epoch: r.partition_epoch.saturating_add(1),
                        ..r.clone()
                    },
                ));
            }
        }
    }
    moves
}

/// ElectLeaders for one partition (Kafka's controller): `preferred` gives
/// leadership to the first assigned replica, if it runs and is in sync
/// (PREFERRED_LEADER_NOT_AVAILABLE otherwise); unclean gives an offline
/// partition to a running replica even if it is not in sync — its log becomes
/// the partition's, so records only the others had may be lost — as its only
/// in-sync replica (ELIGIBLE_LEADERS_NOT_AVAILABLE if none runs).
/// ELECTION_NOT_NEEDED when the partition is already as asked.
pub fn elect(r: &PartitionRecord, preferred: bool, alive: impl Fn(i32) -> bool) -> Result<PartitionRecord> {
    let bumped = |leader: i32, isr: Vec<i32>| PartitionRecord {
        leader,
        isr,
        leader_epoch: r.leader_epoch.saturating_add(1),
        partition_epoch: r.partition_epoch.saturating_add(1),
        ..r.clone()
    };
    if preferred {
        let first = *r.replicas.first().ok_or(Error::EligibleLeadersNotAvailable)?;
        if r.leader == first {
            return Err(Error::ElectionNotNeeded);
        }
        if !alive(first) || !r.isr.contains(&first) {
            return Err(Error::PreferredLeaderNotAvailable);
        }
        return Ok(bumped(first, r.isr.clone()));
    }
    if r.leader >= 0 && alive(r.leader) {
        return Err(Error::ElectionNotNeeded);
    }
    let chosen = r
        .replicas
        .iter()
        .copied()
        .find(|b| alive(*b))
        .ok_or(Error::EligibleLeadersNotAvailable)?;
    Ok(bumped(chosen, vec![chosen]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn elections_asked_for() {
        let all = |_| true;
        // Preferred: back to the first replica, only if it runs and is in sync.
        let e = elect(&record(&[1, 2, 3], &[1, 2, 3], 2), true, all).unwrap();
        assert_eq!((e.leader, e.leader_epoch, e.partition_epoch), (1, 5, 10));
        assert_eq!(e.isr, vec![1, 2, 3]);
        assert!(matches!(
            elect(&record(&[1, 2, 3], &[1, 2, 3], 1), true, all),
            Err(Error::ElectionNotNeeded)
        ));
        assert!(matches!(
            elect(&record(&[1, 2, 3], &[2, 3], 2), true, all),
            Err(Error::PreferredLeaderNotAvailable)
        ));
        assert!(matches!(
            elect(&record(&[1, 2, 3], &[1, 2, 3], 2), true, |b| b != 1),
            Err(Error::PreferredLeaderNotAvailable)
        ));
        // Unclean: only an offline partition, to a running replica out of sync.
        assert!(matches!(
            elect(&record(&[1, 2, 3], &[1], 1), false, all),
            Err(Error::ElectionNotNeeded)
        ));
        let e = elect(&record(&[1, 2, 3], &[1], -1), false, |b| b == 3).unwrap();
        assert_eq!((e.leader, e.isr.clone(), e.leader_epoch), (3, vec![3], 5));
        assert!(matches!(
            elect(&record(&[1, 2, 3], &[1], -1), false, |_| false),
            Err(Error::EligibleLeadersNotAvailable)
        ));
    }

    pub(crate) fn record(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionRecord {
        PartitionRecord {
            v: 1,
            topic_id: "t".into(),
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 4,
            partition_epoch: 9,
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }

    #[test]
    fn leaders_follow_the_running_in_sync_replicas() {
        let all = |_| true;
        assert_eq!(next_state(&record(&[1, 2, 3], &[1, 2, 3], 1), all), None, "all well");
        // The leader goes: the next in-sync replica in assignment order leads.
        let r = next_state(&record(&[1, 2, 3], &[3, 2, 1], 1), |b| b != 1).unwrap();
        assert_eq!((r.leader, r.leader_epoch, r.partition_epoch), (2, 5, 10));
        assert_eq!(r.isr, vec![3, 2]);
        // A follower goes: it leaves the ISR, the leader and its epoch stay.
        let r = next_state(&record(&[1, 2, 3], &[1, 2, 3], 1), |b| b != 3).unwrap();
        assert_eq!((r.leader, r.leader_epoch, &r.isr[..]), (1, 4, &[1, 2][..]));
        // A replica out of sync never leads.
        let r = next_state(&record(&[1, 2, 3], &[1, 2], 1), |b| b == 3).unwrap();
        assert_eq!((r.leader, r.leader_epoch, &r.isr[..]), (-1, 5, &[1][..]));
        // The last in-sync replica comes back: it leads again.
        let offline = record(&[1, 2, 3], &[1], -1);
        assert_eq!(next_state(&offline, |b| b != 1), None, "still offline");
        let r = next_state(&offline, |_| true).unwrap();
        assert_eq!((r.leader, r.leader_epoch, &r.isr[..]), (1, 5, &[1][..]));
    }

    #[test]
    fn isr_changes_are_checked_as_kafka_checks_them() {
        let r = record(&[1, 2, 3], &[1, 2], 1);
        let change = |leader, leader_epoch, partition_epoch, isr: &[i32]| IsrChange {
            topic: "t".into(),
            partition: 0,
            leader,
            leader_epoch,
            partition_epoch,
            new_isr: isr.to_vec(),
        };
        let code =
            |c: IsrChange, alive: &dyn Fn(i32) -> bool| alter_isr(&r, &c, alive).map_or_else(|e| e.wire_code(), |_| 0);
        let all = |_| true;
        assert_eq!(code(change(1, 4, 9, &[1, 2, 3]), &all), 0);
        let grown = alter_isr(&r, &change(1, 4, 9, &[1, 2, 3]), all).unwrap();
        assert_eq!(
            (&grown.isr[..], grown.partition_epoch, grown.leader_epoch),
            (&[1, 2, 3][..], 10, 4)
        );
        assert_eq!(code(change(1, 3, 9, &[1]), &all), 74, "FENCED_LEADER_EPOCH");
        assert_eq!(code(change(2, 4, 9, &[2]), &all), 6, "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(code(change(1, 4, 8, &[1]), &all), 95, "INVALID_UPDATE_VERSION");
        assert_eq!(code(change(1, 4, 9, &[2]), &all), 107, "INELIGIBLE_REPLICA: no leader");
        assert_eq!(code(change(1, 4, 9, &[1, 4]), &all), 107, "not a replica");
        assert_eq!(code(change(1, 4, 9, &[1, 1]), &all), 107, "twice");
        assert_eq!(code(change(1, 4, 9, &[1, 3]), &|b| b != 3), 107, "not running");
    }

    #[test]
    fn leadership_goes_back_to_preferred_replicas_past_the_imbalance() {
        let p = |replicas: &[i32], isr: &[i32], leader| record(replicas, isr, leader);
        let partitions = vec![
            (0, p(&[1, 2], &[1, 2], 2)),
            (1, p(&[1, 2], &[2], 2)),
            (2, p(&[1, 2], &[1, 2], 1)),
            (3, p(&[2, 1], &[1, 2], 2)),
        ];
        // Broker 1 prefers three, leads one: 67% imbalanced.
        let moves = preferred_elections(&partitions, 10, |_| true);
        assert_eq!(moves.len(), 1, "partition 1's preferred replica is out of sync");
        assert_eq!((moves[0].0, moves[0].1.leader, moves[0].1.leader_epoch), (0, 1, 5));
        assert!(
            preferred_elections(&partitions, 70, |_| true).is_empty(),
            "under the threshold"
        );
        assert!(
            preferred_elections(&partitions, 10, |b| b != 1).is_empty(),
            "not running"
        );
    }

    #[test]
    fn a_single_replica_goes_offline_and_comes_back() {
        let r = next_state(&record(&[2], &[2], 2), |_| false).unwrap();
        assert_eq!((r.leader, r.leader_epoch, &r.isr[..]), (-1, 5, &[2][..]));
        assert_eq!(next_state(&r, |_| false), None);
        let back = next_state(&r, |_| true).unwrap();
        assert_eq!((back.leader, back.leader_epoch), (2, 6));
    }
}
