//! DescribeProducers (61): the producers each partition knows, with their epoch,
//! last sequence, coordinator epoch and open transaction's first offset.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use crate::replica::partition::NO_LEADER_EPOCH;
use super::{error_message, RequestContext};
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut response = DescribeProducersResponse::default();
    for topic in request.topics {
        let mut tr = TopicResponse::default();
        tr.name = topic.name.clone();
        for index in topic.partition_indexes {
            let mut pr = PartitionResponse::default();
            pr.partition_index = index;
            let may = super::allowed(broker, ctx, Operation::Read, ResourceType::Topic, topic.name.as_str());
            let found = match may {
                true => broker.replicas.leader_log(topic.name.as_str(), index, NO_LEADER_EPOCH),
                false => Err(crate::error::Error::TopicAuthorizationFailed(topic.name.to_string())),
            };
            match found {
                Ok(log) => {
                    pr.active_producers = log
                        .producers()
                        .into_iter()
                        .map(|p| {
                            let mut s = ProducerState::default();
                            s.producer_id = ProducerId(p.producer_id);
                            s.producer_epoch = i32::from(p.epoch);
                            s.last_sequence = p.last_sequence;
                            s.last_timestamp = p.last_timestamp;
                            s.coordinator_epoch = p.coordinator_epoch;
                            s.current_txn_start_offset = p.txn_first_offset;
                            s
                        })
                        .collect();
                }
                Err(e) => (pr.error_code, pr.error_message) = error_message(&e),
            }
            tr.partitions.push(pr);
        }
        response.topics.push(tr);
    }
    response
}
