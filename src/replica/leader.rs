//! What a partition's leader knows of its followers (Kafka's leader state in
//! `Partition`): the in-sync replicas the cluster's metadata names, and how
//! far each follower's log reaches, learnt from the offsets it fetches from
//! (a follower fetching from offset `o` holds everything below `o`). The high
//! watermark is the lowest log end of the in-sync replicas: a record below it
//! is in every in-sync replica's log, so no leader the controller can elect
//! from the ISR lacks it.

use std::collections::HashMap;
use std::sync::Mutex;

use super::delayed_fetch::TopicPartition;
use crate::cluster::controller::leadership::IsrChange;
use crate::cluster::metadata_cache::PartitionMetadata;

/// What the leader knows of one follower, from its fetches in this epoch.
#[derive(Debug, Clone, Copy)]
struct Follower {
    /// Its log end (the offset it last fetched from).
    end: i64,
    /// Its log start, as its last fetch said (−1: not said).
    start: i64,
    last_fetch_ms: i64,
    /// The leader's log end at that fetch.
    last_fetch_leader_end: i64,
    /// When it last had everything the leader had (Kafka's lastCaughtUpTime).
    caught_up_ms: i64,
}

/// One partition this broker leads.
#[derive(Debug, Clone)]
struct LeaderState {
    leader_epoch: i32,
    partition_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    followers: HashMap<i32, Follower>,
    /// When this broker began leading at this epoch.
    since_ms: i64,
    /// An ISR change asked of the controller and not yet in the metadata:
    /// the ISR asked for, and when.
    pending: Option<(Vec<i32>, i64)>,
}

/// How long an ISR change may go unanswered before it is asked again.
const PENDING_FOR_MS: i64 = 5_000;

/// The partitions this broker leads in a cluster.
#[derive(Default)]
pub(super) struct Leaders {
    states: Mutex<HashMap<TopicPartition, LeaderState>>,
}

impl Leaders {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, LeaderState>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lead `p`'s partition `tp` (the metadata changed). What followers
    /// reached is kept within one leader epoch and forgotten at a new one; a
    /// pending ISR change is settled once the partition epoch moves.
    pub fn set(&self, tp: &TopicPartition, p: &PartitionMetadata, partition_epoch: i32, now_ms: i64) {
        let mut states = self.lock();
        let (followers, since_ms, pending) = match states.remove(tp) {
            Some(s) if s.leader_epoch == p.leader_epoch => {
                let pending = s.pending.filter(|_| s.partition_epoch == partition_epoch);
                (s.followers, s.since_ms, pending)
            }
            _ => (HashMap::new(), now_ms, None),
        };
        states.insert(
            tp.clone(),
            LeaderState {
                leader_epoch: p.leader_epoch,
                partition_epoch,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                followers,
                since_ms,
                pending,
            },
        );
    }

    /// Keep only the partitions `keep` says this broker still leads.
    pub fn retain(&self, keep: impl Fn(&TopicPartition) -> bool) {
        self.lock().retain(|tp, _| keep(tp));
    }

    /// How many replicas are in sync (None: not led here).
    pub fn isr_len(&self, tp: &TopicPartition) -> Option<usize> {
        self.lock().get(tp).map(|s| s.isr.len())
    }

    /// Follower `id` fetched `tp` from `fetch_offset` (its log starting at
    /// `log_start`) while the leader's log ended at `leader_end`. False when
    /// `id` holds no replica of it (its fetch is refused).
    pub fn follower_fetched(
        &self,
        tp: &TopicPartition,
        id: i32,
        fetch_offset: i64,
        log_start: i64,
        leader_end: i64,
        now_ms: i64,
    ) -> bool {
        let mut states = self.lock();
        let Some(s) = states.get_mut(tp) else { return false };
        if !s.replicas.contains(&id) {
            return false;
        }
        let f = s.followers.entry(id).or_insert(Follower {
            end: fetch_offset,
            start: log_start,
            last_fetch_ms: now_ms,
            last_fetch_leader_end: leader_end,
            caught_up_ms: 0,
        });
        // Caught up now, or as of its previous fetch if it has reached what
        // the leader had then (under steady writes a follower is never level
        // with the log end at the moment it fetches).
        if fetch_offset >= leader_end {
            f.caught_up_ms = now_ms;
        } else if fetch_offset >= f.last_fetch_leader_end {
            f.caught_up_ms = f.caught_up_ms.max(f.last_fetch_ms);
        }
        f.end = fetch_offset;
        f.start = log_start;
        f.last_fetch_ms = now_ms;
        f.last_fetch_leader_end = leader_end;
        true
    }

    /// The in-sync followers a consumer fetching `tp` from `offset` could be
    /// sent to (their logs hold it): (id, log end, ms since caught up).
    pub fn readable_followers(&self, tp: &TopicPartition, offset: i64, now_ms: i64) -> Vec<(i32, i64, i64)> {
        let states = self.lock();
        let Some(s) = states.get(tp) else { return Vec::new() };
        s.followers
            .iter()
            .filter(|(id, f)| s.isr.contains(id) && f.end >= offset && f.start <= offset)
            .map(|(id, f)| (*id, f.end, now_ms.saturating_sub(f.caught_up_ms)))
            .collect()
    }

    /// The high watermark the in-sync replicas allow, given the leader's own
    /// log end: None while a follower in sync has not fetched in this epoch.
    /// A follower being added to the ISR counts already (Kafka's maximal
    /// ISR): once the controller commits it, it may be elected, so nothing it
    /// lacks may be acknowledged meanwhile.
    pub fn high_watermark(&self, tp: &TopicPartition, me: i32, leader_end: i64) -> Option<i64> {
        let states = self.lock();
        let s = states.get(tp)?;
        let pending = s.pending.iter().flat_map(|(isr, _)| isr.iter());
        let mut members: Vec<i32> = s.isr.iter().chain(pending).copied().collect();
        members.sort_unstable();
        members.dedup();
        members
            .iter()
            .map(|id| {
                if *id == me {
                    Some(leader_end)
                } else {
                    s.followers.get(id).map(|f| f.end)
                }
            })
            .try_fold(leader_end, |low, end| end.map(|e| low.min(e)))
    }

    /// The ISR changes to ask of the controller now: followers that have not
    /// caught up for `lag_ms` leave, replicas that reached the high watermark
    /// (`hw` of the partition) join. Each is then pending until the metadata
    /// shows it (or it is asked again after a while).
    pub fn isr_changes(
        &self,
        me: i32,
        now_ms: i64,
        lag_ms: i64,
        hw: impl Fn(&TopicPartition) -> i64,
    ) -> Vec<IsrChange> {
        let mut changes = Vec::new();
        for (tp, s) in self.lock().iter_mut() {
            if s.pending
                .as_ref()
                .is_some_and(|(_, since)| now_ms - since < PENDING_FOR_MS)
            {
                continue;
            }
            let caught_up = |id: &i32| {
                s.followers
                    .get(id)
                    .map_or(s.since_ms, |f| f.caught_up_ms.max(s.since_ms))
            };
            let mut isr: Vec<i32> = s
                .isr
                .iter()
                .copied()
                .filter(|id| *id == me || now_ms - caught_up(id) <= lag_ms)
                .collect();
            let hw = hw(tp);
            for id in &s.replicas {
                let reached = s.followers.get(id).is_some_and(|f| f.end >= hw);
                if !isr.contains(id) && reached && now_ms - caught_up(id) <= lag_ms {
                    isr.push(*id);
                }
            }
            if isr != s.isr {
                s.pending = Some((isr.clone(), now_ms));
                changes.push(IsrChange {
                    topic: tp.0.clone(),
                    partition: tp.1,
                    leader: me,
                    leader_epoch: s.leader_epoch,
                    partition_epoch: s.partition_epoch,
                    new_isr: isr,
                });
            }
        }
        changes
    }

    /// Count every follower as caught up as of `now_ms` (the leader itself
    /// was not running and could not see their fetches).
    pub fn restart_lag_clocks(&self, now_ms: i64) {
        for s in self.lock().values_mut() {
            s.since_ms = s.since_ms.max(now_ms);
        }
    }

    /// An ISR change was refused or could not be sent: ask again at the next
    /// round.
    pub fn isr_change_failed(&self, tp: &TopicPartition) {
        if let Some(s) = self.lock().get_mut(tp) {
            s.pending = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(epoch: i32, replicas: &[i32], isr: &[i32]) -> PartitionMetadata {
        PartitionMetadata {
            index: 0,
            leader: 1,
            leader_epoch: epoch,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            offline: Vec::new(),
        }
    }

    #[test]
    fn consumers_are_sent_only_to_in_sync_followers_holding_the_offset() {
        let leaders = Leaders::default();
        let tp = ("t".to_string(), 0);
        leaders.set(&tp, &state(1, &[1, 2, 3, 4], &[1, 2, 3]), 0, 0);
        assert!(leaders.follower_fetched(&tp, 2, 50, 0, 50, 1_000));
        assert!(leaders.follower_fetched(&tp, 3, 40, 20, 50, 1_000));
        assert!(leaders.follower_fetched(&tp, 4, 50, 0, 50, 1_000));
        let at = |offset| {
            let mut ids: Vec<(i32, i64, i64)> = leaders.readable_followers(&tp, offset, 1_500);
            ids.sort();
            ids
        };
        // 4 is not in sync; 3 starts at 20 and ends at 40.
        // 3 has never caught up: as long ago as the clock began.
        assert_eq!(at(30), vec![(2, 50, 500), (3, 40, 1_500)]);
        assert_eq!(at(10), vec![(2, 50, 500)]);
        assert_eq!(at(45), vec![(2, 50, 500)]);
        assert!(leaders.readable_followers(&("u".into(), 0), 0, 0).is_empty());
    }

    #[test]
    fn the_high_watermark_is_the_lowest_end_in_sync() {
        let leaders = Leaders::default();
        let tp = ("t".to_string(), 0);
        leaders.set(&tp, &state(3, &[1, 2, 3], &[1, 2, 3]), 0, 0);
        assert_eq!(leaders.high_watermark(&tp, 1, 10), None, "followers not heard of");
        assert!(leaders.follower_fetched(&tp, 2, 7, 0, 10, 0));
        assert_eq!(leaders.high_watermark(&tp, 1, 10), None);
        assert!(leaders.follower_fetched(&tp, 3, 9, 0, 10, 0));
        assert_eq!(leaders.high_watermark(&tp, 1, 10), Some(7));
        assert!(!leaders.follower_fetched(&tp, 4, 10, 0, 10, 0), "not a replica");
        // 2 leaves the ISR: it no longer holds the high watermark back.
        leaders.set(&tp, &state(3, &[1, 2, 3], &[1, 3]), 1, 0);
        assert_eq!(leaders.high_watermark(&tp, 1, 10), Some(9));
        // A new epoch forgets what followers reached.
        leaders.set(&tp, &state(4, &[1, 2, 3], &[1, 3]), 2, 0);
        assert_eq!(leaders.high_watermark(&tp, 1, 10), None);
        leaders.set(&tp, &state(4, &[1], &[1]), 3, 0);
        assert_eq!(leaders.high_watermark(&tp, 1, 10), Some(10), "alone: its own end");
        leaders.retain(|_| false);
        assert_eq!(leaders.isr_len(&tp), None);
    }

    #[test]
    fn laggards_leave_the_isr_and_those_caught_up_join_it() {
        let leaders = Leaders::default();
        let tp = ("t".to_string(), 0);
        let lag = 1_000;
        leaders.set(&tp, &state(1, &[1, 2, 3], &[1, 2]), 5, 0);
        // 2 keeps up under steady writes (it reaches what the leader had at its
        // previous fetch); 3, out of the ISR, reaches the high watermark.
        for t in 0..10 {
            let now = t * 300;
            assert!(leaders.follower_fetched(&tp, 2, t * 10, 0, t * 10 + 5, now));
        }
        assert!(leaders.isr_changes(1, 2_700, lag, |_| 90).is_empty(), "3 not heard of");
        assert!(leaders.follower_fetched(&tp, 3, 95, 0, 95, 2_700));
        let changes = leaders.isr_changes(1, 2_800, lag, |_| 90);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].new_isr.clone(), changes[0].partition_epoch),
            (vec![1, 2, 3], 5)
        );
        assert!(leaders.isr_changes(1, 2_900, lag, |_| 90).is_empty(), "pending");
        // While the expansion is pending, 3 counts for the high watermark.
        assert!(leaders.follower_fetched(&tp, 2, 200, 0, 200, 2_900));
        assert_eq!(leaders.high_watermark(&tp, 1, 200), Some(95));
        // Committed; then 3 stops fetching and leaves after the lag.
        leaders.set(&tp, &state(1, &[1, 2, 3], &[1, 2, 3]), 6, 3_000);
        assert!(leaders.follower_fetched(&tp, 2, 200, 0, 200, 4_500));
        let changes = leaders.isr_changes(1, 4_500, lag, |_| 200);
        assert_eq!(changes[0].new_isr, vec![1, 2]);
        // Refused: asked again at the next round.
        leaders.isr_change_failed(&tp);
        assert_eq!(leaders.isr_changes(1, 4_600, lag, |_| 200).len(), 1);
        // The leader itself was paused: nobody lags until a lag's time passed.
        leaders.isr_change_failed(&tp);
        leaders.restart_lag_clocks(9_000);
        assert!(leaders.isr_changes(1, 9_500, lag, |_| 200).is_empty());
        assert_eq!(leaders.isr_changes(1, 10_100, lag, |_| 200).len(), 1);
    }
}
