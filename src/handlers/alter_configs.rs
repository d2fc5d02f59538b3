//! AlterConfigs (33): replace a topic's whole set of config overrides, or the
//! dynamic configs of this broker (resource name: its id) or of every broker
//! (empty name). The incremental form is [`super::incremental_alter_configs`].

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::{
    alter_configs_response::AlterConfigsResourceResponse, AlterConfigsRequest, AlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::describe_configs::{BROKER, TOPIC};
use super::RequestContext;
use crate::broker::Broker;
use crate::cluster::dynamic_config::Scope;
use crate::error::{Error, Result};

/// Which dynamic layer a broker resource name means: this broker's id, or the
/// empty name for the cluster-wide default.
pub(super) fn broker_scope(broker: &Broker, name: &str) -> Result<Scope> {
    match name {
        "" => Ok(Scope::ClusterDefault),
        n if n == broker.node_id().to_string() => Ok(Scope::Broker),
        n => Err(Error::InvalidRequest(format!("this is broker {}, not {n}", broker.node_id()))),
    }
}

/// Validate and (unless `validate_only`) apply a resource's new settings: a
/// topic's override set or a broker layer.
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
        BROKER => broker.alter_broker_configs(broker_scope(broker, name)?, overrides?, validate_only),
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
