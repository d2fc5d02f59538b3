//! DescribeConfigs (32): a topic's configs with their sources and synonyms, or the
//! broker's defaults (this broker's, or the cluster-wide dynamic ones).

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::Operation;
use crate::cluster::dynamic_config::Scope;
use crate::error::{Error, Result};
use crate::log::config::{describe_broker, describe_topic, ConfigEntry};

pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;

/// The configs of one resource.
pub fn entries(broker: &Broker, resource_type: i8, name: &str) -> Result<Vec<ConfigEntry>> {
    match resource_type {
        TOPIC => {
            let unknown = || Error::UnknownTopicOrPartition {
                topic: name.to_string(),
                partition: -1,
            };
            // In a cluster, the topic's configs as the cluster has them.
            let overrides = match broker.metadata.image() {
                Some(image) => match image.topic(name) {
                    Some(t) => t.configs,
                    None => broker.logs.topic(name).ok_or_else(unknown)?.overrides(),
                },
                None => broker.logs.topic(name).ok_or_else(unknown)?.overrides(),
            };
            Ok(describe_topic(
                &broker.logs.base_config(),
                &broker.dynamic_config.layers(),
                &overrides,
            ))
        }
        BROKER => {
            let scope = super::alter_configs::broker_scope(broker, name)?;
            Ok(describe_broker(
                &broker.logs.base_config(),
                &broker.dynamic_config.layers(),
                scope == Scope::ClusterDefault,
            ))
        }
        other => Err(Error::InvalidRequest(format!("resource type {other} is not supported"))),
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let version = ctx.api_version;
    let mut response = DescribeConfigsResponse::default();
    for resource in request.resources {
        let mut r = DescribeConfigsResult::default();
        r.resource_type = resource.resource_type;
        let name = resource.resource_name.as_str();
        let found = super::may_configure(broker, ctx, Operation::DescribeConfigs, resource.resource_type, name)
            .and_then(|()| entries(broker, resource.resource_type, name));
        match found {
            Ok(all) => {
                let wanted = |name: &str| match &resource.configuration_keys {
                    Some(keys) if !keys.is_empty() => keys.iter().any(|k| k.as_str() == name),
                    _ => true,
                };
                r.configs = all
                    .into_iter()
                    .filter(|e| wanted(&e.name))
                    .map(|e| {
                        let mut c = DescribeConfigsResourceResult::default();
                        c.read_only = e.read_only;
                        c.config_source = e.source as i8;
                        if request.include_synonyms {
                            c.synonyms = e
                                .synonyms
                                .iter()
                                .map(|(n, v, s)| {
                                    let mut syn = DescribeConfigsSynonym::default();
                                    syn.name = StrBytes::from_string(n.clone());
                                    syn.value = Some(StrBytes::from_string(v.clone()));
                                    syn.source = *s as i8;
                                    syn
                                })
                                .collect();
                        }
                        if version >= 3 {
                            c.config_type = e.kind as i8;
                            if request.include_documentation {
                                c.documentation = Some(StrBytes::from_static_str(e.doc));
                            }
                        }
                        c.name = StrBytes::from_string(e.name);
                        c.value = Some(StrBytes::from_string(e.value));
                        c
                    })
                    .collect();
            }
            Err(e) => {
                (r.error_code, r.error_message) = super::error_message(&e);
            }
        }
        r.resource_name = resource.resource_name;
        response.results.push(r);
    }
    response
}
