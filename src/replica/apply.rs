//! A cluster broker follows the cluster's metadata (Kafka's
//! ReplicaManager.applyDelta): it holds a replica of each partition assigned
//! to it, created when first seen; leads the partitions the metadata says it
//! leads, from the leader epoch given (its batches carry that epoch);
//! deletes a topic whose deletion it saw, and a replica it saw moved to
//! other brokers (a reassignment); and sets aside (never deletes) a
//! partition it holds that the metadata otherwise gives to other brokers, one of an
//! earlier topic of the same name, and, at start, one of a topic the metadata
//! no longer has (deleted while this broker was down). A partition merely
//! missing from the metadata while the broker runs (a key deleted by hand) is
//! left where it is, unserved, until the metadata says more.

use std::collections::{HashMap, HashSet};

use super::fetcher::Followed;
use super::replica_manager::ReplicaManager;
use crate::cluster::image::MetadataImage;

impl ReplicaManager {
    /// Make this broker's partitions what `image` says. `deleted` are topics
    /// whose key a watch saw deleted since the last image; `starting`: the
    /// first image since this broker started. Returns the topics deleted here.
    pub fn apply_image(&self, image: &MetadataImage, deleted: &[String], starting: bool, now_ms: i64) -> Vec<String> {
        let me = self.node_id;
        let logs = &self.logs;
        let mut removed = Vec::new();
        for name in deleted {
            let Some(local) = logs.topic(name) else { continue };
            if image.topic(name).is_some_and(|t| t.id == local.id) {
                continue;
            }
            match logs.delete_topic(name) {
                Ok(_) => removed.push(name.clone()),
                Err(e) => tracing::error!(topic = %name, error = %e, "cannot delete a deleted topic's replicas"),
            }
        }
        let mut states = HashMap::new();
        let mut wanted = HashSet::new();
        let mut followed = Vec::new();
        let mut checkpointed: Option<HashMap<(String, i32), i64>> = None;
        for t in image.topics() {
            if let Some(local) = logs.topic(&t.name).filter(|l| l.id != t.id) {
                // The name's earlier topic, whose deletion this broker missed.
                for p in &local.partitions {
                    if let Err(e) = logs.set_aside(&local.name, p.index) {
                        tracing::error!(topic = %t.name, error = %e, "cannot set an old topic's partition aside");
                    }
                }
            }
            for (index, p) in &t.partitions {
                let state = image.describe(*index, &p.record);
                if !p.record.replicas.contains(&me) {
                    states.insert((t.name.clone(), *index), state);
                    continue;
                }
                wanted.insert((t.name.clone(), *index));
                let tp = (t.name.clone(), *index);
                match logs.create_replica(&t.name, t.id, *index, &t.configs, now_ms) {
                    Ok(log) => {
                        // A cluster's high watermark is the replicas', from
                        // the last checkpointed one.
                        if log.replicated_high_watermark().is_none() {
                            let hws = checkpointed.get_or_insert_with(|| logs.checkpointed_high_watermarks());
                            log.replicate_high_watermark(hws.get(&tp).copied().unwrap_or(0));
                        }
                        if state.leader == me {
                            if let Err(e) = log.start_leader_epoch(state.leader_epoch) {
                                tracing::error!(topic = %t.name, partition = index, error = %e, "cannot start a leader epoch");
                                continue;
                            }
                            self.leaders.set(&tp, &state, p.record.partition_epoch, now_ms);
                        } else if let Some(addr) =
                            image.inter_broker_address(state.leader, self.inter_broker.listener.as_deref())
                        {
                            followed.push(Followed {
                                topic: t.name.clone(),
                                partition: *index,
                                leader: state.leader,
                                leader_epoch: state.leader_epoch,
                                leader_addr: addr,
                            });
                        }
                        states.insert(tp, state);
                    }
                    Err(e) => {
                        tracing::error!(topic = %t.name, partition = index, error = %e, "cannot create a replica")
                    }
                }
            }
            // The topic's configs as the cluster has them.
            if let (Some(local), Ok(configs)) = (logs.topic(&t.name), logs.validate_overrides(&t.configs)) {
                if local.id == t.id && local.overrides() != configs {
                    if let Err(e) = logs.set_overrides(&t.name, &configs) {
                        tracing::error!(topic = %t.name, error = %e, "cannot apply the topic's configs");
                    }
                }
            }
        }
        let before = self.states.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut released = Vec::new();
        for t in logs.topics() {
            let assigned = image.topic(&t.name).filter(|i| i.id == t.id);
            for p in &t.partitions {
                let tp = (t.name.clone(), p.index);
                // Given to other brokers, or (at start) gone from the cluster.
                let elsewhere = assigned
                    .as_ref()
                    .and_then(|i| i.partitions.get(&p.index))
                    .is_some_and(|e| !e.record.replicas.contains(&me));
                let gone = starting && assigned.is_none();
                if !(elsewhere || gone) || wanted.contains(&tp) {
                    continue;
                }
                // Moved away while this broker watched (a reassignment that
                // finished: the target has every record): deleted, as Kafka
                // does. Anything else is a guess, so set aside.
                let watched_it_move = !starting
                    && elsewhere
                    && before
                        .as_ref()
                        .and_then(|b| b.get(&tp))
                        .is_some_and(|s| s.replicas.contains(&me));
                let removed = match watched_it_move {
                    true => logs.delete_replica(&t.name, p.index),
                    false => logs.set_aside(&t.name, p.index),
                };
                match removed {
                    Ok(()) => released.push(tp),
                    Err(e) => {
                        tracing::error!(topic = %t.name, partition = p.index, error = %e, "cannot stop holding a partition")
                    }
                }
            }
        }
        self.leaders
            .retain(|tp| states.get(tp).is_some_and(|s| s.leader == me) && wanted.contains(tp));
        *self.states.write().unwrap_or_else(|e| e.into_inner()) = Some(states);
        self.fetchers.set(followed);
        // The in-sync replicas may have changed: high watermarks move, and
        // produces waiting on a partition this broker no longer leads answer.
        for t in logs.topics() {
            for log in &t.partitions {
                self.advance_high_watermark(log);
                self.delayed_fetches.complete(&(t.name.clone(), log.index));
            }
        }
        // Produces waiting on a partition no longer held here answer now
        // (NOT_LEADER_OR_FOLLOWER), not at their timeout.
        for tp in &released {
            self.delayed_fetches.complete(tp);
        }
        removed
    }
}
