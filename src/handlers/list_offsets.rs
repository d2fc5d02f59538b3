//! ListOffsets (2): earliest (−2), latest (−1), max timestamp (−3, v7+), earliest
//! local (−4, v8+), latest tiered (−5, v9+), or the
//! first offset whose record timestamp is at or after a given time (via the time
//! index).

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::error::Result;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// v8+ (KIP-405): the first offset still on local disk.
const EARLIEST_LOCAL: i64 = -4;
/// v9+ (KIP-1005): the last offset in tiered storage.
const LATEST_TIERED: i64 = -5;

/// (timestamp, offset, leader epoch) for one query: the epoch of the leader
/// that wrote the offset (−1 when none has: an empty log).
fn lookup(broker: &Broker, topic: &str, q: &ListOffsetsPartition, read_committed: bool) -> Result<(i64, i64, i32)> {
    // The leader answers, at the epoch the client names (v4+; −1 before).
    let p = broker.replicas.leader_log(topic, q.partition_index, q.current_leader_epoch)?;
    let timestamp = q.timestamp;
    let (timestamp, offset) = match timestamp {
        // read_committed consumers see up to the last stable offset.
        LATEST if read_committed => (-1, p.last_stable_offset()),
        LATEST => (-1, p.high_watermark()),
        EARLIEST => (-1, p.log_start_offset()),
        MAX_TIMESTAMP => p.max_timestamp()?.unwrap_or((-1, -1)),
        // The whole log is local, and nothing is tiered: Kafka's answers
        // without remote storage.
        EARLIEST_LOCAL => (-1, p.log_start_offset()),
        LATEST_TIERED => (-1, -1),
        t if t >= 0 => p.offset_for_timestamp(t)?.unwrap_or((-1, -1)),
        // Any other negative spec: the earliest.
        _ => (-1, p.log_start_offset()),
    };
    let epoch = match offset {
        -1 => -1,
        offset => p.epoch_for_offset(offset).unwrap_or(-1),
    };
    Ok((timestamp, offset, epoch))
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let mut response = ListOffsetsResponse::default();
    for topic in request.topics {
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = topic.name.clone();
        for q in topic.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = q.partition_index;
            let read_committed = request.isolation_level == 1;
            if !super::allowed(broker, ctx, Operation::Describe, ResourceType::Topic, topic.name.as_str()) {
                pr.error_code = kafka_protocol::error::ResponseError::TopicAuthorizationFailed.code();
                (pr.timestamp, pr.offset) = (-1, -1);
                tr.partitions.push(pr);
                continue;
            }
            match lookup(broker, topic.name.as_str(), &q, read_committed) {
                Ok((timestamp, offset, epoch)) => {
                    pr.timestamp = timestamp;
                    pr.offset = offset;
                    // leader_epoch exists from v4 on; the codec refuses it earlier.
                    if ctx.api_version >= 4 {
                        pr.leader_epoch = epoch;
                    }
                }
                Err(e) => {
                    pr.error_code = e.wire_code();
                    pr.timestamp = -1;
                    pr.offset = -1;
                }
            }
            tr.partitions.push(pr);
        }
        response.topics.push(tr);
    }
    response
}
