//! CreateTopics (19): name, partition count, replication factor (one broker: at
//! most 1), configs, validate_only; per-topic errors as Kafka's.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::error::{Error, Result};
use crate::log::config::describe_topic;
use crate::cluster::controller::{ControllerRequest, NewTopic};
use crate::log::manager::{is_internal_topic, validate_topic_name};
use crate::util::clock::now_ms;

/// Partition count, replication factor and validated configs.
fn plan(broker: &Broker, ctx: &RequestContext, t: &CreatableTopic) -> Result<(i32, i16, BTreeMap<String, String>)> {
    // A broker may ask the controller for an internal topic (made with the
    // controller's own settings); a client may not.
    let for_a_broker = is_internal_topic(t.name.as_str()) && super::forward::is_forwarded(ctx);
    if is_internal_topic(t.name.as_str()) && !for_a_broker {
        return Err(Error::InvalidRequest(format!(
            "Creation of internal topic {} is prohibited.",
            t.name.as_str()
        )));
    }
    let cluster = broker.metadata.is_cluster();
    let partitions = if !t.assignments.is_empty() {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err(Error::InvalidRequest(
                "both manual assignments and partition count or replication factor given".into(),
            ));
        }
        // Kafka's rule: the partitions named are 0..n, each once.
        let mut indexes: Vec<i32> = t.assignments.iter().map(|a| a.partition_index).collect();
        indexes.sort_unstable();
        if indexes.iter().copied().ne(0..t.assignments.len() as i32) {
            return Err(Error::InvalidReplicaAssignment(
                "partitions should be a consecutive 0-based integer sequence".into(),
            ));
        }
        let node = broker.node_id();
        // In a cluster the controller checks the brokers named.
        let elsewhere = |a: &CreatableReplicaAssignment| a.broker_ids.iter().any(|b| b.0 != node);
        if !cluster && t.assignments.iter().any(|a| elsewhere(a) || a.broker_ids.len() != 1) {
            return Err(Error::InvalidReplicationFactor(t.assignments[0].broker_ids.len() as i16));
        }
        t.assignments.len() as i32
    } else if t.num_partitions == -1 {
        broker.config.num_partitions
    } else {
        t.num_partitions
    };
    let replication = match (t.replication_factor, cluster) {
        (-1, true) => broker.config.cluster.default_replication_factor,
        (-1 | 1, _) => 1,
        (r, true) if r > 1 => r,
        (r, _) => return Err(Error::InvalidReplicationFactor(r)),
    };
    if !cluster {
        broker.logs.validate_new_topic(t.name.as_str(), partitions)?;
    } else {
        validate_topic_name(t.name.as_str())?;
        if partitions < 1 {
            return Err(Error::InvalidPartitions(partitions));
        }
        if broker.metadata.topic(t.name.as_str()).is_some() {
            return Err(Error::TopicAlreadyExists(t.name.to_string()));
        }
    }
    // A null value means "the default": leave it out.
    let configs: BTreeMap<String, String> = t
        .configs
        .iter()
        .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
        .collect();
    let configs = broker.logs.validate_overrides(&configs)?;
    Ok((partitions, replication, configs))
}

/// Kafka's controller refuses a request that would create more partitions than
/// it takes in one batch, before creating any; so does strom (each partition
/// costs open files, and a request for 2^31 of them must not exhaust them).
/// Ok, or the error every topic of the request then gets.
pub fn partition_budget(
    broker: &Broker,
    partitions: impl Iterator<Item = i64>,
) -> std::result::Result<(), fn() -> Error> {
    let total: i64 = partitions.map(|p| p.max(0)).sum();
    if total > broker.config.max_partitions_per_request as i64 {
        return Err(|| Error::PolicyViolation("Excessively large number of partitions per request."));
    }
    Ok(())
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: CreateTopicsRequest) -> CreateTopicsResponse {
    if !super::forward::here(broker, ctx) {
        if let Some(answer) = super::forward::to_controller(broker, ctx.api_version, &request).await {
            return answer;
        }
    }
    let mut response = CreateTopicsResponse::default();
    let requested = request
        .topics
        .iter()
        .map(|t| match (t.assignments.len(), t.num_partitions) {
            (0, -1) => broker.config.num_partitions as i64,
            (0, n) => n as i64,
            (n, _) => n as i64,
        });
    let budget = partition_budget(broker, requested);
    // A name given twice: Kafka refuses every mention.
    let mut mentions = std::collections::HashMap::new();
    for t in &request.topics {
        *mentions.entry(t.name.to_string()).or_insert(0) += 1;
    }
    for t in request.topics {
        let mut r = CreatableTopicResult::default();
        r.name = t.name.clone();
        // null on success, as Kafka answers (the codec's default is "").
        r.error_message = None;
        // CREATE on the cluster, or on the topic.
        let may = super::forward::by_a_broker(broker, ctx)
            || super::allowed(broker, ctx, Operation::Create, ResourceType::Cluster, super::CLUSTER)
            || super::allowed(broker, ctx, Operation::Create, ResourceType::Topic, t.name.as_str());
        let planned = match may {
            _ if mentions[t.name.as_str()] > 1 => Err(Error::InvalidRequest(format!(
                "Create topics request from client `{}` contains multiple entries for the following topics: {}",
                ctx.client_id.as_deref().unwrap_or_default(),
                t.name.as_str()
            ))),
            true => budget.map_err(|e| e()).and_then(|_| plan(broker, ctx, &t)),
            false => Err(Error::TopicAuthorizationFailed(t.name.to_string())),
        };
        let created = match planned {
            Err(e) => Err(e),
            Ok((partitions, replication, configs)) if request.validate_only => {
                Ok((uuid::Uuid::nil(), partitions, replication, configs))
            }
            Ok((partitions, replication, configs)) if broker.metadata.is_cluster() => {
                let new = NewTopic {
                    name: t.name.to_string(),
                    partitions: if t.assignments.is_empty() { partitions } else { -1 },
                    replication_factor: if t.assignments.is_empty() { replication } else { -1 },
                    assignments: t
                        .assignments
                        .iter()
                        .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                        .collect(),
                    configs: configs.clone(),
                };
                let replication = new.assignments.first().map_or(replication, |a| a.len() as i16);
                broker
                    .controller
                    .submit(ControllerRequest::CreateTopic(new))
                    .await
                    .map(|id| (id, partitions, replication, configs))
            }
            Ok((partitions, replication, configs)) => {
                // Thousands of partitions take seconds of file work: off the
                // async workers, so other connections are served meanwhile.
                let (b, name, c) = (broker.clone(), t.name.to_string(), configs.clone());
                crate::util::fs::blocking(move || b.logs.create_topic(&name, partitions, &c, now_ms()))
                    .await
                    .map(|topic| (topic.id, partitions, replication, configs))
            }
        };
        match created {
            Ok((id, partitions, replication, configs)) => {
                r.topic_id = id;
                r.num_partitions = partitions;
                r.replication_factor = replication;
                let entries = describe_topic(&broker.logs.base_config(), &broker.dynamic_config.layers(), &configs);
                r.configs = Some(
                    entries
                        .into_iter()
                        .map(|e| {
                            let mut c = CreatableTopicConfigs::default();
                            c.name = StrBytes::from_string(e.name);
                            c.value = Some(StrBytes::from_string(e.value));
                            c.config_source = e.source as i8;
                            c
                        })
                        .collect(),
                );
            }
            Err(e) => {
                tracing::debug!(topic = %t.name.as_str(), error = %e, "create topic refused");
                (r.error_code, r.error_message) = super::error_message(&e);
                r.num_partitions = -1;
                r.replication_factor = -1;
                r.configs = None;
            }
        }
        response.topics.push(r);
    }
    response
}
