//! OffsetDelete (47): remove committed offsets of partitions a group no longer
//! consumes.

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::RequestContext;
use crate::broker::Broker;
use crate::util::clock::now_ms;

#[tracing::instrument(level = "debug", skip_all, fields(group = %request.group_id.as_str(), client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let partitions = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), p.partition_index)))
        .collect();
    let mut response = OffsetDeleteResponse::default();
    let results = match broker
        .groups
        .delete_offsets(request.group_id.as_str(), partitions, now_ms())
        .await
    {
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
            pr.error_code = codes.get(&(t.name.as_str(), p.partition_index)).copied().unwrap_or(0);
            tr.partitions.push(pr);
        }
        tr.name = t.name;
        response.topics.push(tr);
    }
    response
}
