//! OffsetForLeaderEpoch (23): where a leader epoch ended in the leader's log
//! (KIP-101, KIP-320). A consumer asks after a leader change to check that its
//! position is still in the log (librdkafka validates positions this way); a
//! follower asks to find where its log parts from the leader's. The answer is
//! the largest epoch the leader knows at or below the one asked for and the
//! offset where the next epoch began (or its log end); (−1, −1) when the leader
//! knows no such epoch.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::{RequestContext, CLUSTER};
use crate::broker::Broker;
use crate::error::Error;
use crate::security::acl::{Operation, ResourceType};

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    // Brokers (CLUSTER_ACTION) may ask about any topic; clients about the
    // topics they may describe.
    let cluster_action = super::allowed(broker, ctx, Operation::ClusterAction, ResourceType::Cluster, CLUSTER);
    let mut response = OffsetForLeaderEpochResponse::default();
    for topic in request.topics {
        let name = topic.topic.as_str();
        let may = cluster_action || super::allowed(broker, ctx, Operation::Describe, ResourceType::Topic, name);
        let mut tr = OffsetForLeaderTopicResult::default();
        tr.topic = topic.topic.clone();
        for p in topic.partitions {
            let mut pr = EpochEndOffset::default();
            pr.partition = p.partition;
            let found = match may {
                true => broker.replicas.leader_log(name, p.partition, p.current_leader_epoch),
                false => Err(Error::TopicAuthorizationFailed(name.to_string())),
            };
            match found {
                Ok(log) => (pr.leader_epoch, pr.end_offset) = log.end_offset_for_epoch(p.leader_epoch),
                Err(e) => {
                    pr.error_code = e.wire_code();
                    (pr.leader_epoch, pr.end_offset) = (-1, -1);
                }
            }
            tr.partitions.push(pr);
        }
        response.topics.push(tr);
    }
    response
}
