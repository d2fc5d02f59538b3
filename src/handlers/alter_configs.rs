//! AlterConfigs (33): replace a topic's whole set of config overrides (the
//! incremental form is [`super::incremental_alter_configs`]). Broker configs are
//! static here (flags and server.properties).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::{
    alter_configs_response::AlterConfigsResourceResponse, AlterConfigsRequest, AlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::describe_configs::{BROKER, TOPIC};
use super::RequestContext;
use crate::broker::Broker;
use crate::error::{Error, Result};

/// Validate and (unless `validate_only`) apply a topic's new override set.
pub(super) fn apply(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    overrides: Result<BTreeMap<String, String>>,
    validate_only: bool,
) -> Result<()> {
    match resource_type {
        TOPIC => {
            if broker.logs.topic(name).is_none() {
                return Err(Error::UnknownTopicOrPartition {
                    topic: name.to_string(),
                    partition: -1,
                });
            }
            let overrides = overrides?;
            if validate_only {
                broker.logs.validate_overrides(&overrides).map(|_| ())
            } else {
                broker.logs.set_overrides(name, &overrides)
            }
        }
        BROKER => Err(Error::InvalidConfig(
            "broker configs are static in strom: set them with flags or in server.properties".into(),
        )),
        other => Err(Error::InvalidRequest(format!("resource type {other} is not supported"))),
    }
}

pub(super) fn error_fields(r: Result<()>) -> (i16, Option<StrBytes>) {
    match r {
        Ok(()) => (0, None),
        Err(e) => super::error_message(&e),
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut response = AlterConfigsResponse::default();
    for resource in request.resources {
        // Non-incremental: the given configs become the whole override set.
        let overrides: BTreeMap<String, String> = resource
            .configs
            .iter()
            .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
            .collect();
        let result = apply(
            broker,
            resource.resource_type,
            resource.resource_name.as_str(),
            Ok(overrides),
            request.validate_only,
        );
        let mut r = AlterConfigsResourceResponse::default();
        (r.error_code, r.error_message) = error_fields(result);
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name;
        response.responses.push(r);
    }
    response
}
