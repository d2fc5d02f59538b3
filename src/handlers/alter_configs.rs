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

/// What is left to do of a config change once [`apply`] has checked it.
pub(super) enum Later<'a> {
    Nothing,
    /// A cluster's topic configs: the controller's to write.
    Controller(ControllerRequest),
    /// A cluster's default broker configs: the shared document in etcd.
    ClusterDefault(ConfigChange<'a>, bool),
}

/// Validate and (unless `validate_only`) apply what `change` makes of a
/// resource's settings: a topic's override set or a broker layer. The change is
/// computed under the lock its resource's changes take, so none is lost.
/// In a cluster, a topic's change is the controller's to make and the
/// brokers' default is changed in etcd: what is left is returned, for
/// [`carry_out`].
pub(super) fn apply<'a>(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    change: ConfigChange<'a>,
    validate_only: bool,
) -> Result<Later<'a>> {
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
            Ok(match validate_only {
                true => Later::Nothing,
                false => Later::Controller(ControllerRequest::SetTopicConfigs {
                    name: name.to_string(),
                    configs,
                }),
            })
        }
        TOPIC => broker
            .logs
            .update_overrides(name, change, validate_only)
            .map(|_| Later::Nothing),
        BROKER => match broker_scope(broker, name)? {
            Scope::ClusterDefault if broker.shares_state() => Ok(Later::ClusterDefault(change, validate_only)),
            scope => broker
                .alter_broker_configs(scope, change, validate_only)
                .map(|_| Later::Nothing),
        },
        other => Err(Error::InvalidRequest(format!("resource type {other} is not supported"))),
    }
}

/// Make the change [`apply`] left: the controller's, or etcd's.
pub(super) async fn carry_out(broker: &Broker, applied: Result<Later<'_>>) -> Result<()> {
    match applied? {
        Later::Nothing => Ok(()),
        Later::Controller(request) => broker.controller.submit(request).await.map(|_| ()),
        Later::ClusterDefault(change, validate_only) => {
            let dynamic = &broker.dynamic_config;
            let default = |document: Option<&[u8]>| Ok((dynamic.alter_default_in(document, &change, validate_only)?, ()));
            broker
                .change_shared(crate::cluster::documents::BROKER_DEFAULT_CONFIGS, default)
                .await
        }
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
        if let Some(answer) = super::forward::to_controller(broker, ctx.api_version, &request).await {
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
            let change: ConfigChange<'_> = Box::new(move |_, _| Ok(overrides.clone()));
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
