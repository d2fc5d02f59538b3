//! DeleteTopics (20): by name (v1+) or by topic id (v6); files are removed.

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::error::{Error, Result};
use crate::cluster::controller::ControllerRequest;
use crate::log::manager::is_internal_topic;
use crate::util::clock::now_ms;

async fn delete(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    name: Option<&str>,
    id: uuid::Uuid,
) -> Result<(String, uuid::Uuid)> {
    let name = match name {
        Some(n) => n.to_string(),
        None => broker.metadata.topic_by_id(&id).ok_or(Error::UnknownTopicId(id))?.name,
    };
    if !super::allowed(broker, ctx, Operation::Delete, ResourceType::Topic, &name) {
        return Err(Error::TopicAuthorizationFailed(name));
    }
    if is_internal_topic(&name) {
        return Err(Error::InvalidTopic {
            name,
            reason: "internal topics cannot be deleted",
        });
    }
    if broker.metadata.is_cluster() {
        // The controller deletes it from the cluster's metadata; every broker
        // holding replicas deletes them when it sees that.
        let request = ControllerRequest::DeleteTopic { name: name.clone() };
        return Ok((name, broker.controller.submit(request).await?));
    }
    let (b, n) = (broker.clone(), name.clone());
    let id = crate::util::fs::blocking(move || b.logs.delete_topic(&n)).await?;
    // Committed offsets of a deleted topic go with it.
    broker.groups.topic_deleted(&name, now_ms()).await?;
    broker.metrics.topic_deleted(&name);
    Ok((name, id))
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    if !super::forward::here(broker, ctx) {
        if let Some(answer) = super::forward::to_controller(broker, ctx.api_version, &request).await {
            return answer;
        }
    }
    let targets: Vec<(Option<String>, uuid::Uuid)> = if ctx.api_version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let mut response = DeleteTopicsResponse::default();
    for (name, id) in targets {
        let mut r = DeletableTopicResult::default();
        match delete(broker, ctx, name.as_deref(), id).await {
            Ok((name, id)) => {
                r.name = Some(TopicName(StrBytes::from_string(name)));
                r.topic_id = id;
            }
            Err(e) => {
                r.name = name.map(|n| TopicName(StrBytes::from_string(n)));
                r.topic_id = id;
                (r.error_code, r.error_message) = super::error_message(&e);
            }
        }
        response.responses.push(r);
    }
    response
}
