//! What this broker knows about the cluster and tells clients: the cluster id,
//! the brokers and how to reach them through each listener, the controller, the
//! topics, and who leads each partition at which leader epoch with which replicas
//! in sync (Kafka's MetadataCache). Metadata, DescribeCluster and FindCoordinator
//! answer from this view only.
//!
//! On one broker (no `metadata.store`) every answer is this broker: it leads
//! every partition at leader epoch 0, the only replica and the only one in sync.
//! The topics are then the log manager's (`log/manager.rs`), which keeps them in
//! the partition directories (Kafka's `partition.metadata`): the directories are
//! the only source, and a copy here would be a second one to keep in step. With
//! the etcd-backed cluster (docs/design/cluster-on-etcd.md), the same view is
//! answered from the cluster's metadata instead.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use uuid::Uuid;

use super::image::{MetadataImage, TopicImage};
use super::meta_properties::ClusterIdentity;
use super::registration::{BrokerState, RegisteredBroker};
use crate::log::manager::{is_internal_topic, LogManager, Topic};

/// One partition as clients are told about it (Metadata v7+ carries the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub index: i32,
    /// The leader's broker id, −1 while there is none.
    pub leader: i32,
    /// Bumped at every leader change; clients fence stale metadata with it.
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Replicas whose broker is gone.
    pub offline: Vec<i32>,
}

impl PartitionMetadata {
    /// A partition whose only replica is `node`, leading at epoch 0: every
    /// partition of a single broker.
    pub fn sole(index: i32, node: i32) -> PartitionMetadata {
        PartitionMetadata {
            index,
            leader: node,
            leader_epoch: 0,
            replicas: vec![node],
            isr: vec![node],
            offline: Vec::new(),
        }
    }
}

/// One topic as clients are told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub name: String,
    pub id: Uuid,
    pub internal: bool,
    /// By partition index, every partition of the topic.
    pub partitions: Vec<PartitionMetadata>,
}

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
    /// The topics, on one broker those of the local logs.
    logs: Arc<LogManager>,
    /// The cluster's metadata as etcd has it: None on a single broker (and
    /// until a cluster broker has read it). Subscribers see each new image.
    image: tokio::sync::watch::Sender<Option<Arc<MetadataImage>>>,
    /// The active controller in a cluster (None while there is none).
    controller: RwLock<Option<i32>>,
}

impl MetadataCache {
    pub fn new(identity: ClusterIdentity, logs: Arc<LogManager>) -> MetadataCache {
        MetadataCache {
            node_id: identity.node_id,
            cluster_id: identity.cluster_id,
            listeners: RwLock::new(Vec::new()),
            logs,
            image: tokio::sync::watch::Sender::new(None),
            controller: RwLock::new(None),
        }
    }

    /// Whether this broker answers from a cluster's metadata (with
    /// `metadata.store`, once it has read it); a single broker never does.
    pub fn is_cluster(&self) -> bool {
        self.image.borrow().is_some()
    }

    /// The cluster's metadata now (None on a single broker).
    pub fn image(&self) -> Option<Arc<MetadataImage>> {
        self.image.borrow().clone()
    }

    /// Each new image of the cluster's metadata, as it is set.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Option<Arc<MetadataImage>>> {
        self.image.subscribe()
    }

    /// Replace the image (the watch of etcd saw changes).
    pub fn set_image(&self, image: Arc<MetadataImage>) {
        self.image.send_replace(Some(image));
    }

    /// Replace the registered brokers (the metadata store's view changed).
    pub fn set_brokers(&self, brokers: BTreeMap<i32, RegisteredBroker>) {
        let mut image = self.image().map(|i| (*i).clone()).unwrap_or_default();
        image.brokers = brokers;
        self.set_image(Arc::new(image));
    }

    /// Wait until the image is as of `revision` or later (a controller reading
    /// its own write); false after `timeout`.
    pub async fn wait_for_revision(&self, revision: i64, timeout: std::time::Duration) -> bool {
        let mut rx = self.subscribe();
        let reached = rx.wait_for(|i| i.as_ref().is_some_and(|i| i.revision >= revision));
        let reached = matches!(tokio::time::timeout(timeout, reached).await, Ok(Ok(_)));
        reached
    }

    /// The registered brokers, by id (empty on a single broker).
    pub fn registered_brokers(&self) -> BTreeMap<i32, RegisteredBroker> {
        self.image().map(|i| i.brokers.clone()).unwrap_or_default()
    }

    /// A topic of the cluster's image as clients are told about it.
    fn describe_image(image: &MetadataImage, t: TopicImage) -> TopicMetadata {
        TopicMetadata {
            internal: is_internal_topic(&t.name),
            partitions: t
                .partitions
                .iter()
                .map(|(i, p)| image.describe(*i, &p.record))
                .collect(),
            name: t.name,
            id: t.id,
        }
    }

    fn describe(&self, topic: &Topic) -> TopicMetadata {
        TopicMetadata {
            name: topic.name.clone(),
            id: topic.id,
            internal: is_internal_topic(&topic.name),
            partitions: topic
                .partitions
                .iter()
                .map(|p| PartitionMetadata::sole(p.index, self.node_id))
                .collect(),
        }
    }

    pub fn topic(&self, name: &str) -> Option<TopicMetadata> {
        match self.image() {
            None => self.logs.topic(name).map(|t| self.describe(&t)),
            Some(image) => image.topic(name).map(|t| Self::describe_image(&image, t)),
        }
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<TopicMetadata> {
        match self.image() {
            None => self.logs.topic_by_id(id).map(|t| self.describe(&t)),
            Some(image) => image.topic_by_id(id).map(|t| Self::describe_image(&image, t)),
        }
    }

    /// Every topic, internal ones too, sorted by name.
    pub fn topics(&self) -> Vec<TopicMetadata> {
        let Some(image) = self.image() else {
            return self.logs.topics().iter().map(|t| self.describe(t)).collect();
        };
        let mut all: Vec<TopicMetadata> = image
            .topics()
            .into_iter()
            .map(|t| Self::describe_image(&image, t))
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// One partition of a topic, if both exist.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<PartitionMetadata> {
        if let Some(image) = self.image() {
            if let Some(p) = image.topic(topic).and_then(|t| t.partitions.get(&partition).cloned()) {
                return Some(image.describe(partition, &p.record));
            }
        }
        let local = self.logs.topic(topic).filter(|_| !self.is_cluster())?;
        Some(PartitionMetadata::sole(local.partition(partition)?.index, self.node_id))
    }

    /// This broker's id (`node.id`).
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The active controller: on one broker, itself; in a cluster, the one
    /// elected through etcd (−1 while there is none).
    pub fn controller_id(&self) -> i32 {
        if !self.is_cluster() {
            return self.node_id;
        }
        self.controller.read().unwrap_or_else(|e| e.into_inner()).unwrap_or(-1)
    }

    /// The active controller changed (a cluster's election).
    pub fn set_controller(&self, controller: Option<i32>) {
        *self.controller.write().unwrap_or_else(|e| e.into_inner()) = controller;
    }

    /// How many brokers are alive: on one broker, one.
    pub fn broker_count(&self) -> usize {
        self.image().map_or(1, |i| i.brokers.len())
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
    /// terms of the listener it came through). In a cluster, the registered
    /// brokers that are serving (a broker still starting is left out).
    pub fn alive_brokers(&self, listener: &str) -> Vec<Node> {
        match self.image() {
            None => self.node(self.node_id, listener).into_iter().collect(),
            Some(image) => image
                .brokers
                .values()
                .filter(|b| b.registration.state != BrokerState::Starting)
                .filter_map(|b| registered_node(b, listener))
                .collect(),
        }
    }

    /// Broker `id` on `listener`, if it is alive and has that listener.
    pub fn node(&self, id: i32, listener: &str) -> Option<Node> {
        if let Some(b) = self.image().and_then(|i| i.brokers.get(&id).cloned()) {
            return registered_node(&b, listener);
        }
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

/// A registered broker's address on `listener`, if it has that listener.
fn registered_node(b: &RegisteredBroker, listener: &str) -> Option<Node> {
    let r = &b.registration;
    r.listeners.iter().find(|l| l.name == listener).map(|l| Node {
        id: r.id,
        host: l.host.clone(),
        port: l.port,
        rack: r.rack.clone(),
    })
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

    fn cache(dir: &std::path::Path, node_id: i32) -> MetadataCache {
        let logs = LogManager::open(dir, Default::default(), 0).unwrap();
        let identity = ClusterIdentity {
            node_id,
            cluster_id: "c".into(),
        };
        MetadataCache::new(identity, Arc::new(logs))
    }

    #[test]
    fn brokers_are_told_in_the_terms_of_the_clients_listener() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache(dir.path(), 3);
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
    }

    #[test]
    fn a_cluster_broker_lists_the_registered_brokers_that_serve() {
        use crate::cluster::registration::{BrokerRegistration, RegisteredListener};
        let dir = tempfile::tempdir().unwrap();
        let cache = cache(dir.path(), 1);
        cache.register_listeners(vec![listener("PLAINTEXT", "localhost", 9092)]);
        assert_eq!(
            cache.alive_brokers("PLAINTEXT").len(),
            1,
            "until the cluster is read: itself"
        );
        let broker = |id: i32, state| RegisteredBroker {
            registration: BrokerRegistration {
                v: 1,
                id,
                listeners: vec![RegisteredListener {
                    name: "PLAINTEXT".into(),
                    host: format!("10.0.0.{id}"),
                    port: 9092,
                    security_protocol: "PLAINTEXT".into(),
                }],
                rack: Some(format!("r{id}")),
                state,
                incarnation: "i".into(),
            },
            epoch: 100 + i64::from(id),
        };
        let brokers = [
            (1, broker(1, BrokerState::Running)),
            (2, broker(2, BrokerState::Starting)),
            (3, broker(3, BrokerState::ShuttingDown)),
        ];
        cache.set_brokers(brokers.into_iter().collect());
        assert!(cache.is_cluster());
        let alive: Vec<(i32, String)> = cache
            .alive_brokers("PLAINTEXT")
            .into_iter()
            .map(|n| (n.id, n.host))
            .collect();
        assert_eq!(
            alive,
            vec![(1, "10.0.0.1".into()), (3, "10.0.0.3".into())],
            "a starting broker is not listed"
        );
        assert_eq!(cache.node(3, "PLAINTEXT").and_then(|n| n.rack), Some("r3".into()));
        assert_eq!(
            cache.node(1, "PLAINTEXT").map(|n| n.host),
            Some("10.0.0.1".into()),
            "as registered"
        );
        assert_eq!(cache.node(3, "OTHER"), None);
        assert_eq!(cache.node(4, "PLAINTEXT"), None);
        assert_eq!(cache.broker_count(), 3);
    }

    #[test]
    fn a_single_broker_leads_every_partition_at_epoch_zero() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache(dir.path(), 7);
        assert!(!cache.is_cluster());
        assert_eq!(cache.topic("t"), None);
        cache.logs.create_topic("t", 3, &Default::default(), 0).unwrap();
        let t = cache.topic("t").unwrap();
        assert!(!t.internal);
        assert_eq!(cache.topic_by_id(&t.id), Some(t.clone()));
        assert_eq!(t.partitions.len(), 3);
        for (i, p) in t.partitions.iter().enumerate() {
            assert_eq!(p, &PartitionMetadata::sole(i as i32, 7));
            assert_eq!((p.leader, p.leader_epoch, &p.isr[..]), (7, 0, &[7][..]));
        }
        assert_eq!(cache.partition("t", 2).map(|p| p.leader), Some(7));
        assert_eq!(cache.partition("t", 3), None);
        assert_eq!(cache.partition("t", -1), None);
        assert_eq!(cache.topics().len(), 1);
    }
}
