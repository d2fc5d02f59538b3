//! A cluster broker follows the cluster's metadata (Kafka's
//! ReplicaManager.applyDelta): it holds a replica of each partition assigned
//! to it, created when first seen; leads the partitions the metadata says it
//! leads, from the leader epoch given (its batches carry that epoch);
//! deletes a topic whose deletion it saw; and sets aside (never deletes) the
//! partitions it finds itself holding without an assignment, such as those of
//! a topic deleted while it was down.

use std::collections::{HashMap, HashSet};

use super::replica_manager::ReplicaManager;
use crate::cluster::image::MetadataImage;
use crate::log::manager::is_internal_topic;

impl ReplicaManager {
    /// Make this broker's partitions what `image` says. `deleted` are topics
    /// whose key a watch saw deleted since the last image. Returns the topics
    /// deleted here.
    pub fn apply_image(&self, image: &MetadataImage, deleted: &[String], now_ms: i64) -> Vec<String> {
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
                match logs.create_replica(&t.name, t.id, *index, &t.configs, now_ms) {
                    Ok(log) => {
                        if state.leader == me {
                            if let Err(e) = log.start_leader_epoch(state.leader_epoch) {
                                tracing::error!(topic = %t.name, partition = index, error = %e, "cannot start a leader epoch");
                                continue;
                            }
                        }
                        states.insert((t.name.clone(), *index), state);
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
        for t in logs.topics() {
            if is_internal_topic(&t.name) {
                continue;
            }
            for p in &t.partitions {
                if !wanted.contains(&(t.name.clone(), p.index)) {
                    if let Err(e) = logs.set_aside(&t.name, p.index) {
                        tracing::error!(topic = %t.name, partition = p.index, error = %e, "cannot set a stray partition aside");
                    }
                }
            }
        }
        *self.states.write().unwrap_or_else(|e| e.into_inner()) = Some(states);
        removed
    }
}
