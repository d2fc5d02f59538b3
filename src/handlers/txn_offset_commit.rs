//! TxnOffsetCommit (28): a transactional producer commits its consumer's offsets
//! as part of its transaction (consume-transform-produce). Sent to the group
//! coordinator; the offsets stay pending until the transaction's marker reaches
//! the group's `__consumer_offsets` partition (see `group::coordinator::offsets`).
//!
//! Checks, as Kafka makes them: the group's offsets partition must be in the
//! ongoing transaction (AddOffsetsToTxn first; INVALID_TXN_STATE, or
//! TRANSACTION_ABORTABLE from v4); a stale producer epoch is fenced
//! (INVALID_PRODUCER_EPOCH); from v3, KIP-447's generation / member / instance
//! check when the producer sends the consumer's group metadata.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::error::{Error, Result};
use crate::group::coordinator::{TopicPartition, VerifiedProducer};
use crate::group::member::MemberRef;
use crate::group::record_serde::OffsetCommitValue;
use crate::txn::coordinator::TxnVerifier;
use crate::util::clock::now_ms;

/// The version from which a write outside the transaction is TRANSACTION_ABORTABLE.
const ABORTABLE_SINCE: i16 = 4;

#[tracing::instrument(level = "debug", skip_all, fields(group = %request.group_id.as_str(), client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let now = now_ms();
    // WRITE on the transactional id, READ on the group and on each topic (the
    // partitions of a topic the principal may not read are refused alone).
    let readable = super::readable_topics(broker, ctx, request.topics.iter().map(|t| t.name.as_str()));
    let committed = if !super::allowed(broker, ctx, Operation::Write, ResourceType::TransactionalId, &request.transactional_id) {
        Err(Error::TransactionalIdAuthorizationFailed)
    } else if !super::allowed(broker, ctx, Operation::Read, ResourceType::Group, &request.group_id) {
        Err(Error::GroupAuthorizationFailed(request.group_id.to_string()))
    } else if readable.len() < request.topics.len() {
        let mut only = request.clone();
        only.topics.retain(|t| readable.contains(t.name.as_str()));
        commit(broker, &only, now).await
    } else {
        commit(broker, &request, now).await
    };
    let code = |e: &Error| match e {
        Error::InvalidTxnState(_) if ctx.api_version >= ABORTABLE_SINCE => ResponseError::TransactionAbortable.code(),
        // TxnOffsetCommit has no PRODUCER_FENCED: a fenced producer learns it as
        // INVALID_PRODUCER_EPOCH, as from the log.
        e => super::fenced_for(ctx.api_version, i16::MAX, e),
    };
    if let Err(e) = &committed {
        tracing::debug!(error = %e, "transactional commit refused");
    }
    let codes = committed.as_ref().map(|r| super::partition_codes(r, code));
    let mut response = TxnOffsetCommitResponse::default();
    for t in &request.topics {
        let mut tr = TxnOffsetCommitResponseTopic::default();
        tr.name = t.name.clone();
        for p in &t.partitions {
            let mut pr = TxnOffsetCommitResponsePartition::default();
            pr.partition_index = p.partition_index;
            pr.error_code = match &codes {
                Err(e) => code(e),
                Ok(_) if !readable.contains(t.name.as_str()) => ResponseError::TopicAuthorizationFailed.code(),
                Ok(codes) => codes.get(&(t.name.as_str(), p.partition_index)).copied().unwrap_or(0),
            };
            tr.partitions.push(pr);
        }
        response.topics.push(tr);
    }
    response
}

async fn commit(
    broker: &Broker,
    request: &TxnOffsetCommitRequest,
    now: i64,
) -> Result<Vec<(TopicPartition, Result<()>)>> {
    let group = request.group_id.as_str();
    let producer = (request.producer_id.0, request.producer_epoch);
    let shard = broker.groups.shard(group)?;
    let partition = broker.groups.offsets_partition(group);
    // The guard first: a marker written after the coordinator answers still
    // keeps these offsets out of the ended transaction.
    let guard = shard.verification_guard(producer.0);
    let verified = crate::broker::txn_cluster::ClusterVerifier { broker }.verify(request.transactional_id.as_str(), producer.0, producer.1, &partition);
    if let Err(e) = verified {
        shard.release_verification_guard(producer.0, guard);
        return Err(match e {
            Error::ProducerFenced(_) => Error::InvalidProducerEpoch {
                producer_id: producer.0,
                epoch: producer.1,
                current: producer.1,
            },
            e => e,
        });
    }
    let offsets = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    (t.name.to_string(), p.partition_index),
                    OffsetCommitValue {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default(),
                        commit_timestamp: now,
                    },
                )
            })
        })
        .collect();
    let metadata = &broker.metadata;
    let caller = MemberRef::new(
        request.member_id.as_str(),
        request.group_instance_id.as_deref(),
        request.generation_id,
    );
    shard
        .txn_commit(
            group,
            VerifiedProducer {
                id: producer.0,
                epoch: producer.1,
                guard,
            },
            caller,
            offsets,
            |topic, partition| metadata.partition(topic, partition).is_some(),
            now,
        )
        .await
}
