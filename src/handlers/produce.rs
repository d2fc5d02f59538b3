//! Produce (0): hand each partition's record batch to the replica manager, which
//! appends it and waits for the acks asked for; answer with the offsets given.

use std::sync::Arc;

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};

use super::{allowed, error_message, str_bytes, RequestContext, Unanswered};
use crate::broker::Broker;
use crate::error::Error;
use crate::metrics::PartitionTraffic;
use crate::replica::replica_manager::{AppendRequest, Transactional};
use crate::security::acl::{Operation, ResourceType};

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id, acks = request.acks))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: ProduceRequest) -> Unanswered<ProduceResponse> {
    let acks = request.acks;
    let bytes: usize = request
        .topic_data
        .iter()
        .flat_map(|t| t.partition_data.iter())
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    let mut appends = Vec::new();
    let mut response = ProduceResponse::default();
    // A transactional producer needs WRITE on its transactional id: without it
    // the whole request is refused.
    let id_refused = request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !allowed(broker, ctx, Operation::Write, ResourceType::TransactionalId, id));
    // Per partition, the error it gets without being appended.
    let mut refused = Vec::new();
    // Per partition appended: its bytes and records, for the metrics.
    let mut traffic = Vec::new();
    for topic in request.topic_data {
        let mut tr = TopicProduceResponse::default();
        tr.name = topic.name.clone();
        tr.topic_id = topic.topic_id;
        let refusal = if id_refused {
            Some(Error::TransactionalIdAuthorizationFailed)
        } else if !allowed(broker, ctx, Operation::Write, ResourceType::Topic, topic.name.as_str()) {
            Some(Error::TopicAuthorizationFailed(topic.name.to_string()))
        } else {
            None
        };
        for data in topic.partition_data {
            let mut r = PartitionProduceResponse::default();
            r.index = data.index;
            tr.partition_responses.push(r);
            if let Some(e) = &refusal {
                refused.push(Some(error_message(e)));
                continue;
            }
            refused.push(None);
            let data_bytes = data.records.as_ref().map_or(0, |r| r.len());
            let records = data.records.as_deref().map_or(0, record_count);
            traffic.push((data_bytes as u64, records));
            appends.push(AppendRequest {
                topic: topic.name.to_string(),
                partition: data.index,
                records: data.records,
                message_set_allowed: ctx.wire_version < 3,
            });
        }
        response.responses.push(tr);
    }
    // How long acks=all may wait for the in-sync replicas (a cluster's).
    let timeout = std::time::Duration::from_millis(request.timeout_ms.max(0) as u64);
    let verifier = crate::broker::txn_cluster::ClusterVerifier { broker };
    let transactional = request.transactional_id.as_ref().map(|id| Transactional {
        id: id.as_str(),
        coordinator: &verifier,
    });
    let mut results = broker
        .replicas
        .append_records(acks, timeout, appends, transactional)
        .await
        .into_iter();
    let mut sizes = traffic.into_iter();
    let mut hints = super::leader_hints::LeaderHints::new(broker, ctx);
    let partitions = response.responses.iter_mut().flat_map(|t| {
        let topic = t.name.clone();
        t.partition_responses.iter_mut().map(move |r| (topic.clone(), r))
    });
    for ((topic, r), refusal) in partitions.zip(refused) {
        if let Some((code, message)) = refusal {
            broker.metrics.produced(PartitionTraffic {
                topic: topic.as_str(),
                bytes: 0,
                records: 0,
                failed: true,
                known: false,
            });
            (r.error_code, r.error_message) = (code, message);
            (r.base_offset, r.log_append_time_ms, r.log_start_offset) = (-1, -1, -1);
            continue;
        }
        let Some(result) = results.next() else {
            break;
        };
        let (bytes, records) = sizes.next().unwrap_or_default();
        broker.metrics.produced(PartitionTraffic {
            topic: topic.as_str(),
            bytes,
            records,
            known: result.is_ok() || broker.metadata.topic(topic.as_str()).is_some(),
            failed: result.is_err(),
        });
        match result {
            Ok(info) => {
                r.base_offset = info.base_offset;
                r.log_append_time_ms = info.log_append_time;
                r.log_start_offset = info.log_start_offset;
            }
            Err(e) => {
                tracing::debug!(topic = %topic.as_str(), partition = r.index, error = %e, "produce rejected");
                (r.error_code, r.error_message) = error_message(&e);
                if let Some((leader, epoch)) = hints.hint(r.error_code, topic.as_str(), r.index) {
                    r.current_leader.leader_id = BrokerId(leader);
                    r.current_leader.leader_epoch = epoch;
                }
                r.base_offset = -1;
                r.log_append_time_ms = -1;
                r.log_start_offset = -1;
                // KIP-467: which records of the batch were bad (v8+; older
                // versions do not carry the field and the codec leaves it out).
                if let Error::RejectedRecords(rejected) = &e {
                    r.record_errors = rejected
                        .indexes
                        .iter()
                        .enumerate()
                        .map(|(i, index)| {
                            let mut b = BatchIndexAndErrorMessage::default();
                            b.batch_index = *index;
                            b.batch_index_error_message = rejected.messages.get(i).map(|m| str_bytes(m));
                            b
                        })
                        .collect();
                }
            }
        }
    }
    response.node_endpoints = hints.produce_endpoints();
    response.throttle_time_ms = super::charge(broker, ctx, crate::quota::Kind::Produce, bytes as f64);
    // acks=0: the client expects no response at all.
    Unanswered((acks != 0).then_some(response))
}

/// Records in a partition's record batches (v2; 0 for an old message set).
fn record_count(data: &[u8]) -> u64 {
    crate::record::batch::Batches::new(data)
        .map(|(_, h)| h.records_count.max(0) as u64)
        .sum()
}
