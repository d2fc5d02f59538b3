//! IncrementalAlterConfigs (44): change a topic's config overrides one at a
//! time: SET, DELETE, APPEND to or SUBTRACT from a list.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResult;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::alter_configs::{apply, error_fields};
use super::RequestContext;
use crate::broker::Broker;
use crate::error::{Error, Result};
use crate::log::config::{topic_config, ConfigType};

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// A topic's overrides after incremental operations.
fn incremental(broker: &Broker, topic: &str, ops: &[(String, i8, Option<String>)]) -> Result<BTreeMap<String, String>> {
    let current = broker.logs.topic(topic).map(|t| t.overrides()).unwrap_or_default();
    let effective = broker
        .logs
        .base_config()
        .with_overrides(&current)
        .map_err(Error::InvalidConfig)?;
    let mut next = current;
    for (name, op, value) in ops {
        let def = topic_config(name).ok_or_else(|| Error::InvalidConfig(format!("unknown topic config {name:?}")))?;
        let list = |m: &BTreeMap<String, String>| -> Vec<String> {
            let v = m.get(name).cloned().unwrap_or_else(|| def.value(&effective));
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        match (*op, value) {
            (SET, Some(v)) => {
                next.insert(name.clone(), v.clone());
            }
            (DELETE, _) => {
                next.remove(name);
            }
            (APPEND | SUBTRACT, Some(v)) if def.kind == ConfigType::List => {
                let mut items = list(&next);
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
            (APPEND | SUBTRACT, _) => {
                return Err(Error::InvalidConfig(format!(
                    "{name} is not a list: APPEND and SUBTRACT do not apply"
                )))
            }
            (other, _) => return Err(Error::InvalidConfig(format!("operation {other} needs a value"))),
        }
    }
    Ok(next)
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
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
        let next = incremental(broker, name, &ops);
        let result = apply(broker, resource.resource_type, name, next, request.validate_only);
        let mut r = IncrementalResult::default();
        (r.error_code, r.error_message) = error_fields(result);
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name;
        response.responses.push(r);
    }
    response
}
