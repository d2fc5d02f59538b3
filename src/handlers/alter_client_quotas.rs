//! AlterClientQuotas (49): set or remove quota values of user, client-id and ip
//! entities (checked as Kafka does, saved before the answer). Needs
//! ALTER_CONFIGS on the cluster.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};

use super::{allowed, str_bytes, RequestContext, CLUSTER};
use crate::broker::Broker;
use crate::cluster::documents;
use crate::quota::{Entity, Name, QuotaManager};
use crate::security::acl::{Operation, ResourceType};

/// The entity of a request entry; Err for an unknown or repeated type.
fn entity(components: &[(String, Option<String>)]) -> Result<Entity, String> {
    let mut e = Entity::default();
    for (t, n) in components {
        let name = n.clone().map_or(Name::Default, Name::Named);
        let slot = match t.as_str() {
            "user" => &mut e.user,
            "client-id" => &mut e.client_id,
            "ip" => &mut e.ip,
            other => return Err(format!("Unexpected quota entity type {other}")),
        };
        if slot.replace(name).is_some() {
            return Err(format!("Duplicate quota entity type {t}"));
        }
    }
    Ok(e)
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let may = allowed(broker, ctx, Operation::AlterConfigs, ResourceType::Cluster, CLUSTER);
    let mut response = AlterClientQuotasResponse::default();
    let mut changes = Vec::new();
    for entry in &request.entries {
        let components: Vec<(String, Option<String>)> = entry
            .entity
            .iter()
            .map(|e| (e.entity_type.to_string(), e.entity_name.as_ref().map(|n| n.to_string())))
            .collect();
        let mut r = EntryData::default();
        r.entity = entry
            .entity
            .iter()
            .map(|e| {
                let mut d = EntityData::default();
                d.entity_type = e.entity_type.clone();
                d.entity_name = e.entity_name.clone();
                d
            })
            .collect();
        match (may, entity(&components)) {
            (false, _) => r.error_code = ResponseError::ClusterAuthorizationFailed.code(),
            (true, Err(message)) => {
                r.error_code = ResponseError::InvalidRequest.code();
                r.error_message = Some(str_bytes(&message));
            }
            (true, Ok(e)) => {
                let ops = entry
                    .ops
                    .iter()
                    .map(|op| (op.key.to_string(), (!op.remove).then_some(op.value)))
                    .collect();
                changes.push((response.entries.len(), (e, ops)));
            }
        }
        response.entries.push(r);
    }
    if changes.is_empty() {
        return response;
    }
    let (at, changes): (Vec<usize>, Vec<_>) = changes.into_iter().unzip();
    let validate_only = request.validate_only;
    let local = {
        let changes = changes.clone();
        move |b: &Broker| b.quotas.alter(changes, validate_only)
    };
    let in_cluster = |document: Option<&[u8]>| QuotaManager::alter_in(document, &changes, validate_only);
    match super::change_shared(broker, documents::CLIENT_QUOTAS, local, in_cluster).await {
        Ok(results) => {
            for (i, result) in at.into_iter().zip(results) {
                if let Err(message) = result {
                    response.entries[i].error_code = ResponseError::InvalidRequest.code();
                    response.entries[i].error_message = Some(str_bytes(&message));
                }
            }
        }
        Err((code, message)) => {
            tracing::error!(error = %message, "cannot save client quotas");
            for i in at {
                response.entries[i].error_code = code;
                response.entries[i].error_message = Some(str_bytes(&message));
            }
        }
    }
    response
}
