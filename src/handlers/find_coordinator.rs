//! FindCoordinator (10): a group's coordinator leads its `__consumer_offsets`
//! partition, a transactional id's its `__transaction_state` partition, each the
//! partition Kafka's hash gives the key (`util::hash::coordinator_partition`):
//! on one broker, this broker for both.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::cluster::controller::NewTopic;
use crate::cluster::metadata_cache::Node;
use crate::error::Error;
use crate::log::manager::{OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC};
use crate::util::clock::now_ms;
use crate::util::hash::coordinator_partition;

const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

/// The coordinator of one key, at its address on the client's listener.
fn locate(broker: &Broker, ctx: &RequestContext, key_type: i8, key: &str) -> Result<Node, Error> {
    let listener = ctx.listener.name.as_str();
    // DESCRIBE on the group or transactional id.
    let resource = match key_type {
        GROUP_KEY => Some(ResourceType::Group),
        TRANSACTION_KEY => Some(ResourceType::TransactionalId),
        _ => None,
    };
    if let Some(resource) = resource.filter(|r| !super::allowed(broker, ctx, Operation::Describe, *r, key)) {
        return Err(match resource {
            ResourceType::Group => Error::GroupAuthorizationFailed(key.to_string()),
            _ => Error::TransactionalIdAuthorizationFailed,
        });
    }
    let topic = match key_type {
        GROUP_KEY if key.is_empty() => return Err(Error::InvalidGroupId(key.to_string())),
        GROUP_KEY => OFFSETS_TOPIC,
        TRANSACTION_KEY if key.is_empty() => return Err(Error::InvalidRequest("empty transactional id".into())),
        TRANSACTION_KEY => TRANSACTION_STATE_TOPIC,
        _ => return Err(Error::InvalidRequest(format!("unknown coordinator key type {key_type}"))),
    };
    // The coordinator is the leader of the key's partition of the internal topic,
    // hashed over the topic's partitions (one on a single broker's
    // __consumer_offsets, 50 on __transaction_state).
    let unavailable = || Error::CoordinatorNotAvailable("the coordinator's partition has no leader");
    let partitions = broker.metadata.topic(topic).ok_or_else(unavailable)?.partitions;
    let partition = coordinator_partition(key, partitions.len() as i32);
    let leader = partitions
        .iter()
        .find(|p| p.index == partition)
        .map(|p| p.leader)
        .filter(|leader| *leader >= 0)
        .ok_or_else(unavailable)?;
    broker
        .metadata
        .node(leader, listener)
        .ok_or(Error::CoordinatorNotAvailable("the coordinator has no such listener"))
}

/// The coordinators' topic is made by the first search for a coordinator
/// (as Kafka does): on one broker `__transaction_state` by this broker
/// (`__consumer_offsets` exists from the start); in a cluster either by the
/// controller, and until its partitions have leaders the answer is
/// COORDINATOR_NOT_AVAILABLE, which clients retry.
async fn ensure_topic(broker: &Broker, key_type: i8) -> Result<(), Error> {
    let cluster = &broker.config.cluster;
    let (topic, partitions, replication_factor) = match key_type {
        GROUP_KEY => (
            OFFSETS_TOPIC,
            cluster.offsets_topic_num_partitions,
            cluster.offsets_topic_replication_factor,
        ),
        TRANSACTION_KEY => (
            TRANSACTION_STATE_TOPIC,
            cluster.transaction_state_log_num_partitions,
            cluster.transaction_state_log_replication_factor,
        ),
        _ => return Ok(()),
    };
    if !broker.metadata.is_cluster() {
        return match key_type {
            TRANSACTION_KEY => broker.transactions.ensure_state_topic(now_ms()),
            _ => Ok(()),
        };
    }
    if broker.metadata.topic(topic).is_some() {
        return Ok(());
    }
    let new = NewTopic {
        name: topic.to_string(),
        partitions,
        replication_factor,
        assignments: Vec::new(),
        configs: Default::default(),
    };
    super::forward::create_in_cluster(broker, new).await
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let mut response = FindCoordinatorResponse::default();
    if let Err(e) = ensure_topic(broker, request.key_type).await {
        tracing::warn!(error = %e, "cannot make the coordinator's topic");
    }
    if ctx.api_version >= 4 {
        // v4+: a batch of keys, one coordinator entry each.
        for key in request.coordinator_keys {
            let mut c = Coordinator::default();
            match locate(broker, ctx, request.key_type, key.as_str()) {
                Ok(node) => {
                    c.node_id = BrokerId(node.id);
                    c.host = StrBytes::from_string(node.host);
                    c.port = node.port;
                }
                Err(e) => {
                    c.node_id = BrokerId(-1);
                    c.port = -1;
                    (c.error_code, c.error_message) = super::error_message(&e);
                }
            }
            c.key = key;
            response.coordinators.push(c);
        }
        return response;
    }
    match locate(broker, ctx, request.key_type, request.key.as_str()) {
        Ok(node) => {
            response.node_id = BrokerId(node.id);
            response.host = StrBytes::from_string(node.host);
            response.port = node.port;
        }
        Err(e) => {
            response.node_id = BrokerId(-1);
            response.port = -1;
            (response.error_code, response.error_message) = super::error_message(&e);
        }
    }
    response
}
