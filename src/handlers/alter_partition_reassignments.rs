//! AlterPartitionReassignments (45): move partitions' replicas to other
//! brokers, or cancel a move (`kafka-reassign-partitions --execute|--cancel`,
//! KIP-455). ALTER on the cluster. The controller does it (forwarded there):
//! the assignment widens to the target, the new replicas copy the leader's
//! log, and once they are all in sync the assignment narrows to the target
//! (`cluster::controller::reassign`). Each partition answers on its own:
//! UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT (duplicates, no
//! replica, an unregistered broker), NO_REASSIGNMENT_IN_PROGRESS (a cancel
//! with nothing to cancel), and from v1 INVALID_REPLICATION_FACTOR for a
//! target of another size unless the request allows it (KIP-860).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse};

use super::{allowed, RequestContext, CLUSTER};
use crate::broker::Broker;
use crate::cluster::controller::{reassign, ControllerRequest};
use crate::error::Error;
use crate::security::acl::{Operation, ResourceType};

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    if !super::forward::here(broker, ctx) {
        if let Some(answer) = super::forward::to_controller(broker, ctx.api_version, &request).await {
            return answer;
        }
    }
    let mut response = AlterPartitionReassignmentsResponse::default();
    response.allow_replication_factor_change = request.allow_replication_factor_change;
    if !allowed(broker, ctx, Operation::Alter, ResourceType::Cluster, CLUSTER) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    // Before v1 the replication factor may always change.
    let resize = ctx.api_version == 0 || request.allow_replication_factor_change;
    for topic in request.topics {
        let mut t = ReassignableTopicResponse::default();
        t.name = topic.name.clone();
        for p in topic.partitions {
            let target = p.replicas.map(|r| r.into_iter().map(|b| b.0).collect::<Vec<i32>>());
            let outcome = reassign_one(broker, &topic.name, p.partition_index, target, resize).await;
            let mut r = ReassignablePartitionResponse::default();
            r.partition_index = p.partition_index;
            if let Err(e) = outcome {
                (r.error_code, r.error_message) = super::error_message(&e);
            }
            t.partitions.push(r);
        }
        response.responses.push(t);
    }
    response
}

async fn reassign_one(
    broker: &Broker,
    topic: &str,
    partition: i32,
    target: Option<Vec<i32>>,
    resize: bool,
) -> Result<(), Error> {
    let current = broker
        .metadata
        .partition(topic, partition)
        .ok_or_else(|| Error::UnknownTopicOrPartition {
            topic: topic.to_string(),
            partition,
        })?;
    if !broker.metadata.is_cluster() {
        // One broker: its only replica stays where it is.
        return match target {
            None => Err(Error::NoReassignmentInProgress),
            Some(t) if t == current.replicas => Ok(()),
            Some(t) => {
                reassign::check_target(&t, |b| b == broker.node_id())?;
                Ok(())
            }
        };
    }
    if let Some(t) = &target {
        let original = broker
            .metadata
            .image()
            .and_then(|i| i.topic(topic)?.partitions.get(&partition).map(|e| reassign::original(&e.record)))
            .unwrap_or(current.replicas);
        if !resize && t.len() != original.len() {
            return Err(Error::ReplicationFactorChange {
                from: original.len(),
                to: t.len(),
            });
        }
    }
    let request = ControllerRequest::Reassign {
        topic: topic.to_string(),
        partition,
        target,
    };
    broker.controller.partition_request(request).await.map(drop)
}
