//! DescribeAcls (29): the ACLs a filter matches, grouped by resource. Needs
//! DESCRIBE on the cluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};

use super::{allowed, str_bytes, RequestContext, CLUSTER};
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DescribeAclsRequest) -> DescribeAclsResponse {
    let mut response = DescribeAclsResponse::default();
    if !broker.authorizer.enabled() {
        response.error_code = ResponseError::SecurityDisabled.code();
        response.error_message = Some(str_bytes("No Authorizer is configured."));
        return response;
    }
    if !allowed(broker, ctx, Operation::Describe, ResourceType::Cluster, CLUSTER) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    let filter = match super::acls::filter(
        request.resource_type_filter,
        request.resource_name_filter.as_deref(),
        request.pattern_type_filter,
        request.principal_filter.as_deref(),
        request.host_filter.as_deref(),
        request.operation,
        request.permission_type,
    ) {
        Ok(f) => f,
        Err(message) => {
            response.error_code = ResponseError::InvalidRequest.code();
            response.error_message = Some(str_bytes(&message));
            return response;
        }
    };
    let mut by_resource: BTreeMap<_, Vec<AclDescription>> = BTreeMap::new();
    for acl in broker.authorizer.describe(&filter) {
        let mut d = AclDescription::default();
        d.principal = str_bytes(&acl.principal);
        d.host = str_bytes(&acl.host);
        d.operation = acl.operation as i8;
        d.permission_type = acl.permission as i8;
        by_resource
            .entry((acl.resource_type, acl.resource_name, acl.pattern_type))
            .or_default()
            .push(d);
    }
    response.resources = by_resource
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            let mut r = DescribeAclsResource::default();
            r.resource_type = resource_type as i8;
            r.resource_name = str_bytes(&name);
            r.pattern_type = pattern_type as i8;
            r.acls = acls;
            r
        })
        .collect();
    response
}
