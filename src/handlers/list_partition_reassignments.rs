//! ListPartitionReassignments (46): the partitions whose replicas are being
//! moved, each with its whole assignment meanwhile and the replicas being
//! added and removed (`kafka-reassign-partitions --list`). DESCRIBE on the
//! cluster. Answered from this broker's image of the cluster's metadata; no
//! topics named means every partition being moved, and partitions named that
//! are not being moved are left out (Kafka too).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{allowed, RequestContext, CLUSTER};
use crate::broker::Broker;
use crate::cluster::controller::reassign;
use crate::security::acl::{Operation, ResourceType};

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let mut response = ListPartitionReassignmentsResponse::default();
    if !allowed(broker, ctx, Operation::Describe, ResourceType::Cluster, CLUSTER) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    let Some(image) = broker.metadata.image() else {
        // One broker moves nothing.
        return response;
    };
    let wanted: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect()
    });
    let ids = |b: &[i32]| b.iter().copied().map(BrokerId).collect::<Vec<_>>();
    for topic in image.topics() {
        let named = match &wanted {
            None => None,
            Some(w) => match w.iter().find(|(name, _)| *name == topic.name) {
                Some((_, partitions)) => Some(partitions),
                None => continue,
            },
        };
        let mut t = OngoingTopicReassignment::default();
        t.name = TopicName(StrBytes::from_string(topic.name.clone()));
        for (index, entry) in &topic.partitions {
            let r = &entry.record;
            if !reassign::ongoing(r) || named.is_some_and(|n| !n.contains(index)) {
                continue;
            }
            let mut p = OngoingPartitionReassignment::default();
            p.partition_index = *index;
            p.replicas = ids(&r.replicas);
            p.adding_replicas = ids(&r.adding);
            p.removing_replicas = ids(&r.removing);
            t.partitions.push(p);
        }
        if !t.partitions.is_empty() {
            response.topics.push(t);
        }
    }
    response
}
