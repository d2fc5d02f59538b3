//! OffsetFetch (9): committed offsets of named partitions, or of all partitions
//! when none are named (v2+); several groups per request from v8.

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::group::coordinator::TopicPartition;
use crate::group::record_serde::OffsetCommitValue;

/// A topic's partitions and their committed offsets.
type TopicOffsets = (String, Vec<(i32, Option<OffsetCommitValue>)>);

/// Committed offsets by topic, in request order, or all stored.
fn lookup(broker: &Broker, group: &str, wanted: Option<Vec<TopicPartition>>) -> Vec<TopicOffsets> {
    let mut by_topic: Vec<TopicOffsets> = Vec::new();
    for ((topic, partition), value) in broker.groups.fetch_offsets(group, wanted) {
        match by_topic.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, parts)) => parts.push((partition, value)),
            None => by_topic.push((topic, vec![(partition, value)])),
        }
    }
    by_topic
}

/// Offset, leader epoch and metadata as the response carries them (−1 and empty
/// for a partition without a committed offset).
fn fields(v: Option<OffsetCommitValue>) -> (i64, i32, Option<StrBytes>) {
    match v {
        Some(c) => (c.offset, c.leader_epoch, Some(StrBytes::from_string(c.metadata))),
        None => (-1, -1, Some(StrBytes::default())),
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
            for (topic, parts) in lookup(broker, g.group_id.as_str(), wanted) {
                let mut tr = OffsetFetchResponseTopics::default();
                tr.name = TopicName(StrBytes::from_string(topic));
                for (partition, value) in parts {
                    let mut pr = OffsetFetchResponsePartitions::default();
                    pr.partition_index = partition;
                    (pr.committed_offset, pr.committed_leader_epoch, pr.metadata) = fields(value);
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
    for (topic, parts) in lookup(broker, request.group_id.as_str(), wanted) {
        let mut tr = OffsetFetchResponseTopic::default();
        tr.name = TopicName(StrBytes::from_string(topic));
        for (partition, value) in parts {
            let mut pr = OffsetFetchResponsePartition::default();
            pr.partition_index = partition;
            (pr.committed_offset, pr.committed_leader_epoch, pr.metadata) = fields(value);
            tr.partitions.push(pr);
        }
        response.topics.push(tr);
    }
    response
}
