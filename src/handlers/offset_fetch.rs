//! OffsetFetch (9): committed offsets of named partitions, or of all partitions
//! when none are named (v2+); several groups per request from v8. With
//! `require_stable` (v7+; librdkafka's read_committed consumers), a partition
//! whose offset a transaction still has pending answers UNSTABLE_OFFSET_COMMIT.

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{allowed, RequestContext};
use crate::broker::Broker;
use crate::error::{Error, Result};
use crate::security::acl::{Operation, ResourceType};
use crate::group::coordinator::TopicPartition;
use crate::group::record_serde::OffsetCommitValue;

/// A topic's partitions and their committed offsets.
type TopicOffsets = (String, Vec<(i32, Result<Option<OffsetCommitValue>>)>);

/// Committed offsets by topic, in request order, or all stored. Needs DESCRIBE
/// on the group; topics the principal may not DESCRIBE are left out of "all",
/// and are TOPIC_AUTHORIZATION_FAILED when named.
fn lookup(
    broker: &Broker,
    ctx: &RequestContext,
    group: &str,
    wanted: Option<Vec<TopicPartition>>,
    require_stable: bool,
) -> Result<Vec<TopicOffsets>> {
    if !allowed(broker, ctx, Operation::Describe, ResourceType::Group, group) {
        return Err(Error::GroupAuthorizationFailed(group.to_string()));
    }
    let shard = broker.groups.shard(group)?;
    let all = wanted.is_none();
    let mut describable: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    let mut by_topic: Vec<TopicOffsets> = Vec::new();
    // Topic → its place in `by_topic`: linear in the partitions asked for.
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for ((topic, partition), mut value) in shard.fetch_offsets(group, wanted, require_stable) {
        let may = *describable
            .entry(topic.clone())
            .or_insert_with(|| allowed(broker, ctx, Operation::Describe, ResourceType::Topic, &topic));
        if !may {
            if all {
                continue;
            }
            value = Err(Error::TopicAuthorizationFailed(topic.clone()));
        }
        match index.get(&topic) {
            Some(&i) => by_topic[i].1.push((partition, value)),
            None => {
                index.insert(topic.clone(), by_topic.len());
                by_topic.push((topic, vec![(partition, value)]));
            }
        }
    }
    Ok(by_topic)
}

/// Offset, leader epoch, metadata and error code as the response carries them
/// (−1 and empty for a partition without a committed offset, or in error).
fn fields(v: Result<Option<OffsetCommitValue>>) -> (i64, i32, Option<StrBytes>, i16) {
    match v {
        Ok(Some(c)) => (c.offset, c.leader_epoch, Some(StrBytes::from_string(c.metadata)), 0),
        Ok(None) => (-1, -1, Some(StrBytes::default()), 0),
        Err(e) => (-1, -1, Some(StrBytes::default()), e.wire_code()),
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    if ctx.api_version >= 8 {
        for g in request.groups {
            let wanted = g.topics.map(|ts| {
                ts.iter()
                    .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
                    .collect()
            });
            let mut gr = OffsetFetchResponseGroup::default();
            // v9: a consumer-protocol member's id and epoch must be current.
            let found = lookup(broker, ctx, g.group_id.as_str(), wanted, request.require_stable).and_then(|found| {
                broker
                    .groups
                    .shard(g.group_id.as_str())?
                    .validate_offset_fetch(g.group_id.as_str(), g.member_id.as_deref(), g.member_epoch)
                    .map(|_| found)
            });
            let found = found.unwrap_or_else(|e| {
                gr.error_code = e.wire_code();
                Vec::new()
            });
            for (topic, parts) in found {
                let mut tr = OffsetFetchResponseTopics::default();
                tr.name = TopicName(StrBytes::from_string(topic));
                for (partition, value) in parts {
                    let mut pr = OffsetFetchResponsePartitions::default();
                    pr.partition_index = partition;
                    (pr.committed_offset, pr.committed_leader_epoch, pr.metadata, pr.error_code) = fields(value);
                    tr.partitions.push(pr);
                }
                gr.topics.push(tr);
            }
            gr.group_id = g.group_id;
            response.groups.push(gr);
        }
        return response;
    }
    let wanted = request.topics.map(|ts| {
        ts.iter()
            .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
            .collect()
    });
    // require_stable is false before v7.
    let asked = wanted.clone();
    let found = lookup(broker, ctx, request.group_id.as_str(), wanted, request.require_stable);
    let found = found.unwrap_or_else(|e| {
        response.error_code = e.wire_code();
        // v0–1 have no top-level error: each partition asked for carries it.
        let mut by_topic: Vec<TopicOffsets> = Vec::new();
        for (topic, partition) in asked.into_iter().flatten().filter(|_| ctx.api_version < 2) {
            let refused = Err(Error::GroupAuthorizationFailed(request.group_id.to_string()));
            match by_topic.iter_mut().find(|(t, _)| *t == topic) {
                Some((_, parts)) => parts.push((partition, refused)),
                None => by_topic.push((topic, vec![(partition, refused)])),
            }
        }
        by_topic
    });
    for (topic, parts) in found {
        let mut tr = OffsetFetchResponseTopic::default();
        tr.name = TopicName(StrBytes::from_string(topic));
        for (partition, value) in parts {
            let mut pr = OffsetFetchResponsePartition::default();
            pr.partition_index = partition;
            (pr.committed_offset, pr.committed_leader_epoch, pr.metadata, pr.error_code) = fields(value);
            tr.partitions.push(pr);
        }
        response.topics.push(tr);
    }
    response
}
