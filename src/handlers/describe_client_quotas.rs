//! DescribeClientQuotas (48): the quotas of the entities a filter matches. Needs
//! DESCRIBE_CONFIGS on the cluster.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};

use super::{allowed, str_bytes, RequestContext, CLUSTER};
use crate::broker::Broker;
use crate::quota::Entity;
use crate::security::acl::{Operation, ResourceType};

/// One filter component: an entity type, and EXACT (0, a name; none = the
/// default), DEFAULT (1) or SPECIFIED (2, any name but the default).
fn matches(entity: &Entity, entity_type: &str, match_type: i8, name: Option<&str>) -> bool {
    let found = entity.components().into_iter().find(|(t, _)| *t == entity_type);
    match (found, match_type) {
        (Some((_, n)), 0) => n == name,
        (Some((_, n)), 1) => n.is_none(),
        (Some((_, n)), 2) => n.is_some(),
        _ => false,
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let mut response = DescribeClientQuotasResponse::default();
    if !allowed(broker, ctx, Operation::DescribeConfigs, ResourceType::Cluster, CLUSTER) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        response.entries = None;
        return response;
    }
    let known = ["user", "client-id", "ip"];
    if let Some(c) = request.components.iter().find(|c| !known.contains(&c.entity_type.as_str()) || c.match_type > 2) {
        response.error_code = ResponseError::InvalidRequest.code();
        response.error_message = Some(str_bytes(&format!("Invalid entity filter {}", c.entity_type.as_str())));
        response.entries = None;
        return response;
    }
    let found = broker.quotas.describe(|entity| {
        let all = request
            .components
            .iter()
            .all(|c| matches(entity, &c.entity_type, c.match_type, c._match.as_deref()));
        // strict: the entity has exactly the filtered types.
        all && (!request.strict || entity.components().len() == request.components.len())
    });
    response.entries = Some(
        found
            .into_iter()
            .map(|(entity, quotas)| {
                let mut e = EntryData::default();
                e.entity = entity
                    .components()
                    .into_iter()
                    .map(|(t, n)| {
                        let mut d = EntityData::default();
                        d.entity_type = str_bytes(t);
                        d.entity_name = n.map(str_bytes);
                        d
                    })
                    .collect();
                e.values = quotas
                    .into_iter()
                    .map(|(k, v)| {
                        let mut d = ValueData::default();
                        d.key = str_bytes(&k);
                        d.value = v;
                        d
                    })
                    .collect();
                e
            })
            .collect(),
    );
    response
}
