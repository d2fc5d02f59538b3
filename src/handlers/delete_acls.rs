//! DeleteAcls (31): remove the ACLs each filter matches, and say which. Needs
//! ALTER on the cluster.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};

use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::cluster::documents;
use crate::security::acl::Authorizer;

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let refusal = super::acls::refusal(broker, ctx);
    let mut results: Vec<DeleteAclsFilterResult> = Vec::new();
    let mut filters = Vec::new();
    for f in &request.filters {
        let mut r = DeleteAclsFilterResult::default();
        let parsed = super::acls::filter(
            f.resource_type_filter,
            f.resource_name_filter.as_deref(),
            f.pattern_type_filter,
            f.principal_filter.as_deref(),
            f.host_filter.as_deref(),
            f.operation,
            f.permission_type,
        );
        match (refusal, parsed) {
            (Some((code, message)), _) => {
                r.error_code = code.code();
                r.error_message = Some(str_bytes(message));
            }
            (None, Ok(filter)) => filters.push((results.len(), filter)),
            (None, Err(message)) => {
                r.error_code = ResponseError::InvalidRequest.code();
                r.error_message = Some(str_bytes(&message));
            }
        }
        results.push(r);
    }
    if !filters.is_empty() {
        let only: Vec<_> = filters.iter().map(|(_, f)| f.clone()).collect();
        let local = {
            let only = only.clone();
            move |b: &Broker| b.authorizer.delete(&only)
        };
        let in_cluster = |document: Option<&[u8]>| {
            let (next, removed) = Authorizer::delete_in(document, &only)?;
            Ok((Some(next), removed))
        };
        match super::change_shared(broker, documents::ACLS, local, in_cluster).await {
            Ok(removed) => {
                for ((i, _), acls) in filters.iter().zip(removed) {
                    results[*i].matching_acls = acls
                        .into_iter()
                        .map(|acl| {
                            let mut m = DeleteAclsMatchingAcl::default();
                            m.resource_type = acl.resource_type as i8;
                            m.resource_name = str_bytes(&acl.resource_name);
                            m.pattern_type = acl.pattern_type as i8;
                            m.principal = str_bytes(&acl.principal);
                            m.host = str_bytes(&acl.host);
                            m.operation = acl.operation as i8;
                            m.permission_type = acl.permission as i8;
                            m
                        })
                        .collect();
                }
            }
            Err((code, message)) => {
                tracing::error!(error = %message, "cannot save ACLs");
                for (i, _) in &filters {
                    results[*i].error_code = code;
                    results[*i].error_message = Some(str_bytes(&message));
                }
            }
        }
    }
    let mut response = DeleteAclsResponse::default();
    response.filter_results = results;
    response
}
