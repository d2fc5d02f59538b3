//! KIP-951: a partition answered NOT_LEADER_OR_FOLLOWER or
//! FENCED_LEADER_EPOCH in Produce (v10+) or Fetch (current leader v12+, the
//! endpoints v16+) names its current leader and leader epoch, and the
//! response carries how to reach that broker on the client's listener, so the
//! client goes there without asking for Metadata first (Kafka 3.7+; librdkafka
//! 2.4+ and the Java client use it). The codecs leave both out of older
//! versions.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{fetch_response, produce_response, BrokerId};

use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::cluster::metadata_cache::Node;

/// The leaders named so far in one response, by id.
pub struct LeaderHints<'a> {
    broker: &'a Broker,
    listener: &'a str,
    nodes: BTreeMap<i32, Node>,
}

impl<'a> LeaderHints<'a> {
    pub fn new(broker: &'a Broker, ctx: &'a RequestContext) -> LeaderHints<'a> {
        LeaderHints {
            broker,
            listener: &ctx.listener.name,
            nodes: BTreeMap::new(),
        }
    }

    /// For a partition answered `code`: its current leader and leader epoch
    /// as this broker's metadata knows them, if the code calls for a hint and
    /// a leader is known (and reachable on the client's listener).
    pub fn hint(&mut self, code: i16, topic: &str, partition: i32) -> Option<(i32, i32)> {
        let wanted =
            code == ResponseError::NotLeaderOrFollower.code() || code == ResponseError::FencedLeaderEpoch.code();
        if !wanted {
            return None;
        }
        let p = self.broker.metadata.partition(topic, partition)?;
        if p.leader < 0 {
            return None;
        }
        let node = self.broker.metadata.node(p.leader, self.listener)?;
        self.nodes.insert(p.leader, node);
        Some((p.leader, p.leader_epoch))
    }

    /// The brokers named, for a Produce response's node_endpoints.
    pub fn produce_endpoints(self) -> Vec<produce_response::NodeEndpoint> {
        self.nodes
            .into_values()
            .map(|n| endpoint!(produce_response, n))
            .collect()
    }

    /// The brokers named, for a Fetch response's node_endpoints.
    pub fn fetch_endpoints(self) -> Vec<fetch_response::NodeEndpoint> {
        self.nodes.into_values().map(|n| endpoint!(fetch_response, n)).collect()
    }
}

/// The two responses' NodeEndpoint are distinct types of the same fields.
macro_rules! endpoint {
    ($module:ident, $node:expr) => {{
        let n: Node = $node;
        let mut e = $module::NodeEndpoint::default();
        e.node_id = BrokerId(n.id);
        e.host = str_bytes(&n.host);
        e.port = n.port;
        e.rack = n.rack.as_deref().map(str_bytes);
        e
    }};
}
use endpoint;
