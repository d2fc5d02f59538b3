//! OffsetDelete (47): remove committed offsets of partitions a group no longer
//! consumes.

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::util::clock::now_ms;

#[tracing::instrument(level = "debug", skip_all, fields(group = %request.group_id.as_str(), client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    if !super::allowed(broker, ctx, Operation::Delete, ResourceType::Group, request.group_id.as_str()) {
        let mut response = OffsetDeleteResponse::default();
        response.error_code = kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    // A topic the principal may not READ keeps its offsets.
    let readable = super::readable_topics(broker, ctx, request.topics.iter().map(|t| t.name.as_str()));
    let partitions = request
        .topics
        .iter()
        .filter(|t| readable.contains(t.name.as_str()))
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), p.partition_index)))
        .collect();
    let mut response = OffsetDeleteResponse::default();
    let group = request.group_id.as_str();
    let deleted = match broker.groups.shard(group) {
        Ok(shard) => shard.delete_offsets(group, partitions, now_ms()).await,
        Err(e) => Err(e),
    };
    let results = match deleted {
        Ok(r) => r,
        Err(e) => {
            response.error_code = e.wire_code();
            return response;
        }
    };
    let codes = super::partition_codes(&results, |e| e.wire_code());
    for t in request.topics {
        let mut tr = OffsetDeleteResponseTopic::default();
        for p in &t.partitions {
            let mut pr = OffsetDeleteResponsePartition::default();
            pr.partition_index = p.partition_index;
            pr.error_code = match readable.contains(t.name.as_str()) {
                true => codes.get(&(t.name.as_str(), p.partition_index)).copied().unwrap_or(0),
                false => kafka_protocol::error::ResponseError::TopicAuthorizationFailed.code(),
            };
            tr.partitions.push(pr);
        }
        tr.name = t.name;
        response.topics.push(tr);
    }
    response
}
