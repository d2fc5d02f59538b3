//! AddOffsetsToTxn (25): the group's `__consumer_offsets` partition joins the
//! producer's transaction, so that the transaction's COMMIT or ABORT marker also
//! lands there and ends the offsets TxnOffsetCommit writes. Exactly
//! AddPartitionsToTxn with that one partition (a repeated add is a no-op).

use std::sync::Arc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id, group = %request.group_id.as_str()))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let refusal = if !super::allowed(broker, ctx, Operation::Write, ResourceType::TransactionalId, &request.transactional_id) {
        Some(kafka_protocol::error::ResponseError::TransactionalIdAuthorizationFailed)
    } else if !super::allowed(broker, ctx, Operation::Read, ResourceType::Group, &request.group_id) {
        Some(kafka_protocol::error::ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    if let Some(code) = refusal {
        let mut response = AddOffsetsToTxnResponse::default();
        response.error_code = code.code();
        return response;
    }
    let (b, id, pid, epoch) = (
        broker.clone(),
        request.transactional_id.to_string(),
        request.producer_id.0,
        request.producer_epoch,
    );
    let partition = broker.groups.offsets_partition(request.group_id.as_str());
    let added = crate::util::fs::blocking(move || {
        b.transactions
            .add_partitions(&id, pid, epoch, &[partition], crate::util::clock::now_ms())
    })
    .await;
    let mut response = AddOffsetsToTxnResponse::default();
    if let Err(e) = added {
        tracing::debug!(error = %e, "offsets not added to the transaction");
        // PRODUCER_FENCED came with v2.
        response.error_code = super::fenced_for(ctx.api_version, 2, &e);
    }
    response
}
