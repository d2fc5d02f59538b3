//! CreateAcls (30): add ACLs. Needs ALTER on the cluster; without an
//! authorizer configured, SECURITY_DISABLED as Kafka answers.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};

use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::cluster::documents;
use crate::security::acl::Authorizer;

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: CreateAclsRequest) -> CreateAclsResponse {
    let refusal = super::acls::refusal(broker, ctx);
    let mut results = Vec::new();
    let mut valid = Vec::new();
    for c in &request.creations {
        let mut r = AclCreationResult::default();
        match refusal {
            Some((code, message)) => {
                r.error_code = code.code();
                r.error_message = Some(str_bytes(message));
            }
            None => match super::acls::binding(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type,
            ) {
                Ok(acl) => valid.push((results.len(), acl)),
                Err(message) => {
                    r.error_code = ResponseError::InvalidRequest.code();
                    r.error_message = Some(str_bytes(&message));
                }
            },
        }
        results.push(r);
    }
    if !valid.is_empty() {
        let acls: Vec<_> = valid.iter().map(|(_, acl)| acl.clone()).collect();
        let local = {
            let acls = acls.clone();
            move |b: &Broker| b.authorizer.create(&acls)
        };
        let in_cluster = |document: Option<&[u8]>| Ok((Some(Authorizer::create_in(document, &acls)?), ()));
        let saved = super::change_shared(broker, documents::ACLS, local, in_cluster).await;
        if let Err((code, message)) = saved {
            tracing::error!(error = %message, "cannot save ACLs");
            for (i, _) in &valid {
                results[*i].error_code = code;
                results[*i].error_message = Some(str_bytes(&message));
            }
        }
    }
    let mut response = CreateAclsResponse::default();
    response.results = results;
    response
}
