//! CreatePartitions (37): grow a topic's partition count.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::error::{Error, Result};
use crate::cluster::controller::ControllerRequest;
use crate::log::manager::is_internal_topic;
use crate::util::clock::now_ms;

/// Check that the topic can grow to `count` partitions.
fn check(broker: &Broker, name: &str, count: i32, assigned: Option<usize>) -> Result<()> {
    let topic = broker.metadata.topic(name).ok_or_else(|| Error::UnknownTopicOrPartition {
        topic: name.to_string(),
        partition: -1,
    })?;
    if is_internal_topic(name) {
        return Err(Error::InvalidTopic {
            name: name.to_string(),
            reason: "internal topics cannot be changed",
        });
    }
    let current = topic.partitions.len() as i32;
    if count <= current {
        return Err(Error::InvalidPartitions(count));
    }
    if assigned.is_some_and(|n| n as i32 != count - current) {
        return Err(Error::InvalidReplicaAssignment("one assignment per new partition".into()));
    }
    Ok(())
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut response = CreatePartitionsResponse::default();
    if !super::forward::here(broker, ctx) {
        if let Some(answer) = super::forward::to_controller(broker, ctx.api_version, &request).await {
            return answer;
        }
    }
    let cluster = broker.metadata.is_cluster();
    let added = request.topics.iter().map(|t| {
        let current = broker
            .metadata
            .topic(t.name.as_str())
            .map_or(0, |topic| topic.partitions.len());
        t.count as i64 - current as i64
    });
    let budget = super::create_topics::partition_budget(broker, added);
    for t in request.topics {
        let mut r = CreatePartitionsTopicResult::default();
        let node = broker.node_id();
        // In a cluster the controller checks the brokers named.
        let bad_broker = !cluster
            && t.assignments
                .iter()
                .flatten()
                .any(|a| a.broker_ids.iter().any(|b| b.0 != node));
        let result = if !super::allowed(broker, ctx, Operation::Alter, ResourceType::Topic, t.name.as_str()) {
            Err(Error::TopicAuthorizationFailed(t.name.to_string()))
        } else if let Err(e) = budget {
            Err(e())
        } else if bad_broker {
            Err(Error::InvalidReplicationFactor(2))
        } else {
            let assigned = t.assignments.as_ref().filter(|a| !a.is_empty()).map(Vec::len);
            match check(broker, t.name.as_str(), t.count, assigned) {
                Ok(()) if !request.validate_only && cluster => {
                    let request = ControllerRequest::CreatePartitions {
                        name: t.name.to_string(),
                        count: t.count,
                        assignments: t
                            .assignments
                            .iter()
                            .flatten()
                            .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                            .collect(),
                    };
                    broker.controller.submit(request).await.map(|_| ())
                }
                Ok(()) if !request.validate_only => {
                    let (b, name, count) = (broker.clone(), t.name.to_string(), t.count);
                    crate::util::fs::blocking(move || b.logs.add_partitions(&name, count, now_ms())).await
                }
                checked => checked,
            }
        };
        if let Err(e) = result {
            (r.error_code, r.error_message) = super::error_message(&e);
        }
        r.name = t.name;
        response.results.push(r);
    }
    response
}
