//! DeleteRecords (21): advance partitions' log start offsets.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::replica::partition::NO_LEADER_EPOCH;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut response = DeleteRecordsResponse::default();
    for t in request.topics {
        let mut tr = DeleteRecordsTopicResult::default();
        for p in &t.partitions {
            let mut pr = DeleteRecordsPartitionResult::default();
            pr.partition_index = p.partition_index;
            let may = super::allowed(broker, ctx, Operation::Delete, ResourceType::Topic, t.name.as_str());
            let deleted = match may {
                // The leader deletes; followers follow its log start offset.
                true => broker
                    .replicas
                    .leader_log(t.name.as_str(), p.partition_index, NO_LEADER_EPOCH)
                    .and_then(|part| part.delete_records(p.offset)),
                false => Err(crate::error::Error::TopicAuthorizationFailed(t.name.to_string())),
            };
            match deleted
            {
                Ok(low) => pr.low_watermark = low,
                Err(e) => {
                    pr.error_code = e.wire_code();
                    pr.low_watermark = -1;
                }
            }
            tr.partitions.push(pr);
        }
        tr.name = t.name;
        response.topics.push(tr);
    }
    response
}
