//! AddPartitionsToTxn (24), the client versions (0–3): partitions join the
//! producer's transaction at its coordinator. One answer for every partition:
//! unknown partitions fail and the others are not attempted, else the
//! coordinator's verdict.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::log::manager::is_internal_topic;
use crate::txn::state::TopicPartition;

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let wanted: Vec<TopicPartition> = request
        .v3_and_below_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p)))
        .collect();
    // Internal topics are the broker's to write (Kafka never authorizes them
    // here); unknown partitions fail; then the others are not attempted.
    let id_refused = !super::allowed(
        broker,
        ctx,
        Operation::Write,
        ResourceType::TransactionalId,
        request.v3_and_below_transactional_id.as_str(),
    );
    let refused: Vec<Option<i16>> = wanted
        .iter()
        .map(|(t, p)| {
            if id_refused {
                Some(ResponseError::TransactionalIdAuthorizationFailed.code())
            } else if is_internal_topic(t) || !super::allowed(broker, ctx, Operation::Write, ResourceType::Topic, t) {
                Some(ResponseError::TopicAuthorizationFailed.code())
            } else if broker.metadata.partition(t, *p).is_none() {
                Some(ResponseError::UnknownTopicOrPartition.code())
            } else {
                None
            }
        })
        .collect();
    let unknown: Vec<bool> = refused.iter().map(Option::is_some).collect();
    let code_of = |i: usize, all: i16| match (unknown.iter().any(|u| *u), refused[i]) {
        (true, Some(code)) => code,
        (true, None) => ResponseError::OperationNotAttempted.code(),
        _ => all,
    };
    let verdict = if unknown.iter().any(|u| *u) {
        0
    } else {
        let (b, id, pid, epoch, parts) = (
            broker.clone(),
            request.v3_and_below_transactional_id.to_string(),
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            wanted.clone(),
        );
        let added = crate::util::fs::blocking(move || {
            b.transactions.add_partitions(&id, pid, epoch, &parts, crate::util::clock::now_ms())
        })
        .await;
        match added {
            Ok(()) => 0,
            Err(e) => {
                tracing::debug!(error = %e, "partitions not added to the transaction");
                // PRODUCER_FENCED came with v2.
                super::fenced_for(ctx.api_version, 2, &e)
            }
        }
    };
    let mut response = AddPartitionsToTxnResponse::default();
    let mut i = 0;
    for topic in &request.v3_and_below_topics {
        let mut tr = AddPartitionsToTxnTopicResult::default();
        tr.name = topic.name.clone();
        for p in &topic.partitions {
            let mut pr = AddPartitionsToTxnPartitionResult::default();
            pr.partition_index = *p;
            pr.partition_error_code = code_of(i, verdict);
            tr.results_by_partition.push(pr);
            i += 1;
        }
        response.results_by_topic_v3_and_below.push(tr);
    }
    response
}
