//! EndTxn (26): commit or abort the producer's transaction. Answered once the
//! decision is durable; the markers follow (see `txn::coordinator`).

use std::sync::Arc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id, commit = request.committed))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: EndTxnRequest) -> EndTxnResponse {
    let mut response = EndTxnResponse::default();
    // Kafka checks this before the id's state.
    if request.transactional_id.is_empty() {
        response.error_code = kafka_protocol::error::ResponseError::InvalidRequest.code();
        return response;
    }
    if !super::allowed(broker, ctx, Operation::Write, ResourceType::TransactionalId, &request.transactional_id) {
        response.error_code = kafka_protocol::error::ResponseError::TransactionalIdAuthorizationFailed.code();
        return response;
    }
    let (b, id, pid, epoch, commit) = (
        broker.clone(),
        request.transactional_id.to_string(),
        request.producer_id.0,
        request.producer_epoch,
        request.committed,
    );
    let ended = crate::util::fs::blocking(move || {
        b.transactions
            .end_txn(&id, pid, epoch, commit, &b.markers(), crate::util::clock::now_ms())
    })
    .await;
    if let Err(e) = ended {
        tracing::debug!(error = %e, "transaction not ended");
        // PRODUCER_FENCED came with v2.
        response.error_code = super::fenced_for(ctx.api_version, 2, &e);
    }
    response
}
