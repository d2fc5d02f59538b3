//! ElectLeaders (43): elect partitions' leaders now (`kafka-leader-election`):
//! the preferred replica (election type 0), or, for a partition without a
//! running in-sync replica, any running replica (type 1, unclean: the
//! records only the others had are lost). ALTER on the cluster. In a cluster
//! the controller does it (forwarded there); each partition answers
//! ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE or
//! ELIGIBLE_LEADERS_NOT_AVAILABLE as Kafka's. On one broker every partition is
//! led by its only replica: nothing to elect. With no partitions named,
//! every partition is tried and those needing nothing are left out.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{allowed, RequestContext, CLUSTER};
use crate::broker::Broker;
use crate::cluster::controller::ControllerRequest;
use crate::error::Error;
use crate::security::acl::{Operation, ResourceType};

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: ElectLeadersRequest) -> ElectLeadersResponse {
    if !super::forward::here(broker, ctx) {
        if let Some(answer) = super::forward::to_controller(broker, ctx.api_version, &request).await {
            return answer;
        }
    }
    let mut response = ElectLeadersResponse::default();
    let permitted = allowed(broker, ctx, Operation::Alter, ResourceType::Cluster, CLUSTER);
    if !permitted && ctx.api_version >= 1 {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    // v0 knows only the preferred replica.
    let preferred = match (ctx.api_version, request.election_type) {
        (0, _) | (_, PREFERRED) => Some(true),
        (_, UNCLEAN) => Some(false),
        _ => None,
    };
    let all = request.topic_partitions.is_none();
    let wanted: Vec<(String, Vec<i32>)> = match request.topic_partitions {
        Some(topics) => topics.into_iter().map(|t| (t.topic.to_string(), t.partitions)).collect(),
        None => broker
            .metadata
            .topics()
            .into_iter()
            .map(|t| (t.name, t.partitions.iter().map(|p| p.index).collect()))
            .collect(),
    };
    for (topic, partitions) in wanted {
        let mut result = ReplicaElectionResult::default();
        result.topic = TopicName(StrBytes::from_string(topic.clone()));
        for partition in partitions {
            let outcome = match preferred {
                _ if !permitted => Err(Error::ClusterAuthorizationFailed),
                None => Err(Error::InvalidRequest(format!("unknown election type {}", request.election_type))),
                Some(preferred) => elect(broker, &topic, partition, preferred).await,
            };
            if all && matches!(outcome, Err(Error::ElectionNotNeeded)) {
                continue;
            }
            let mut p = PartitionResult::default();
            p.partition_id = partition;
            if let Err(e) = outcome {
                (p.error_code, p.error_message) = super::error_message(&e);
            }
            result.partition_result.push(p);
        }
        if !result.partition_result.is_empty() {
            response.replica_election_results.push(result);
        }
    }
    response
}

async fn elect(broker: &Broker, topic: &str, partition: i32, preferred: bool) -> Result<(), Error> {
    if broker.metadata.partition(topic, partition).is_none() {
        return Err(Error::UnknownTopicOrPartition {
            topic: topic.to_string(),
            partition,
        });
    }
    if !broker.metadata.is_cluster() {
        return Err(Error::ElectionNotNeeded);
    }
    let request = ControllerRequest::ElectLeader {
        topic: topic.to_string(),
        partition,
        preferred,
    };
    broker.controller.partition_request(request).await.map(drop)
}
