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
use crate::security::acl::Operation;
use crate::cluster::controller::ControllerRequest;
use crate::cluster::dynamic_config::Scope;
use crate::error::{Error, Result};
use crate::log::manager::ConfigChange;

/// Which dynamic layer a broker resource name means: this broker's id, or the
/// empty name for the cluster-wide default.
pub(super) fn broker_scope(broker: &Broker, name: &str) -> Result<Scope> {
    match name {
        "" => Ok(Scope::ClusterDefault),
        n if n == broker.node_id().to_string() => Ok(Scope::Broker),
        n => Err(Error::InvalidRequest(format!("this is broker {}, not {n}", broker.node_id()))),
    }
}

/// Validate and (unless `validate_only`) apply what `change` makes of a
/// resource's settings: a topic's override set or a broker layer. The change is
/// computed under the lock its resource's changes take, so none is lost.
/// In a cluster, a topic's change is the controller's to make: what to ask it
/// is returned, for [`carry_out`].
pub(super) fn apply(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    change: ConfigChange<'_>,
    validate_only: bool,
) -> Result<Option<ControllerRequest>> {
    match resource_type {
        TOPIC if broker.metadata.is_cluster() => {
            // The cluster's configs of the topic, changed by the controller;
            // every broker holding a replica applies them.
            let unknown = || Error::UnknownTopicOrPartition {
                topic: name.to_string(),
                partition: -1,
            };
            let topic = broker.metadata.image().and_then(|i| i.topic(name)).ok_or_else(unknown)?;
            let effective = broker
                .logs
                .base_config()
                .with_overrides(&topic.configs)
                .map_err(Error::InvalidConfig)?;
            let configs = broker.logs.validate_overrides(&change(&topic.configs, &effective)?)?;
            Ok((!validate_only).then(|| ControllerRequest::SetTopicConfigs {
                name: name.to_string(),
                configs,
            }))
        }
        TOPIC => broker.logs.update_overrides(name, change, validate_only).map(|_| None),
        BROKER => broker
            .alter_broker_configs(broker_scope(broker, name)?, change, validate_only)
            .map(|_| None),
        other => Err(Error::InvalidRequest(format!("resource type {other} is not supported"))),
    }
}

/// Have the controller make a change [`apply`] left to it.
pub(super) async fn carry_out(broker: &Broker, applied: Result<Option<ControllerRequest>>) -> Result<()> {
    match applied? {
        Some(request) => broker.controller.submit(request).await.map(|_| ()),
        None => Ok(()),
    }
}

/// Kafka refuses a request naming one config twice.
pub(super) fn no_duplicates<'a>(names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(Error::InvalidRequest(format!("Error due to duplicate config keys: {name}")));
        }
    }
    Ok(())
}

pub(super) fn error_fields(r: Result<()>) -> (i16, Option<StrBytes>) {
    match r {
        Ok(()) => (0, None),
        Err(e) => super::error_message(&e),
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let topics_only = request.resources.iter().all(|r| r.resource_type == TOPIC);
    if topics_only && !super::forward::here(broker, ctx) {
        if let Some(answer) = super::forward::to_controller(broker, ctx, ctx.api_version, &request).await {
            return answer;
        }
    }
    let mut response = AlterConfigsResponse::default();
    for resource in request.resources {
        // Non-incremental: the given configs become the whole set.
        let overrides: BTreeMap<String, String> = resource
            .configs
            .iter()
            .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
            .collect();
        let name = resource.resource_name.as_str();
        let result = super::may_configure(broker, ctx, Operation::AlterConfigs, resource.resource_type, name)
            .and_then(|()| no_duplicates(resource.configs.iter().map(|c| c.name.as_str())))
            .and_then(|()| {
            let change: ConfigChange<'_> = Box::new(move |_, _| Ok(overrides));
            apply(broker, resource.resource_type, name, change, request.validate_only)
        });
        let result = carry_out(broker, result).await;
        let mut r = AlterConfigsResourceResponse::default();
        (r.error_code, r.error_message) = error_fields(result);
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name;
        response.responses.push(r);
    }
    response
}
