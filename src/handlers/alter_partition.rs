//! AlterPartition (56): a partition's leader asks the active controller to
//! change its ISR (a follower fell behind for `replica.lag.time.max.ms`, or
//! caught up). Brokers only (CLUSTER_ACTION); answered by the controller with
//! Kafka's checks (FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION,
//! INELIGIBLE_REPLICA), anywhere else NOT_CONTROLLER.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_response::{PartitionData, TopicData};
use kafka_protocol::messages::{AlterPartitionRequest, AlterPartitionResponse, BrokerId};

use super::{allowed, RequestContext, CLUSTER};
use crate::broker::Broker;
use crate::cluster::controller::leadership::IsrChange;
use crate::error::Error;
use crate::security::acl::{Operation, ResourceType};

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterPartitionRequest,
) -> AlterPartitionResponse {
    let mut response = AlterPartitionResponse::default();
    if !allowed(broker, ctx, Operation::ClusterAction, ResourceType::Cluster, CLUSTER) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    if !broker.controller.is_active() {
        response.error_code = ResponseError::NotController.code();
        return response;
    }
    for t in request.topics {
        let name = broker.metadata.topic_by_id(&t.topic_id).map(|m| m.name);
        let mut tr = TopicData::default();
        tr.topic_id = t.topic_id;
        for p in t.partitions {
            let new_isr: Vec<i32> = match ctx.api_version {
                3.. => p.new_isr_with_epochs.iter().map(|b| b.broker_id.0).collect(),
                _ => p.new_isr.iter().map(|b| b.0).collect(),
            };
            let result = match &name {
                None => Err(Error::UnknownTopicId(t.topic_id)),
                Some(name) => {
                    let change = IsrChange {
                        topic: name.clone(),
                        partition: p.partition_index,
                        leader: request.broker_id.0,
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                        new_isr,
                    };
                    broker.controller.alter_partition(change).await
                }
            };
            let mut pr = PartitionData::default();
            pr.partition_index = p.partition_index;
            match result {
                Ok(record) => {
                    pr.leader_id = BrokerId(record.leader);
                    pr.leader_epoch = record.leader_epoch;
                    pr.isr = record.isr.iter().map(|b| BrokerId(*b)).collect();
                    pr.partition_epoch = record.partition_epoch;
                }
                Err(e) => pr.error_code = e.wire_code(),
            }
            tr.partitions.push(pr);
        }
        response.topics.push(tr);
    }
    response
}
