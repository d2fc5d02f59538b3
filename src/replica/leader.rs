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

/// One partition this broker leads.
#[derive(Debug, Clone)]
struct LeaderState {
    leader_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    /// Each follower's log end, as far as known (from its last fetch in this
    /// leader epoch).
    ends: HashMap<i32, i64>,
}

/// The partitions this broker leads in a cluster.
#[derive(Default)]
pub(super) struct Leaders {
    states: Mutex<HashMap<TopicPartition, LeaderState>>,
}

impl Leaders {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, LeaderState>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lead `tp` at `leader_epoch` with `replicas` and `isr` (the metadata
    /// changed). What followers reached is kept within one epoch and
    /// forgotten at a new one.
    pub fn set(&self, tp: &TopicPartition, leader_epoch: i32, replicas: &[i32], isr: &[i32]) {
        let mut states = self.lock();
        let ends = match states.remove(tp) {
            Some(s) if s.leader_epoch == leader_epoch => s.ends,
            _ => HashMap::new(),
        };
        states.insert(
            tp.clone(),
            LeaderState {
                leader_epoch,
                replicas: replicas.to_vec(),
                isr: isr.to_vec(),
                ends,
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

    /// Follower `id` fetched `tp` from `fetch_offset`. False when `id` holds no
    /// replica of it (its fetch is refused).
    pub fn follower_fetched(&self, tp: &TopicPartition, id: i32, fetch_offset: i64) -> bool {
        let mut states = self.lock();
        let Some(s) = states.get_mut(tp) else { return false };
        if !s.replicas.contains(&id) {
            return false;
        }
        s.ends.insert(id, fetch_offset);
        true
    }

    /// The high watermark the in-sync replicas allow, given the leader's own
    /// log end: None while a follower in sync has not fetched in this epoch.
    pub fn high_watermark(&self, tp: &TopicPartition, me: i32, leader_end: i64) -> Option<i64> {
        let states = self.lock();
        let s = states.get(tp)?;
        s.isr
            .iter()
            .map(|id| {
                if *id == me {
                    Some(leader_end)
                } else {
                    s.ends.get(id).copied()
                }
            })
            .try_fold(leader_end, |low, end| end.map(|e| low.min(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_watermark_is_the_lowest_end_in_sync() {
        let leaders = Leaders::default();
        let tp = ("t".to_string(), 0);
        leaders.set(&tp, 3, &[1, 2, 3], &[1, 2, 3]);
        assert_eq!(leaders.high_watermark(&tp, 1, 10), None, "followers not heard of");
        assert!(leaders.follower_fetched(&tp, 2, 7));
        assert_eq!(leaders.high_watermark(&tp, 1, 10), None);
        assert!(leaders.follower_fetched(&tp, 3, 9));
        assert_eq!(leaders.high_watermark(&tp, 1, 10), Some(7));
        assert!(!leaders.follower_fetched(&tp, 4, 10), "not a replica");
        // 2 leaves the ISR: it no longer holds the high watermark back.
        leaders.set(&tp, 3, &[1, 2, 3], &[1, 3]);
        assert_eq!(leaders.high_watermark(&tp, 1, 10), Some(9));
        // A new epoch forgets what followers reached.
        leaders.set(&tp, 4, &[1, 2, 3], &[1, 3]);
        assert_eq!(leaders.high_watermark(&tp, 1, 10), None);
        leaders.set(&tp, 4, &[1], &[1]);
        assert_eq!(leaders.high_watermark(&tp, 1, 10), Some(10), "alone: its own end");
        leaders.retain(|_| false);
        assert_eq!(leaders.isr_len(&tp), None);
    }
}
