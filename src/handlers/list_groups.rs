//! ListGroups (16): every group, optionally filtered by state (v4+) and by type
//! (v5+: "classic" or "consumer", the protocol the group is used with).

use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::group::coordinator::GroupType;
use crate::security::acl::{Operation, ResourceType};

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: ListGroupsRequest) -> ListGroupsResponse {
    let mut response = ListGroupsResponse::default();
    let wanted = |state: &str| {
        request.states_filter.is_empty() || request.states_filter.iter().any(|s| s.eq_ignore_ascii_case(state))
    };
    let type_wanted = |t: &str| {
        request.types_filter.is_empty() || request.types_filter.iter().any(|w| w.eq_ignore_ascii_case(t))
    };
    // DESCRIBE on the cluster lists every group; otherwise those the
    // principal may describe.
    let all = super::allowed(broker, ctx, Operation::Describe, ResourceType::Cluster, super::CLUSTER);
    for (id, protocol_type, state) in broker.groups.list() {
        let group_type = match broker.groups.shard(&id).ok().and_then(|s| s.group_type(&id)) {
            Some(GroupType::Consumer) => GroupType::Consumer,
            _ => GroupType::Classic,
        };
        if !wanted(state) || !type_wanted(group_type.as_str()) {
            continue;
        }
        if !all && !super::allowed(broker, ctx, Operation::Describe, ResourceType::Group, &id) {
            continue;
        }
        let mut g = ListedGroup::default();
        g.group_id = GroupId(StrBytes::from_string(id));
        g.protocol_type = StrBytes::from_string(protocol_type);
        if ctx.api_version >= 4 {
            g.group_state = StrBytes::from_static_str(state);
        }
        if ctx.api_version >= 5 {
            g.group_type = StrBytes::from_static_str(group_type.as_str());
        }
        response.groups.push(g);
    }
    response
}
