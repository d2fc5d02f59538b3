//! CreateTopics (19): name, partition count and replication factor (one broker:
//! at most 1). Topic configs arrive in a later version of strom; until then they
//! are accepted but not stored.

use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::error::{Error, Result};
use crate::util::now_ms;

/// Partition count and replication factor after defaults; errors as Kafka's.
fn plan(broker: &Broker, t: &CreatableTopic) -> Result<(i32, i16)> {
    let partitions = if !t.assignments.is_empty() {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err(Error::InvalidRequest(
                "both manual assignments and partition count or replication factor given".into(),
            ));
        }
        let node = broker.node_id();
        if t.assignments
            .iter()
            .any(|a| a.broker_ids.iter().any(|b| b.0 != node) || a.broker_ids.len() != 1)
        {
            return Err(Error::InvalidReplicationFactor(t.assignments[0].broker_ids.len() as i16));
        }
        t.assignments.len() as i32
    } else if t.num_partitions == -1 {
        broker.config.num_partitions
    } else {
        t.num_partitions
    };
    let replication = match t.replication_factor {
        -1 | 1 => 1,
        r => return Err(Error::InvalidReplicationFactor(r)),
    };
    broker.logs.validate_new_topic(t.name.as_str(), partitions)?;
    Ok((partitions, replication))
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut response = CreateTopicsResponse::default();
    for t in request.topics {
        let mut r = CreatableTopicResult::default();
        r.name = t.name.clone();
        let created = plan(broker, &t).and_then(|(partitions, replication)| {
            if request.validate_only {
                return Ok((uuid::Uuid::nil(), partitions, replication));
            }
            let topic = broker.logs.create_topic(t.name.as_str(), partitions, now_ms())?;
            Ok((topic.id, partitions, replication))
        });
        match created {
            Ok((id, partitions, replication)) => {
                r.topic_id = id;
                r.num_partitions = partitions;
                r.replication_factor = replication;
                r.configs = Some(Vec::new());
            }
            Err(e) => {
                r.error_code = e.wire_code();
                r.error_message = Some(StrBytes::from_string(e.to_string()));
                r.num_partitions = -1;
                r.replication_factor = -1;
                r.configs = None;
            }
        }
        response.topics.push(r);
    }
    response
}
