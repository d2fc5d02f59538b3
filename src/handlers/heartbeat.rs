//! Heartbeat (12): keeps a member's session alive; tells it when to rejoin.

use std::sync::Arc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::group::member::MemberRef;
use crate::util::clock::now_ms;

#[tracing::instrument(level = "trace", skip_all, fields(group = %request.group_id.as_str(), client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: HeartbeatRequest) -> HeartbeatResponse {
    if !super::allowed(broker, ctx, Operation::Read, ResourceType::Group, request.group_id.as_str()) {
        let mut response = HeartbeatResponse::default();
        response.error_code = kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    let mut response = HeartbeatResponse::default();
    let group = request.group_id.as_str();
    let beat = broker.groups.shard(group).and_then(|shard| {
        let caller = MemberRef::new(request.member_id.as_str(), request.group_instance_id.as_deref(), request.generation_id);
        shard.heartbeat(group, caller, now_ms())
    });
    if let Err(e) = beat {
        response.error_code = e.wire_code();
    }
    response
}
