//! `strom configs describe|alter` (like kafka-configs): the configs of a topic,
//! of a broker, or the cluster-wide broker defaults, over DescribeConfigs and
//! IncrementalAlterConfigs.

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::*;
use serde_json::json;

use super::{print_table, s, Output};
use crate::client::{Bootstrap, Client, ClientError};

/// Whose configs.
#[derive(Debug, Clone)]
pub enum Target {
    Topic(String),
    Broker(i32),
    /// The dynamic defaults of every broker (the empty broker resource name).
    BrokerDefaults,
}

impl Target {
    fn resource(&self) -> (i8, String) {
        match self {
            Target::Topic(t) => (2, t.clone()),
            Target::Broker(id) => (4, id.to_string()),
            Target::BrokerDefaults => (4, String::new()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Topic(t) => format!("topic {t}"),
            Target::Broker(id) => format!("broker {id}"),
            Target::BrokerDefaults => "the broker defaults".into(),
        }
    }
}

/// Kafka's names of DescribeConfigs' config sources.
fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        _ => "UNKNOWN",
    }
}

/// One config as DescribeConfigs gives it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigEntry {
    pub name: String,
    /// "(sensitive)" for a sensitive one.
    pub value: String,
    pub source: &'static str,
    pub read_only: bool,
}

/// The configs of `target`: those set anywhere (not Kafka's defaults), or with
/// `all`, every one; by name.
pub async fn entries(client: &mut Client, target: &Target, all: bool) -> Result<Vec<ConfigEntry>, ClientError> {
    let (resource_type, name) = target.resource();
    let mut res = DescribeConfigsResource::default();
    res.resource_type = resource_type;
    res.resource_name = s(&name);
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![res];
    let r = client.call(1, &req).await?;
    let result = r
        .results
        .first()
        .ok_or_else(|| ClientError::Protocol("no resource in the answer".into()))?;
    ClientError::check(result.error_code, result.error_message.as_deref())?;
    let mut rows: Vec<ConfigEntry> = result
        .configs
        .iter()
        .filter(|c| all || c.config_source != 5)
        .map(|c| ConfigEntry {
            name: c.name.to_string(),
            value: match c.is_sensitive {
                true => "(sensitive)".to_string(),
                false => c.value.as_deref().unwrap_or("").to_string(),
            },
            source: source_name(c.config_source),
            read_only: c.read_only,
        })
        .collect();
    rows.sort();
    Ok(rows)
}

/// The configs of `target`: those set anywhere (not Kafka's defaults), or with
/// `all`, every one.
pub async fn describe(bootstrap: &Bootstrap, target: &Target, all: bool, out: Output) -> Result<(), ClientError> {
    let mut client = match target {
        Target::Broker(id) => crate::client::route::broker(bootstrap, *id).await?,
        _ => Client::connect(bootstrap).await?,
    };
    let rows = entries(&mut client, target, all).await?;
    if out.json {
        let v: Vec<_> = rows
            .iter()
            .map(|c| json!({"name": c.name, "value": c.value, "source": c.source, "readOnly": c.read_only}))
            .collect();
        out.print_json(json!(v));
        return Ok(());
    }
    println!("Configs of {}:", target.describe());
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|c| {
            let ro = if c.read_only { "read-only" } else { "" };
            vec![c.name, c.value, c.source.to_string(), ro.to_string()]
        })
        .collect();
    print_table(&["NAME", "VALUE", "SOURCE", ""], &rows);
    Ok(())
}

/// SET each of `set` and DELETE each of `delete` on one resource, in one
/// IncrementalAlterConfigs request.
pub async fn incremental_alter(
    client: &mut Client,
    resource_type: i8,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
) -> Result<(), ClientError> {
    let op = |k: &str, op: i8, v: Option<&str>| {
        let mut c = AlterableConfig::default();
        c.name = s(k);
        c.config_operation = op;
        c.value = v.map(s);
        c
    };
    let mut res = AlterConfigsResource::default();
    res.resource_type = resource_type;
    res.resource_name = s(name);
    res.configs = set
        .iter()
        .map(|(k, v)| op(k, 0, Some(v)))
        .chain(delete.iter().map(|k| op(k, 1, None)))
        .collect();
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![res];
    let r = client.call(1, &req).await?;
    let result = r
        .responses
        .first()
        .ok_or_else(|| ClientError::Protocol("no resource in the answer".into()))?;
    ClientError::check(result.error_code, result.error_message.as_deref())
}

/// Set and delete configs of `target`, one IncrementalAlterConfigs request.
pub async fn alter(
    bootstrap: &Bootstrap,
    target: &Target,
    set: &[(String, String)],
    delete: &[String],
    out: Output,
) -> Result<(), ClientError> {
    if set.is_empty() && delete.is_empty() {
        return Err(ClientError::Usage(
            "nothing to alter: give --set KEY=VALUE or --delete KEY".into(),
        ));
    }
    // A topic's configs are the controller's to change, a broker's its own.
    let mut client = match target {
        Target::Topic(_) => crate::client::route::controller(bootstrap).await?,
        Target::Broker(id) => crate::client::route::broker(bootstrap, *id).await?,
        Target::BrokerDefaults => Client::connect(bootstrap).await?,
    };
    let (resource_type, name) = target.resource();
    incremental_alter(&mut client, resource_type, &name, set, delete).await?;
    out.done(
        &format!("Altered the configs of {}.", target.describe()),
        json!({"resourceType": resource_type, "name": name, "altered": true}),
    );
    Ok(())
}
