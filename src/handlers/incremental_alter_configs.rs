//! IncrementalAlterConfigs (44): change a topic's config overrides, or a broker
//! layer's dynamic configs, one at a time: SET, DELETE, APPEND to or SUBTRACT
//! from a list.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResult;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::alter_configs::{apply, carry_out, error_fields, no_duplicates};
use super::describe_configs::{BROKER, TOPIC};
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::Operation;
use crate::error::{Error, Result};
use crate::log::config::{broker_config, topic_config, ConfigDef, ConfigType, LogConfig};
use crate::log::manager::ConfigChange;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// A resource's settings after incremental operations on `current` (a topic's
/// overrides, or a broker layer's settings); `effective` gives the values lists
/// are appended to.
fn incremental(
    resource_type: i8,
    current: &BTreeMap<String, String>,
    effective: &LogConfig,
    ops: &[(String, i8, Option<String>)],
) -> Result<BTreeMap<String, String>> {
    let lookup: fn(&str) -> Option<&'static ConfigDef> = match resource_type {
        BROKER => broker_config,
        _ => topic_config,
    };
    let mut next = current.clone();
    for (name, op, value) in ops {
        match (*op, value) {
            (SET, Some(v)) => {
                next.insert(name.clone(), v.clone());
            }
            (DELETE, _) => {
                next.remove(name);
            }
            (APPEND | SUBTRACT, Some(v)) => {
                let def = lookup(name).ok_or_else(|| unknown(resource_type, name))?;
                if def.kind != ConfigType::List {
                    return Err(Error::InvalidConfig(format!(
                        "Config value append/subtract is not allowed for config {name}: it is not a list"
                    )));
                }
                let current = next.get(name).cloned().unwrap_or_else(|| def.value(effective));
                let mut items: Vec<String> = current
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if *op == APPEND && !items.iter().any(|i| i == item) {
                        items.push(item.to_string());
                    }
                    if *op == SUBTRACT {
                        items.retain(|i| i != item);
                    }
                }
                next.insert(name.clone(), items.join(","));
            }
            (SET | APPEND | SUBTRACT, None) => {
                return Err(Error::InvalidConfig(format!("Null value not supported for: {name}")))
            }
            (other, _) => return Err(Error::InvalidRequest(format!("Unknown operation type {other}"))),
        }
    }
    Ok(next)
}

fn unknown(resource_type: i8, name: &str) -> Error {
    match resource_type {
        BROKER => Error::InvalidConfig(format!("Cannot update these configs dynamically: Set({name})")),
        _ => Error::InvalidConfig(format!("Unknown topic config name: {name}")),
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let topics_only = request.resources.iter().all(|r| r.resource_type == TOPIC);
    if topics_only && !super::forward::here(broker, ctx) {
        if let Some(answer) = super::forward::to_controller(broker, ctx.api_version, &request).await {
            return answer;
        }
    }
    let mut response = IncrementalAlterConfigsResponse::default();
    for resource in request.resources {
        let ops: Vec<(String, i8, Option<String>)> = resource
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.config_operation,
                    c.value.as_ref().map(|v| v.to_string()),
                )
            })
            .collect();
        let name = resource.resource_name.as_str();
        let resource_type = resource.resource_type;
        let result = super::may_configure(broker, ctx, Operation::AlterConfigs, resource_type, name)
            .and_then(|()| no_duplicates(ops.iter().map(|o| o.0.as_str())))
            .and_then(|()| {
            let change: ConfigChange<'_> =
                Box::new(|current, effective| incremental(resource_type, current, effective, &ops));
            apply(broker, resource_type, name, change, request.validate_only)
        });
        let result = carry_out(broker, result).await;
        let mut r = IncrementalResult::default();
        (r.error_code, r.error_message) = error_fields(result);
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name;
        response.responses.push(r);
    }
    response
}
