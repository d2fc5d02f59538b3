//! JoinGroup (11): held until the rebalance completes (the connection keeps
//! serving other requests meanwhile). From v4 a new member first gets
//! MEMBER_ID_REQUIRED with its id (KIP-394); static members (KIP-345) rejoin
//! without a rebalance.

use std::sync::Arc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::{str_bytes, unless_shutting_down, RequestContext};
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::error::Error;
use crate::group::member::{JoinArgs, MemberProfile};
use crate::util::clock::now_ms;

#[tracing::instrument(level = "debug", skip_all, fields(group = %request.group_id.as_str(), client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: JoinGroupRequest) -> JoinGroupResponse {
    if !super::allowed(broker, ctx, Operation::Read, ResourceType::Group, request.group_id.as_str()) {
        let mut response = JoinGroupResponse::default();
        response.error_code = kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    let version = ctx.api_version;
    let profile = MemberProfile {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: the session timeout serves as both.
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
    };
    let args = JoinArgs {
        profile,
        protocol_type: request.protocol_type.to_string(),
        require_known_member_id: version >= 4,
    };
    let group = request.group_id.as_str();
    let joined = match broker.groups.shard(group) {
        Ok(shard) => unless_shutting_down(broker, shard.join(group, args, now_ms())).await,
        Err(e) => Err(e),
    };
    let mut response = JoinGroupResponse::default();
    match joined {
        Ok(r) => {
            response.generation_id = r.generation_id;
            response.protocol_type = r.protocol_type.map(StrBytes::from_string);
            response.protocol_name = r.protocol_name.map(StrBytes::from_string);
            response.leader = StrBytes::from_string(r.leader);
            response.member_id = StrBytes::from_string(r.member_id);
            response.skip_assignment = r.skip_assignment && version >= 9;
            response.members = r
                .members
                .into_iter()
                .map(|m| {
                    let mut jm = JoinGroupResponseMember::default();
                    jm.member_id = StrBytes::from_string(m.member_id);
                    jm.group_instance_id = m.group_instance_id.map(StrBytes::from_string);
                    jm.metadata = m.metadata;
                    jm
                })
                .collect();
        }
        Err(e) => {
            tracing::debug!(error = %e, "join refused");
            response.error_code = e.wire_code();
            response.generation_id = -1;
            response.member_id = match &e {
                Error::MemberIdRequired(id) => str_bytes(id),
                _ => request.member_id,
            };
        }
    }
    // v0–6 cannot carry a null protocol name.
    if version < 7 {
        response.protocol_name.get_or_insert_with(StrBytes::default);
    }
    response
}
