//! Fetch (1): whole record batches from each requested partition, long-polling up
//! to `max_wait_ms` until `min_bytes` are available. Waiting fetches are woken by
//! appends, never by a timer loop. Fetch sessions (KIP-227) are not kept: session
//! id 0 tells clients to send full fetches, which is always legal.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::RequestContext;
use crate::broker::Broker;
use crate::error::Error;
use crate::log::manager::Topic;
use crate::protocol::response::{Spliced, Splices};

/// The topics of a request, resolved once (by id from v13, by name before).
struct Wanted {
    request: FetchTopic,
    topic: Option<Arc<Topic>>,
}

fn error_partition(index: i32, code: ResponseError) -> PartitionData {
    let mut p = PartitionData::default();
    p.partition_index = index;
    p.error_code = code.code();
    p.high_watermark = -1;
    p.last_stable_offset = -1;
    p.log_start_offset = -1;
    p
}

/// Record bytes one response may carry whatever the limits asked for: a frame's
/// size must fit an i32, and Kafka's own cap (`fetch.max.bytes`) is far below.
const RESPONSE_DATA_CAP: usize = 1 << 30;

/// One pass over every partition: what can be sent now (records as stand-ins for
/// their file ranges), and its size. Kafka's limits: `max_bytes` for the whole
/// response and `partition_max_bytes` per partition, except that the first
/// partition with data always gets at least one whole batch (so a batch larger
/// than the limits is never stuck); later ones get only batches that fit.
fn read_once(wanted: &[Wanted], version: i16, max_bytes: usize) -> (FetchResponse, Splices, usize, bool) {
    let max_bytes = max_bytes.min(RESPONSE_DATA_CAP);
    let mut response = FetchResponse::default();
    let mut splices = Splices::default();
    let mut total = 0usize;
    let mut any_error = false;
    for w in wanted {
        let mut tr = FetchableTopicResponse::default();
        tr.topic = w.request.topic.clone();
        tr.topic_id = w.request.topic_id;
        for fp in &w.request.partitions {
            let Some(topic) = &w.topic else {
                any_error = true;
                let code = if version >= 13 {
                    ResponseError::UnknownTopicId
                } else {
                    ResponseError::UnknownTopicOrPartition
                };
                tr.partitions.push(error_partition(fp.partition, code));
                continue;
            };
            let Some(partition) = usize::try_from(fp.partition).ok().and_then(|i| topic.partitions.get(i)) else {
                any_error = true;
                tr.partitions
                    .push(error_partition(fp.partition, ResponseError::UnknownTopicOrPartition));
                continue;
            };
            let (log_start, high_watermark) = partition.offsets();
            let budget = max_bytes.saturating_sub(total);
            let limit = (fp.partition_max_bytes.max(0) as usize).min(budget);
            let first_with_data = total == 0;
            let read = if limit == 0 {
                Ok(None)
            } else {
                partition
                    .read_slice(fp.fetch_offset, limit)
                    .map(|slice| slice.filter(|s| first_with_data || s.len <= limit))
            };
            let read = read.and_then(|slice| match slice {
                Some(slice) => Ok(splices.stand_in(slice)?),
                None => Ok(bytes::Bytes::new()),
            });
            let mut pd = match read {
                Ok(records) => {
                    total += records.len();
                    let mut pd = PartitionData::default();
                    pd.records = Some(records);
                    pd
                }
                Err(e) => {
                    any_error = true;
                    if !matches!(e, Error::OffsetOutOfRange { .. }) {
                        tracing::error!(topic = %topic.name, partition = fp.partition, error = %e, "fetch read failed");
                    }
                    error_partition(fp.partition, e.code())
                }
            };
            pd.partition_index = fp.partition;
            pd.high_watermark = high_watermark;
            pd.last_stable_offset = high_watermark;
            pd.log_start_offset = log_start;
            tr.partitions.push(pd);
        }
        response.responses.push(tr);
    }
    (response, splices, total, any_error)
}

/// Resolve each topic once (by id from v13, by name before), keeping only the
/// first mention of each partition: a full fetch names a partition once, and one
/// that names it thousands of times must not be served thousands of times.
fn resolve(broker: &Broker, version: i16, topics: Vec<FetchTopic>) -> Vec<Wanted> {
    let mut seen = std::collections::HashSet::new();
    topics
        .into_iter()
        .map(|mut t| {
            let topic = if version >= 13 {
                broker.logs.topic_by_id(&t.topic_id)
            } else {
                broker.logs.topic(t.topic.as_str())
            };
            let key = (t.topic.clone(), t.topic_id);
            t.partitions.retain(|p| seen.insert((key.clone(), p.partition)));
            Wanted { topic, request: t }
        })
        .filter(|w| !w.request.partitions.is_empty())
        .collect()
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: FetchRequest) -> Spliced<FetchResponse> {
    let version = ctx.api_version;
    let wanted = resolve(broker, version, request.topics);
    // The broker's fetch.max.bytes caps what a client may ask for.
    let max_bytes = (request.max_bytes.max(0) as usize).min(broker.config.fetch_max_bytes);
    let min_bytes = request.min_bytes.max(0) as usize;
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let waker = Arc::new(Notify::new());
    let mut shutdown = broker.shutting_down.clone();
    loop {
        // Register before reading, so an append between the read and the wait
        // still wakes this fetch.
        for w in &wanted {
            if let Some(t) = &w.topic {
                for fp in &w.request.partitions {
                    if let Some(p) = usize::try_from(fp.partition).ok().and_then(|i| t.partitions.get(i)) {
                        p.register_waiter(&waker);
                    }
                }
            }
        }
        let (response, splices, bytes, any_error) = read_once(&wanted, version, max_bytes);
        if bytes >= min_bytes || any_error || Instant::now() >= deadline || *shutdown.borrow() {
            return Spliced {
                message: response,
                splices,
            };
        }
        tokio::select! {
            _ = waker.notified() => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
    }
}
