//! DescribeGroups (15): state, protocol and members of each classic group. A
//! consumer-protocol group is not described here (ConsumerGroupDescribe does):
//! it answers "Dead", from v6 with GROUP_ID_NOT_FOUND, as Kafka does.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::group::coordinator::GroupType;
use crate::security::acl::{Operation, ResourceType};

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    for id in request.groups {
        if !super::allowed(broker, ctx, Operation::Describe, ResourceType::Group, id.as_str()) {
            let mut g = DescribedGroup::default();
            g.group_id = id;
            g.error_code = kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code();
            g.authorized_operations = i32::MIN;
            response.groups.push(g);
            continue;
        }
        // Asked of a broker that does not coordinate it: NOT_COORDINATOR
        // (or COORDINATOR_LOAD_IN_PROGRESS), the client asks the coordinator.
        let shard = match broker.groups.shard(id.as_str()) {
            Ok(shard) => shard,
            Err(e) => {
                let mut g = DescribedGroup::default();
                g.group_id = id;
                g.error_code = e.wire_code();
                g.authorized_operations = i32::MIN;
                response.groups.push(g);
                continue;
            }
        };
        if shard.group_type(id.as_str()) == Some(GroupType::Consumer) {
            let mut g = DescribedGroup::default();
            g.group_state = StrBytes::from_static_str("Dead");
            g.authorized_operations = i32::MIN;
            if ctx.api_version >= 6 {
                g.error_code = kafka_protocol::error::ResponseError::GroupIdNotFound.code();
                g.error_message = Some(StrBytes::from_string(format!("Group {} is not a classic group.", id.as_str())));
            }
            g.group_id = id;
            response.groups.push(g);
            continue;
        }
        let d = shard.describe(id.as_str());
        let mut g = DescribedGroup::default();
        g.group_id = id;
        g.group_state = StrBytes::from_static_str(d.state);
        g.protocol_type = StrBytes::from_string(d.protocol_type);
        g.protocol_data = StrBytes::from_string(d.protocol_name);
        g.authorized_operations = match request.include_authorized_operations {
            true => broker.authorizer.authorized_operations(
                &ctx.principal,
                ctx.peer.ip(),
                ResourceType::Group,
                g.group_id.as_str(),
                &[Operation::Read, Operation::Describe, Operation::Delete],
            ),
            false => i32::MIN,
        };
        g.members = d
            .members
            .into_iter()
            .map(|m| {
                let mut dm = DescribedGroupMember::default();
                dm.member_id = StrBytes::from_string(m.member_id);
                dm.group_instance_id = m.group_instance_id.map(StrBytes::from_string);
                dm.client_id = StrBytes::from_string(m.client_id);
                dm.client_host = StrBytes::from_string(m.client_host);
                dm.member_metadata = m.metadata;
                dm.member_assignment = m.assignment;
                dm
            })
            .collect();
        response.groups.push(g);
    }
    response
}
