//! A client of a whole cluster for strom's tools: requests about a partition
//! go to its leader, those about a group or a transactional id to its
//! coordinator, and listings to every broker — as Kafka's own tools do. On a
//! single broker every one of them is that broker.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{FindCoordinatorRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{Bootstrap, Client, ClientError};

/// FindCoordinator's key types.
pub const GROUP: i8 = 0;
pub const TRANSACTION: i8 = 1;

/// How long a tool waits for a coordinator that is loading or being elected.
const PATIENCE: Duration = Duration::from_secs(10);

pub struct Brokers {
    bootstrap: Bootstrap,
    /// The connection to the first reachable bootstrap server.
    first: Client,
    /// Node id → `host:port` on the listener the bootstrap server was reached by.
    nodes: BTreeMap<i32, String>,
    connections: HashMap<i32, Client>,
    /// Every request goes to `first` (a console's in-process connection).
    single: bool,
}

impl Brokers {
    /// Connect to the bootstrap servers and learn the brokers.
    pub async fn connect(bootstrap: &Bootstrap) -> Result<Brokers, ClientError> {
        let mut first = Client::connect(bootstrap).await?;
        let m = first.call(12, &brokers_only()).await?;
        let nodes = m
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        Ok(Brokers {
            bootstrap: bootstrap.clone(),
            first,
            nodes,
            connections: HashMap::new(),
            single: false,
        })
    }

    /// Every request over one connection, whatever it is about (a broker's
    /// console asking itself).
    pub fn single(client: Client) -> Brokers {
        Brokers {
            bootstrap: Bootstrap::default(),
            first: client,
            nodes: BTreeMap::new(),
            connections: HashMap::new(),
            single: true,
        }
    }

    /// The bootstrap connection (for requests any broker answers).
    pub fn any(&mut self) -> &mut Client {
        &mut self.first
    }

    /// Every broker's id (in single mode, the one connection's: −1).
    pub fn node_ids(&self) -> Vec<i32> {
        match self.single {
            true => vec![-1],
            false => self.nodes.keys().copied().collect(),
        }
    }

    /// A connection to broker `id` (made once, with the bootstrap's security).
    pub async fn node(&mut self, id: i32) -> Result<&mut Client, ClientError> {
        if self.single {
            return Ok(&mut self.first);
        }
        if !self.connections.contains_key(&id) {
            let addr = self
                .nodes
                .get(&id)
                .ok_or_else(|| ClientError::Protocol(format!("no broker {id} in the cluster's metadata")))?;
            let bootstrap = Bootstrap {
                servers: addr.clone(),
                security: self.bootstrap.security.clone(),
            };
            let client = Client::connect(&bootstrap).await?;
            self.connections.insert(id, client);
        }
        self.connections
            .get_mut(&id)
            .ok_or_else(|| ClientError::Protocol("connection lost".into()))
    }

    /// Partition → its leader (−1: none) for `topic`.
    pub async fn leaders(&mut self, topic: &str) -> Result<BTreeMap<i32, i32>, ClientError> {
        let mut req = MetadataRequest::default();
        let mut t = MetadataRequestTopic::default();
        t.name = Some(TopicName(StrBytes::from_string(topic.to_string())));
        req.topics = Some(vec![t]);
        req.allow_auto_topic_creation = false;
        let m = self.first.call(12, &req).await?;
        let t = m
            .topics
            .first()
            .ok_or_else(|| ClientError::Protocol("no topic in the answer".into()))?;
        ClientError::check(t.error_code, None)?;
        Ok(t.partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect())
    }

    /// The partitions each leader leads, of those asked; partitions without
    /// a leader now (offline) are left out. UNKNOWN_TOPIC_OR_PARTITION for a
    /// partition the topic does not have.
    pub async fn by_leader(&mut self, topic: &str, partitions: &[i32]) -> Result<BTreeMap<i32, Vec<i32>>, ClientError> {
        let leaders = self.leaders(topic).await?;
        let mut out: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in partitions {
            match leaders.get(p) {
                Some(l) if *l >= 0 => out.entry(*l).or_default().push(*p),
                Some(_) => {}
                None => return ClientError::check(3, Some(&format!("{topic}-{p}"))).map(|_| out),
            }
        }
        Ok(out)
    }

    /// The leader of one partition: LEADER_NOT_AVAILABLE while it has none.
    pub async fn leader_of(&mut self, topic: &str, partition: i32) -> Result<i32, ClientError> {
        match self.by_leader(topic, &[partition]).await?.into_keys().next() {
            Some(leader) => Ok(leader),
            None => ClientError::check(5, Some(&format!("{topic}-{partition} has no leader"))).map(|_| -1),
        }
    }

    /// A connection to the coordinator of `key` (`GROUP` or `TRANSACTION`),
    /// waiting while it is loading or being elected.
    pub async fn coordinator(&mut self, key_type: i8, key: &str) -> Result<&mut Client, ClientError> {
        if self.single {
            return Ok(&mut self.first);
        }
        let started = std::time::Instant::now();
        let node = loop {
            let mut req = FindCoordinatorRequest::default();
            req.key = StrBytes::from_string(key.to_string());
            req.key_type = key_type;
            let r = self.first.call(3, &req).await?;
            // COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS: retried.
            if (r.error_code == 15 || r.error_code == 14) && started.elapsed() < PATIENCE {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            ClientError::check(r.error_code, r.error_message.as_deref())?;
            let addr = format!("{}:{}", r.host.as_str(), r.port);
            self.nodes.entry(r.node_id.0).or_insert(addr);
            // A coordinator that just died is named until the cluster notices:
            // ask again, as Kafka's admin client does.
            match self.node(r.node_id.0).await {
                Ok(_) => break r.node_id.0,
                Err(e) if started.elapsed() >= PATIENCE => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        self.node(node).await
    }
}

/// A connection to the active controller, for the requests Kafka's admin
/// tools send there (CreateTopics, DeleteTopics, CreatePartitions, topic
/// AlterConfigs, AlterPartitionReassignments): Metadata from the bootstrap
/// servers names it; a broker that is not the controller would forward them
/// (as anonymous) or, with ACLs on, answer NOT_CONTROLLER.
pub async fn controller(bootstrap: &Bootstrap) -> Result<Client, ClientError> {
    named(bootstrap, |m| m.controller_id.0).await
}

/// A connection to broker `id` (a broker's own configs are its to change).
pub async fn broker(bootstrap: &Bootstrap, id: i32) -> Result<Client, ClientError> {
    named(bootstrap, |_| id).await
}

/// A connection to the broker `pick` names from the bootstrap servers'
/// Metadata; the bootstrap connection itself when that is the one, when none
/// is named, or when its address cannot be reached from here (the bootstrap
/// broker then answers as it can).
async fn named(
    bootstrap: &Bootstrap,
    pick: impl FnOnce(&kafka_protocol::messages::MetadataResponse) -> i32,
) -> Result<Client, ClientError> {
    let mut first = Client::connect(bootstrap).await?;
    let m = first.call(12, &brokers_only()).await?;
    let id = pick(&m);
    let Some(b) = m.brokers.iter().find(|b| b.node_id.0 == id) else {
        return Ok(first);
    };
    let addr = format!("{}:{}", b.host.as_str(), b.port);
    if bootstrap.servers.split(',').count() == 1 && bootstrap.servers.trim() == addr {
        return Ok(first);
    }
    let at = Bootstrap {
        servers: addr,
        security: bootstrap.security.clone(),
    };
    Ok(Client::connect(&at).await.unwrap_or(first))
}

/// Metadata of the brokers and the controller only (no topic).
fn brokers_only() -> MetadataRequest {
    let mut req = MetadataRequest::default();
    req.topics = Some(Vec::new());
    req.allow_auto_topic_creation = false;
    req
}
