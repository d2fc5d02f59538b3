//! SyncGroup (14): the leader hands in assignments; every member gets its own.

use std::sync::Arc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::{unless_shutting_down, RequestContext};
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::group::member::MemberRef;
use crate::error::Error;
use crate::util::clock::now_ms;

#[tracing::instrument(level = "debug", skip_all, fields(group = %request.group_id.as_str(), client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: SyncGroupRequest) -> SyncGroupResponse {
    if !super::allowed(broker, ctx, Operation::Read, ResourceType::Group, request.group_id.as_str()) {
        let mut response = SyncGroupResponse::default();
        response.error_code = kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let group = request.group_id.as_str();
    let synced = match broker.groups.shard(group) {
        Ok(shard) => {
            let caller =
                MemberRef::new(request.member_id.as_str(), request.group_instance_id.as_deref(), request.generation_id);
            unless_shutting_down(broker, shard.sync(group, caller, assignments, now_ms())).await
        }
        Err(e) => Err(e),
    };
    let mut response = SyncGroupResponse::default();
    match synced {
        Ok(r) => {
            // v5: the client checks the protocol it synced with.
            let mismatch = |asked: &Option<StrBytes>, actual: &Option<String>| {
                asked.as_ref().is_some_and(|a| Some(a.as_str()) != actual.as_deref())
            };
            if mismatch(&request.protocol_type, &r.protocol_type) || mismatch(&request.protocol_name, &r.protocol_name)
            {
                response.error_code = Error::InconsistentGroupProtocol.wire_code();
                return response;
            }
            response.protocol_type = r.protocol_type.map(StrBytes::from_string);
            response.protocol_name = r.protocol_name.map(StrBytes::from_string);
            response.assignment = r.assignment;
        }
        Err(e) => response.error_code = e.wire_code(),
    }
    response
}
