//! ApiVersions (18): the version table, generated from the registry.

use std::sync::Arc;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use super::{RequestContext, APIS};
use crate::broker::Broker;

/// The full table with the given error code.
pub fn table(error_code: i16) -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.error_code = error_code;
    response.api_keys = APIS
        .iter()
        .map(|s| {
            let mut v = ApiVersion::default();
            v.api_key = s.key as i16;
            v.min_version = s.min;
            v.max_version = s.max;
            v
        })
        .collect();
    response
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: ApiVersionsRequest) -> ApiVersionsResponse {
    tracing::debug!(
        software = %request.client_software_name.as_str(),
        software_version = %request.client_software_version.as_str(),
        version = ctx.api_version,
        "api versions"
    );
    let mut response = table(0);
    // Without the consumer protocol (group.coordinator.rebalance.protocols=classic)
    // its APIs are not offered, as in Kafka: clients fall back to classic.
    if !broker.groups.consumer_config().enabled {
        let kip848 = [ApiKey::ConsumerGroupHeartbeat as i16, ApiKey::ConsumerGroupDescribe as i16];
        response.api_keys.retain(|k| !kip848.contains(&k.api_key));
    }
    response
}
