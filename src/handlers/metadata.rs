//! Metadata (3): brokers, the cluster id, topics and their partitions; creates
//! unknown topics when auto-creation is enabled and the client allows it.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{allowed, RequestContext, CLUSTER};
use crate::broker::Broker;
use crate::error::Error;
use crate::cluster::controller::NewTopic;
use crate::cluster::metadata_cache::TopicMetadata;
use crate::log::manager::{is_internal_topic, validate_topic_name};
use crate::security::acl::{Operation, ResourceType};
use crate::util::clock::now_ms;

/// Kafka's value for "authorized operations were not requested".
pub const OPERATIONS_OMITTED: i32 = i32::MIN;

/// What `topic_authorized_operations` reports on.
const TOPIC_OPERATIONS: [Operation; 8] = [
    Operation::Read,
    Operation::Write,
    Operation::Create,
    Operation::Delete,
    Operation::Alter,
    Operation::Describe,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
];

/// What `cluster_authorized_operations` (and DescribeCluster's) report on.
pub const CLUSTER_OPERATIONS: [Operation; 9] = [
    Operation::Create,
    Operation::Alter,
    Operation::Describe,
    Operation::ClusterAction,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
    Operation::IdempotentWrite,
    Operation::CreateTokens,
    Operation::DescribeTokens,
];

fn describe(topic: TopicMetadata) -> MetadataResponseTopic {
    let nodes = |ids: Vec<i32>| ids.into_iter().map(BrokerId).collect();
    let mut t = MetadataResponseTopic::default();
    t.name = Some(TopicName(StrBytes::from_string(topic.name)));
    t.topic_id = topic.id;
    t.topic_authorized_operations = OPERATIONS_OMITTED;
    t.is_internal = topic.internal;
    t.partitions = topic
        .partitions
        .into_iter()
        .map(|p| {
            let mut mp = MetadataResponsePartition::default();
            mp.partition_index = p.index;
            mp.leader_id = BrokerId(p.leader);
            mp.leader_epoch = p.leader_epoch;
            mp.replica_nodes = nodes(p.replicas);
            mp.isr_nodes = nodes(p.isr);
            mp.offline_replicas = nodes(p.offline);
            if p.leader < 0 {
                mp.error_code = ResponseError::LeaderNotAvailable.code();
            }
            mp
        })
        .collect();
    t
}

fn failed(name: Option<TopicName>, id: uuid::Uuid, code: ResponseError) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = name;
    t.topic_id = id;
    t.error_code = code.code();
    t.topic_authorized_operations = OPERATIONS_OMITTED;
    t
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: MetadataRequest) -> MetadataResponse {
    let version = ctx.api_version;
    let mut response = MetadataResponse::default();
    let metadata = &broker.metadata;
    response.brokers = metadata
        .alive_brokers(&ctx.listener.name)
        .into_iter()
        .map(|node| {
            let mut b = MetadataResponseBroker::default();
            b.node_id = BrokerId(node.id);
            b.host = StrBytes::from_string(node.host);
            b.port = node.port;
            b.rack = node.rack.map(StrBytes::from_string);
            b
        })
        .collect();
    response.cluster_id = Some(StrBytes::from_string(metadata.cluster_id().to_string()));
    response.controller_id = BrokerId(metadata.controller_id());
    response.cluster_authorized_operations = OPERATIONS_OMITTED;
    if request.include_cluster_authorized_operations {
        response.cluster_authorized_operations = broker.authorizer.authorized_operations(
            &ctx.principal,
            ctx.peer.ip(),
            ResourceType::Cluster,
            CLUSTER,
            &CLUSTER_OPERATIONS,
        );
    }
    let describable = |name: &str| allowed(broker, ctx, Operation::Describe, ResourceType::Topic, name);
    let with_operations = |mut t: MetadataResponseTopic| {
        if let (true, Some(name)) = (request.include_topic_authorized_operations, &t.name) {
            t.topic_authorized_operations = broker.authorizer.authorized_operations(
                &ctx.principal,
                ctx.peer.ip(),
                ResourceType::Topic,
                name.as_str(),
                &TOPIC_OPERATIONS,
            );
        }
        t
    };

    // v0: an empty list means all topics; v1+: null means all topics.
    let requested = match request.topics {
        Some(topics) if !(version == 0 && topics.is_empty()) => topics,
        _ => {
            // Internal topics too, flagged (clients leave them out as they
            // choose, as with Kafka); topics the principal may not describe
            // are left out.
            response.topics = metadata
                .topics()
                .into_iter()
                .filter(|t| describable(&t.name))
                .map(|t| with_operations(describe(t)))
                .collect();
            return response;
        }
    };
    // Before v4 there is no flag: auto-creation is up to the broker alone.
    let may_create = broker.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    // Kafka collects the requested topics into a set: a name (or id) asked for
    // many times is answered once.
    let mut seen = std::collections::HashSet::new();
    for wanted in requested {
        if !seen.insert((wanted.name.clone(), wanted.topic_id)) {
            continue;
        }
        let Some(name) = wanted.name.clone() else {
            // Lookup by topic id.
            response.topics.push(match metadata.topic_by_id(&wanted.topic_id) {
                Some(t) if describable(&t.name) => with_operations(describe(t)),
                Some(_) => failed(None, wanted.topic_id, ResponseError::TopicAuthorizationFailed),
                None => failed(None, wanted.topic_id, ResponseError::UnknownTopicId),
            });
            continue;
        };
        if !describable(name.as_str()) {
            response.topics.push(failed(
                Some(name),
                uuid::Uuid::nil(),
                ResponseError::TopicAuthorizationFailed,
            ));
            continue;
        }
        if let Some(t) = metadata.topic(name.as_str()) {
            response.topics.push(with_operations(describe(t)));
            continue;
        }
        if let Err(e) = validate_topic_name(name.as_str()) {
            response.topics.push(failed(Some(name), uuid::Uuid::nil(), e.code()));
            continue;
        }
        // Internal topics are the broker's to make.
        if !may_create || is_internal_topic(name.as_str()) {
            response.topics.push(failed(
                Some(name),
                uuid::Uuid::nil(),
                ResponseError::UnknownTopicOrPartition,
            ));
            continue;
        }
        // Auto-creation needs CREATE on the cluster or on the topic.
        let may_create_this = allowed(broker, ctx, Operation::Create, ResourceType::Cluster, CLUSTER)
            || allowed(broker, ctx, Operation::Create, ResourceType::Topic, name.as_str());
        if !may_create_this {
            response.topics.push(failed(
                Some(name),
                uuid::Uuid::nil(),
                ResponseError::TopicAuthorizationFailed,
            ));
            continue;
        }
        if broker.metadata.is_cluster() {
            // The controller creates it; clients retry while its leaders
            // are being placed (LEADER_NOT_AVAILABLE, as Kafka answers).
            auto_create_in_cluster(broker, name.as_str()).await;
            response.topics.push(match metadata.topic(name.as_str()) {
                Some(t) if t.partitions.iter().all(|p| p.leader >= 0) => with_operations(describe(t)),
                _ => failed(Some(name), uuid::Uuid::nil(), ResponseError::LeaderNotAvailable),
            });
            continue;
        }
        match broker.logs.create_topic(
            name.as_str(),
            broker.config.num_partitions,
            &Default::default(),
            now_ms(),
        ) {
            Ok(_) | Err(Error::TopicAlreadyExists(_)) => match metadata.topic(name.as_str()) {
                Some(t) => response.topics.push(with_operations(describe(t))),
                // Still being made by another request (or deleted again
                // meanwhile): LEADER_NOT_AVAILABLE, which clients retry, as
                // Kafka answers for a topic it is creating.
                None => response.topics.push(failed(
                    Some(name),
                    uuid::Uuid::nil(),
                    ResponseError::LeaderNotAvailable,
                )),
            },
            Err(e) => {
                tracing::warn!(topic = %name.as_str(), error = %e, "auto-creation failed");
                response.topics.push(failed(Some(name), uuid::Uuid::nil(), e.code()));
            }
        }
    }
    response
}

/// Have the controller create `name` with this broker's `num.partitions`.
async fn auto_create_in_cluster(broker: &Arc<Broker>, name: &str) {
    let new = NewTopic {
        name: name.to_string(),
        partitions: broker.config.num_partitions,
        replication_factor: -1,
        assignments: Vec::new(),
        configs: Default::default(),
    };
    if let Err(e) = super::forward::create_in_cluster(broker, new).await {
        tracing::debug!(topic = name, error = %e, "auto-creation in the cluster not done (yet)");
    }
}
