//! DescribeTransactions (65): each transactional id's state, producer, timeout,
//! start and the partitions of its open transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState as Described};
use kafka_protocol::messages::{DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName};

use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::txn::state::TransactionState;

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut response = DescribeTransactionsResponse::default();
    for id in request.transactional_ids {
        let mut d = Described::default();
        d.transactional_id = id.clone();
        d.transaction_state = str_bytes("");
        match broker.transactions.metadata(id.as_str()) {
            _ if id.is_empty() => d.error_code = ResponseError::InvalidRequest.code(),
            _ if !super::allowed(broker, ctx, Operation::Describe, ResourceType::TransactionalId, id.as_str()) => {
                d.error_code = ResponseError::TransactionalIdAuthorizationFailed.code()
            }
            Err(e) => d.error_code = e.wire_code(),
            Ok(Some(m)) if m.state != TransactionState::Dead => {
                d.transaction_state = str_bytes(m.state.name());
                d.transaction_timeout_ms = m.timeout_ms;
                d.transaction_start_time_ms = m.start_ms;
                d.producer_id = ProducerId(m.producer_id);
                d.producer_epoch = m.producer_epoch;
                let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                for (topic, partition) in &m.partitions {
                    // As Kafka: topics the caller may not describe are left out.
                    if super::allowed(broker, ctx, Operation::Describe, ResourceType::Topic, topic) {
                        topics.entry(topic).or_default().push(*partition);
                    }
                }
                d.topics = topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        let mut t = TopicData::default();
                        t.topic = TopicName(str_bytes(topic));
                        t.partitions = partitions;
                        t
                    })
                    .collect();
            }
            _ => d.error_code = ResponseError::TransactionalIdNotFound.code(),
        }
        response.transaction_states.push(d);
    }
    response
}
