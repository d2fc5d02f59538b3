//! AlterUserScramCredentials (51): create, replace or delete users' SCRAM
//! credentials. The client salts and iterates the password; the broker keeps
//! only what checks a login (see `security::scram`).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::cluster::documents;
use crate::security::credentials::{Alteration, CredentialError, CredentialStore};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    if !super::allowed(broker, ctx, Operation::Alter, ResourceType::Cluster, super::CLUSTER) {
        let mut response = AlterUserScramCredentialsResponse::default();
        let names = request.deletions.iter().map(|d| &d.name).chain(request.upsertions.iter().map(|u| &u.name));
        let mut seen = std::collections::HashSet::new();
        for name in names.filter(|n| seen.insert(n.to_string())) {
            let mut r = AlterUserScramCredentialsResult::default();
            r.user = name.clone();
            r.error_code = ResponseError::ClusterAuthorizationFailed.code();
            response.results.push(r);
        }
        return response;
    }
    let mut changes: Vec<Alteration> = request
        .deletions
        .into_iter()
        .map(|d| Alteration::Delete {
            user: d.name.to_string(),
            mechanism: d.mechanism,
        })
        .collect();
    changes.extend(request.upsertions.into_iter().map(|u| Alteration::Upsert {
        user: u.name.to_string(),
        mechanism: u.mechanism,
        iterations: u.iterations,
        salt: u.salt.to_vec(),
        salted_password: u.salted_password.to_vec(),
    }));
    let users: Vec<String> = changes
        .iter()
        .map(|c| match c {
            Alteration::Delete { user, .. } | Alteration::Upsert { user, .. } => user.clone(),
        })
        .collect();
    // The store is written and synced (or in a cluster, written to etcd)
    // before the answer.
    let local = {
        let changes = changes.clone();
        move |b: &Broker| b.credentials.alter(changes)
    };
    let in_cluster = |document: Option<&[u8]>| CredentialStore::alter_in(document, &changes);
    let outcome = super::change_shared(broker, documents::SCRAM_CREDENTIALS, local, in_cluster).await;
    let mut response = AlterUserScramCredentialsResponse::default();
    match outcome {
        Ok(results) => {
            for (user, result) in results {
                let mut r = AlterUserScramCredentialsResult::default();
                r.user = str_bytes(&user);
                if let Err(e) = result {
                    (r.error_code, r.error_message) = error(e);
                }
                response.results.push(r);
            }
        }
        Err((code, message)) => {
            tracing::error!(error = %message, "cannot save SCRAM credentials");
            let mut seen = std::collections::HashSet::new();
            for user in users.into_iter().filter(|u| seen.insert(u.clone())) {
                let mut r = AlterUserScramCredentialsResult::default();
                r.user = str_bytes(&user);
                r.error_code = code;
                r.error_message = Some(str_bytes(&message));
                response.results.push(r);
            }
        }
    }
    response
}

/// A credential error's code and message.
pub fn error(e: CredentialError) -> (i16, Option<StrBytes>) {
    let (code, message) = match e {
        CredentialError::UnacceptableCredential(m) => (ResponseError::UnacceptableCredential, m),
        CredentialError::UnsupportedSaslMechanism(m) => (ResponseError::UnsupportedSaslMechanism, m),
        CredentialError::ResourceNotFound(m) => (ResponseError::ResourceNotFound, m),
        CredentialError::DuplicateResource(m) => (ResponseError::DuplicateResource, m),
    };
    (code.code(), Some(str_bytes(&message)))
}
