//! InitProducerId (22): a new producer id for an idempotent producer; with a
//! transactional id, the transaction coordinator's answer (fencing older
//! producers of the id).

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::error::{Error, Result};

/// An idempotent producer's id: always a new one, epoch 0, whatever id it has
/// (as Kafka does: bumping an epoch on request would let anyone fence a producer
/// by naming its id).
fn allocate(broker: &Broker, request: &InitProducerIdRequest) -> Result<(i64, i16)> {
    let (id, epoch) = (request.producer_id.0, request.producer_epoch);
    if (id == -1) != (epoch == -1) {
        return Err(Error::InvalidRequest("producer id and epoch must be given together".into()));
    }
    Ok((broker.producer_ids.next_id()?, 0))
}

/// A transactional producer's id and epoch, from its transaction coordinator
/// (which writes and fsyncs: off the async workers).
async fn transactional(broker: &Arc<Broker>, id: String, request: &InitProducerIdRequest) -> Result<(i64, i16)> {
    if id.is_empty() {
        return Err(Error::InvalidRequest("empty transactional id".into()));
    }
    let expected = match (request.producer_id.0, request.producer_epoch) {
        (-1, -1) => None,
        (-1, _) | (_, -1) => {
            return Err(Error::InvalidRequest("producer id and epoch must be given together".into()))
        }
        (pid, epoch) => Some((pid, epoch)),
    };
    let (b, timeout) = (broker.clone(), request.transaction_timeout_ms);
    crate::util::fs::blocking(move || {
        let next = || b.producer_ids.next_id();
        b.transactions
            .init_producer_id(&id, timeout, expected, &next, &b.markers(), crate::util::clock::now_ms())
    })
    .await
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    // A transactional id needs WRITE on it; an idempotent producer needs
    // IDEMPOTENT_WRITE on the cluster or WRITE on some topic.
    let answer = match request.transactional_id.clone() {
        Some(id) if !super::allowed(broker, ctx, Operation::Write, ResourceType::TransactionalId, id.as_str()) => {
            Err(Error::TransactionalIdAuthorizationFailed)
        }
        Some(id) => transactional(broker, id.to_string(), &request).await,
        None if !super::allowed(broker, ctx, Operation::IdempotentWrite, ResourceType::Cluster, super::CLUSTER)
            && !broker
                .authorizer
                .authorize_any(&ctx.principal, ctx.peer.ip(), Operation::Write, ResourceType::Topic) =>
        {
            Err(Error::ClusterAuthorizationFailed)
        }
        None => allocate(broker, &request),
    };
    match answer {
        Ok((id, epoch)) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = epoch;
        }
        Err(e) => {
            tracing::info!(error = %e, "init producer id refused");
            // PRODUCER_FENCED came with v4; older clients know INVALID_PRODUCER_EPOCH.
            response.error_code = super::fenced_for(ctx.api_version, 4, &e);
            response.producer_id = ProducerId(-1);
            response.producer_epoch = -1;
        }
    }
    response
}
