//! What this broker knows about the cluster and tells clients: the cluster id,
//! the brokers and how to reach them through each listener, the controller, and
//! who leads each partition (Kafka's MetadataCache). On one broker every answer is
//! this broker; with the etcd-backed cluster, this is what the controller's
//! metadata will update.
//!
//! Topics and partitions themselves are registered by the log manager
//! (`log/manager.rs`), which keeps them in the partition directories (Kafka's
//! `partition.metadata`): on one broker the directories are the only source, and a
//! copy here would be a second one to keep in step.

use std::net::SocketAddr;
use std::sync::RwLock;

use super::meta_properties::ClusterIdentity;

/// A bound listener and the address clients connecting through it are told to use.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    pub name: String,
    pub bound: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: i32,
}

/// A broker as clients are told about it (Metadata, DescribeCluster,
/// FindCoordinator): its id and its address on one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

pub struct MetadataCache {
    node_id: i32,
    cluster_id: String,
    /// This broker's listeners, once bound.
    listeners: RwLock<Vec<ListenerInfo>>,
}

impl MetadataCache {
    pub fn new(identity: ClusterIdentity) -> MetadataCache {
        MetadataCache {
            node_id: identity.node_id,
            cluster_id: identity.cluster_id,
            listeners: RwLock::new(Vec::new()),
        }
    }

    /// This broker's id (`node.id`).
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The active controller: on one broker, itself.
    pub fn controller_id(&self) -> i32 {
        self.node_id
    }

    /// The leader of a partition: on one broker, itself.
    pub fn leader(&self, _topic: &str, _partition: i32) -> i32 {
        self.node_id
    }

    /// How many brokers are alive: on one broker, one.
    pub fn broker_count(&self) -> usize {
        1
    }

    /// This broker's bound listeners.
    pub fn listeners(&self) -> Vec<ListenerInfo> {
        self.listeners.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Record this broker's listeners once they are bound.
    pub fn register_listeners(&self, listeners: Vec<ListenerInfo>) {
        *self.listeners.write().unwrap_or_else(|e| e.into_inner()) = listeners;
    }

    /// The brokers a client connected through `listener` can reach, at the
    /// addresses advertised for that listener (Kafka answers each client in the
    /// terms of the listener it came through).
    pub fn alive_brokers(&self, listener: &str) -> Vec<Node> {
        self.node(self.node_id, listener).into_iter().collect()
    }

    /// Broker `id` on `listener`, if it is alive and has that listener.
    pub fn node(&self, id: i32, listener: &str) -> Option<Node> {
        if id != self.node_id {
            return None;
        }
        let listeners = self.listeners.read().unwrap_or_else(|e| e.into_inner());
        listeners.iter().find(|l| l.name == listener).map(|l| Node {
            id,
            host: l.advertised_host.clone(),
            port: l.advertised_port,
            rack: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(name: &str, host: &str, port: i32) -> ListenerInfo {
        ListenerInfo {
            name: name.into(),
            bound: "127.0.0.1:0".parse().unwrap(),
            advertised_host: host.into(),
            advertised_port: port,
        }
    }

    #[test]
    fn brokers_are_told_in_the_terms_of_the_clients_listener() {
        let cache = MetadataCache::new(ClusterIdentity {
            node_id: 3,
            cluster_id: "c".into(),
        });
        assert!(cache.alive_brokers("PLAINTEXT").is_empty(), "nothing bound yet");
        cache.register_listeners(vec![
            listener("PLAINTEXT", "localhost", 9092),
            listener("DOCKER", "strom", 29092),
        ]);
        let inside = cache.alive_brokers("DOCKER");
        assert_eq!(inside.len(), 1);
        assert_eq!(
            (inside[0].id, inside[0].host.as_str(), inside[0].port),
            (3, "strom", 29092)
        );
        assert_eq!(cache.node(3, "PLAINTEXT").map(|n| n.port), Some(9092));
        assert_eq!(cache.node(4, "PLAINTEXT"), None);
        assert_eq!(cache.controller_id(), 3);
        assert_eq!(cache.leader("t", 0), 3);
    }
}
