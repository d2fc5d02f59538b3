//! Fetching from the closest replica (KIP-392). A consumer names its rack in
//! Fetch (v11+, librdkafka's `client.rack`); with `replica.selector.class` set to
//! Kafka's `RackAwareReplicaSelector`, the leader answers a fetch from another
//! rack with no records and the replica to read from instead (the response's
//! `preferred_read_replica`), and the consumer fetches from that follower, which
//! serves records below its own high watermark.
//!
//! The choice is Kafka's: no rack, or no replica in the client's rack, or the
//! leader in it → the leader; else the replica of that rack whose log reaches
//! furthest, and of those the one that was caught up most recently. Only in-sync
//! followers holding the fetch offset are candidates (a lagging follower would
//! hold the consumer back for as long as it lags).

use std::sync::Arc;

use super::partition::check_leader;
use super::replica_manager::ReplicaManager;
use crate::error::{Error, Result};
use crate::log::unified_log::UnifiedLog;

/// What the leader knows of one replica when it chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView {
    pub id: i32,
    pub rack: Option<String>,
    /// Its log end offset.
    pub log_end_offset: i64,
    /// How long ago it last had everything the leader had (0 for the leader).
    pub since_caught_up_ms: i64,
}

/// Kafka's `RackAwareReplicaSelector`: the replica a consumer in `client_rack`
/// should read from, when it is not the leader (None: read from the leader).
pub fn rack_aware(client_rack: &str, leader: &ReplicaView, followers: &[ReplicaView]) -> Option<i32> {
    if client_rack.is_empty() {
        return None;
    }
    let in_rack = |r: &&ReplicaView| r.rack.as_deref() == Some(client_rack);
    if in_rack(&leader) {
        return None;
    }
    followers
        .iter()
        .filter(in_rack)
        .max_by(|a, b| {
            a.log_end_offset
                .cmp(&b.log_end_offset)
                .then(b.since_caught_up_ms.cmp(&a.since_caught_up_ms))
                // Deterministic between equals: the lower id.
                .then(b.id.cmp(&a.id))
        })
        .map(|r| r.id)
}

impl ReplicaManager {
    /// The log a consumer's fetch reads: the leader's, or (Fetch v11+, with
    /// `followers_too`) a follower's, at the leader epoch the fetch names.
    /// A follower serves below its own high watermark, which trails the
    /// leader's by at most one fetch.
    pub fn readable_log(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
        followers_too: bool,
    ) -> Result<Arc<UnifiedLog>> {
        match self.leader_log(topic, partition, current_leader_epoch) {
            Err(Error::NotLeaderOrFollower { .. }) if followers_too => {}
            led => return led,
        }
        let not_here = || Error::NotLeaderOrFollower {
            topic: topic.to_string(),
            partition,
        };
        let state = self.states_of(topic, partition).ok_or_else(not_here)?;
        if !state.replicas.contains(&self.node_id) || state.leader < 0 {
            return Err(not_here());
        }
        let log = self.logs.partition(topic, partition).map_err(|_| not_here())?;
        // The epoch check as the leader would make it.
        check_leader(&state, state.leader, topic, current_leader_epoch)?;
        Ok(log)
    }

    /// The leader's view of the replicas a consumer fetching `log` (a
    /// partition led here) from `offset` could read from: itself, and the
    /// in-sync followers holding `offset`, each with the rack `rack_of` gives
    /// (None from `rack_of`: the client cannot reach that broker).
    pub fn read_replicas(
        &self,
        log: &UnifiedLog,
        offset: i64,
        rack_of: impl Fn(i32) -> Option<Option<String>>,
    ) -> Option<(ReplicaView, Vec<ReplicaView>)> {
        if !self.leads(log) {
            return None;
        }
        let leader = ReplicaView {
            id: self.node_id,
            rack: rack_of(self.node_id).flatten(),
            log_end_offset: log.log_end_offset(),
            since_caught_up_ms: 0,
        };
        let tp = (log.topic.clone(), log.index);
        let followers = self
            .leaders
            .readable_followers(&tp, offset, crate::util::clock::now_ms())
            .into_iter()
            .filter_map(|(id, end, since)| {
                Some(ReplicaView {
                    id,
                    rack: rack_of(id)?,
                    log_end_offset: end,
                    since_caught_up_ms: since,
                })
            })
            .collect();
        Some((leader, followers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: i32, rack: &str, end: i64, since: i64) -> ReplicaView {
        ReplicaView {
            id,
            rack: (!rack.is_empty()).then(|| rack.to_string()),
            log_end_offset: end,
            since_caught_up_ms: since,
        }
    }

    #[test]
    fn kafkas_rack_aware_choice() {
        let leader = view(1, "a", 100, 0);
        let followers = [view(2, "b", 90, 50), view(3, "b", 100, 200), view(4, "c", 100, 0)];
        // No rack named, or the leader's own rack: the leader.
        assert_eq!(rack_aware("", &leader, &followers), None);
        assert_eq!(rack_aware("a", &leader, &followers), None);
        // A rack nobody is in: the leader.
        assert_eq!(rack_aware("z", &leader, &followers), None);
        // The furthest log in the rack wins over the more recently caught up.
        assert_eq!(rack_aware("b", &leader, &followers), Some(3));
        assert_eq!(rack_aware("c", &leader, &followers), Some(4));
        // Equal logs: the one caught up most recently.
        let tied = [view(2, "b", 100, 10), view(3, "b", 100, 200)];
        assert_eq!(rack_aware("b", &leader, &tied), Some(2));
    }
}
