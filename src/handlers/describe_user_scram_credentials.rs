//! DescribeUserScramCredentials (50): each user's SCRAM mechanisms and
//! iterations (never salts or keys); every user's when none is named.

use std::sync::Arc;

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse};

use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let named: Option<Vec<String>> = request
        .users
        .filter(|u| !u.is_empty())
        .map(|users| users.into_iter().map(|u| u.name.to_string()).collect());
    let mut response = DescribeUserScramCredentialsResponse::default();
    if !super::allowed(broker, ctx, Operation::Describe, ResourceType::Cluster, super::CLUSTER) {
        response.error_code = kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    for (user, result) in broker.credentials.describe(named.as_deref()) {
        let mut r = DescribeUserScramCredentialsResult::default();
        r.user = str_bytes(&user);
        match result {
            Ok(creds) => {
                r.credential_infos = creds
                    .into_iter()
                    .map(|(mechanism, iterations)| {
                        let mut info = CredentialInfo::default();
                        info.mechanism = mechanism.code();
                        info.iterations = iterations;
                        info
                    })
                    .collect();
            }
            Err(e) => (r.error_code, r.error_message) = super::alter_user_scram_credentials::error(e),
        }
        response.results.push(r);
    }
    response
}
