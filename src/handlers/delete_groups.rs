//! DeleteGroups (42): a group without members, with its committed offsets.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::util::clock::now_ms;

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    for id in request.groups_names {
        let mut r = DeletableGroupResult::default();
        if !super::allowed(broker, ctx, Operation::Delete, ResourceType::Group, id.as_str()) {
            r.error_code = kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code();
        } else if let Err(e) = delete(broker, id.as_str()).await {
            r.error_code = e.wire_code();
        }
        r.group_id = id;
        response.results.push(r);
    }
    response
}

async fn delete(broker: &Broker, group: &str) -> crate::error::Result<()> {
    broker.groups.shard(group)?.delete_group(group, now_ms()).await
}
