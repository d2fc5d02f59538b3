//! ListTransactions (66): the transactional ids this coordinator knows, with
//! their producer id and state, filtered by state names, producer ids and (v1)
//! how long the open transaction has run.

use std::sync::Arc;

use kafka_protocol::messages::list_transactions_response::TransactionState as Listed;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId};

use super::{str_bytes, RequestContext};
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::txn::state::TransactionState;

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut response = ListTransactionsResponse::default();
    let all_states: Vec<TransactionState> = (0..8).filter_map(TransactionState::from_id).collect();
    let mut states = Vec::new();
    for name in &request.state_filters {
        match all_states.iter().find(|s| s.name() == name.as_str()) {
            Some(s) => states.push(*s),
            None => response.unknown_state_filters.push(name.clone()),
        }
    }
    // Only unknown state names: nothing can match.
    let nothing = !request.state_filters.is_empty() && states.is_empty();
    let now = crate::util::clock::now_ms();
    let mut listed: Vec<_> = broker
        .transactions
        .all()
        .into_iter()
        .filter(|(_, m)| m.state != TransactionState::Dead && !nothing)
        .filter(|(id, _)| super::allowed(broker, ctx, Operation::Describe, ResourceType::TransactionalId, id))
        .filter(|(_, m)| states.is_empty() || states.contains(&m.state))
        .filter(|(_, m)| request.producer_id_filters.is_empty() || request.producer_id_filters.contains(&ProducerId(m.producer_id)))
        .filter(|(_, m)| request.duration_filter < 0 || (m.start_ms >= 0 && now - m.start_ms > request.duration_filter))
        .collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    response.transaction_states = listed
        .into_iter()
        .map(|(id, m)| {
            let mut t = Listed::default();
            t.transactional_id = TransactionalId(str_bytes(&id));
            t.producer_id = ProducerId(m.producer_id);
            t.transaction_state = str_bytes(m.state.name());
            t
        })
        .collect();
    response
}
