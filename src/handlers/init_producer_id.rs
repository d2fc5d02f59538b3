//! InitProducerId (22): a new producer id for an idempotent producer, or (v3+,
//! KIP-360) a bumped epoch for one that asks to keep its id.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::RequestContext;
use crate::broker::Broker;
use crate::error::{Error, Result};

fn allocate(broker: &Broker, request: &InitProducerIdRequest) -> Result<(i64, i16)> {
    match &request.transactional_id {
        None => {}
        Some(id) if id.is_empty() => {
            return Err(Error::InvalidRequest("empty transactional id".into()));
        }
        // FindCoordinator names no transaction coordinator either.
        Some(_) => return Err(Error::CoordinatorNotAvailable("transactional ids")),
    }
    let (id, epoch) = (request.producer_id.0, request.producer_epoch);
    if id >= 0 && (0..i16::MAX - 1).contains(&epoch) {
        // The producer keeps its id and fences its older self with a new epoch.
        return Ok((id, epoch + 1));
    }
    Ok((broker.producer_ids.next_id()?, 0))
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    match allocate(broker, &request) {
        Ok((id, epoch)) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = epoch;
        }
        Err(e) => {
            tracing::info!(error = %e, "init producer id refused");
            response.error_code = e.wire_code();
            response.producer_id = ProducerId(-1);
            response.producer_epoch = -1;
        }
    }
    response
}
