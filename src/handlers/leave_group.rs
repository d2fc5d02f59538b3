//! LeaveGroup (13): one member (v0–2) or a batch of members by id or instance id
//! (v3+).

use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::util::clock::now_ms;

#[tracing::instrument(level = "debug", skip_all, fields(group = %request.group_id.as_str(), client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: LeaveGroupRequest) -> LeaveGroupResponse {
    if !super::allowed(broker, ctx, Operation::Read, ResourceType::Group, request.group_id.as_str()) {
        let mut response = LeaveGroupResponse::default();
        response.error_code = kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    let batched = ctx.api_version >= 3;
    let leaving: Vec<(String, Option<String>)> = if batched {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let mut response = LeaveGroupResponse::default();
    let group = request.group_id.as_str();
    match broker.groups.shard(group).and_then(|s| s.leave(group, &leaving, now_ms())) {
        Ok(results) if batched => {
            response.members = request
                .members
                .into_iter()
                .zip(results)
                .map(|(m, r)| {
                    let mut mr = MemberResponse::default();
                    mr.member_id = m.member_id;
                    mr.group_instance_id = m.group_instance_id;
                    mr.error_code = r.err().map(|e| e.wire_code()).unwrap_or(0);
                    mr
                })
                .collect();
        }
        Ok(results) => {
            if let Some(Err(e)) = results.into_iter().next() {
                response.error_code = e.wire_code();
            }
        }
        Err(e) => response.error_code = e.wire_code(),
    }
    response
}
