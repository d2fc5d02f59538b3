//! Produce (0): append each partition's record batch; with acks=−1 answer only
//! once the data is fsynced.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::{RequestContext, Unanswered};
use crate::broker::Broker;
use crate::error::{Error, Result};
use crate::log::manager::is_internal_topic;
use crate::log::partition_log::{AppendInfo, Partition};
use crate::util::clock::now_ms;

fn partition_error(index: i32, e: &Error) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default();
    r.index = index;
    r.error_code = e.wire_code();
    r.error_message = Some(StrBytes::from_string(e.to_string()));
    r.base_offset = -1;
    r.log_append_time_ms = -1;
    r.log_start_offset = -1;
    r
}

fn append_one(
    broker: &Broker,
    topic: &str,
    index: i32,
    records: Option<bytes::Bytes>,
) -> Result<(Arc<Partition>, AppendInfo)> {
    if is_internal_topic(topic) {
        return Err(Error::InvalidTopic {
            name: topic.to_string(),
            reason: "internal topics are written by the broker only",
        });
    }
    let partition = broker.logs.partition(topic, index)?;
    let records = records
        .filter(|r| !r.is_empty())
        .ok_or(Error::InvalidRecord("no records"))?;
    // The batch is kept as sent and written from the request's buffer; only its
    // base offset and leader epoch are set, in a copy of the header.
    let info = partition.append(&records, now_ms())?;
    Ok((partition, info))
}

/// A produce request whose batches are appended, perhaps still waiting for fsyncs.
struct Appended {
    response: ProduceResponse,
    /// (topic index, partition index, partition, offset to make durable)
    waits: Vec<(usize, usize, Arc<Partition>, i64)>,
}

impl Appended {
    /// Wait until every appended batch is fsynced (acks=-1). fsyncs of different
    /// partitions and requests overlap and are shared.
    async fn durable(mut self) -> ProduceResponse {
        for (ti, pi, partition, offset) in std::mem::take(&mut self.waits) {
            if let Err(e) = partition.flush_to(offset, now_ms()).await {
                tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "fsync failed");
                let r = &mut self.response.responses[ti].partition_responses[pi];
                *r = partition_error(r.index, &Error::Io(e));
            }
        }
        self.response
    }
}

/// Append every batch, then (acks=-1) wait until they are durable. Everything up to
/// the wait runs before the connection's next request is handled.
#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id, acks = request.acks))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: ProduceRequest) -> Unanswered<ProduceResponse> {
    // acks=0: the client expects no response at all.
    let answered = request.acks != 0;
    let response = append(broker, request).durable().await;
    Unanswered(answered.then_some(response))
}

/// Append every partition's batch, in the order of the request.
fn append(broker: &Broker, request: ProduceRequest) -> Appended {
    let acks = request.acks;
    let mut response = ProduceResponse::default();
    let mut waits = Vec::new();
    for (ti, topic) in request.topic_data.into_iter().enumerate() {
        let mut tr = TopicProduceResponse::default();
        tr.name = topic.name.clone();
        tr.topic_id = topic.topic_id;
        for (pi, data) in topic.partition_data.into_iter().enumerate() {
            if !matches!(acks, -1..=1) {
                let mut r = partition_error(data.index, &Error::InvalidRequest(format!("acks={acks}")));
                r.error_code = ResponseError::InvalidRequiredAcks.code();
                tr.partition_responses.push(r);
                continue;
            }
            match append_one(broker, topic.name.as_str(), data.index, data.records) {
                Ok((partition, info)) => {
                    let mut r = PartitionProduceResponse::default();
                    r.index = data.index;
                    r.base_offset = info.base_offset;
                    r.log_append_time_ms = info.log_append_time;
                    r.log_start_offset = info.log_start_offset;
                    if acks == -1 {
                        waits.push((ti, pi, partition, info.log_end_offset));
                    } else if info.flush_due {
                        tokio::spawn(async move {
                            if let Err(e) = partition.flush_to(info.log_end_offset, now_ms()).await {
                                tracing::error!(error = %e, "flush failed");
                            }
                        });
                    }
                    tr.partition_responses.push(r);
                }
                Err(e) => {
                    tracing::debug!(topic = %topic.name.as_str(), partition = data.index, error = %e, "produce rejected");
                    tr.partition_responses.push(partition_error(data.index, &e));
                }
            }
        }
        response.responses.push(tr);
    }
    Appended { response, waits }
}
