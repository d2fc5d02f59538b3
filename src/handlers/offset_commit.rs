//! OffsetCommit (8): committed offsets, with their metadata strings, written
//! durably to `__consumer_offsets` before the response.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::group::member::MemberRef;
use crate::group::record_serde::OffsetCommitValue;
use crate::util::clock::now_ms;

#[tracing::instrument(level = "debug", skip_all, fields(group = %request.group_id.as_str(), client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let now = now_ms();
    // READ on the group, and on each topic (a partition of a topic the
    // principal may not read is refused alone).
    let group_refused = !super::allowed(broker, ctx, Operation::Read, ResourceType::Group, request.group_id.as_str());
    let readable = super::readable_topics(broker, ctx, request.topics.iter().map(|t| t.name.as_str()));
    let offsets = request
        .topics
        .iter()
        .filter(|t| readable.contains(t.name.as_str()) && !group_refused)
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
    let committed = if group_refused {
        Err(crate::error::Error::GroupAuthorizationFailed(request.group_id.to_string()))
    } else {
        match broker.groups.shard(request.group_id.as_str()) {
            Ok(shard) => shard
        .commit(
            request.group_id.as_str(),
            MemberRef::new(request.member_id.as_str(), request.group_instance_id.as_deref(), request.generation_id_or_member_epoch),
            offsets,
            |topic, partition| metadata.partition(topic, partition).is_some(),
            now,
        )
        .await,
            Err(e) => Err(e),
        }
    };
    let mut response = OffsetCommitResponse::default();
    let codes = committed.as_ref().map(|r| super::partition_codes(r, |e| e.wire_code()));
    for t in request.topics {
        let mut tr = OffsetCommitResponseTopic::default();
        for p in &t.partitions {
            let mut pr = OffsetCommitResponsePartition::default();
            pr.partition_index = p.partition_index;
            pr.error_code = match &codes {
                Err(e) => e.wire_code(),
                Ok(_) if !readable.contains(t.name.as_str()) => {
                    kafka_protocol::error::ResponseError::TopicAuthorizationFailed.code()
                }
                Ok(codes) => codes.get(&(t.name.as_str(), p.partition_index)).copied().unwrap_or(0),
            };
            tr.partitions.push(pr);
        }
        tr.name = t.name;
        tr.topic_id = t.topic_id;
        response.topics.push(tr);
    }
    if let Err(e) = &committed {
        tracing::debug!(error = %e, "commit refused");
    }
    response
}
