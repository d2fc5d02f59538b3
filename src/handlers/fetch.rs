//! Fetch (1): whole record batches from each requested partition, through the
//! replica manager, which long-polls up to `max_wait_ms` until `min_bytes` are
//! there. Record data stays in the segment files: each partition's records are a
//! stand-in for a file range, sent by `sendfile`. Fetch sessions (KIP-227) are not
//! kept: session id 0 tells clients to send full fetches, which is always legal.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId};

use super::{allowed, RequestContext};
use crate::broker::Broker;
use crate::error::Error;
use crate::metrics::PartitionTraffic;
use crate::protocol::response::{Spliced, Splices};
use crate::record::legacy;
use crate::config::cluster::ReplicaSelector;
use crate::replica::replica_manager::{FetchParams, FetchPartition};
use crate::replica::selector;
use crate::security::acl::{Operation, ResourceType};

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: FetchRequest) -> Spliced<FetchResponse> {
    let by_id = ctx.api_version >= 13;
    // Each topic resolved once (by id from v13, by name before), each partition
    // served at its first mention only: a full fetch names a partition once, and
    // one that names it thousands of times must not be served thousands of times.
    let mut seen = HashSet::new();
    let mut wanted = Vec::new();
    // Per partition: the error it gets whatever the log says (an unknown topic
    // id, or a topic the principal may not READ).
    let mut refused = Vec::new();
    // A follower's fetch (a broker of the cluster, allowed CLUSTER_ACTION):
    // it reads to the log end and its progress moves the high watermark.
    let replica_id = match ctx.api_version {
        15.. => request.replica_state.replica_id.0,
        _ => request.replica_id.0,
    };
    let replica = (replica_id >= 0
        && broker.metadata.is_cluster()
        && allowed(broker, ctx, Operation::ClusterAction, ResourceType::Cluster, super::CLUSTER))
    .then_some(replica_id);
    // A consumer's fetch from v11 may read from a follower, and names its
    // rack (KIP-392): the leader may send it to a replica in that rack.
    let followers_too = ctx.api_version >= 11 && replica.is_none();
    let rack = request.rack_id.as_str();
    let select = followers_too
        && !rack.is_empty()
        && broker.config.cluster.replica_selector == ReplicaSelector::RackAware;
    let mut response = FetchResponse::default();
    for topic in &request.topics {
        let log_topic = if by_id {
            broker.metadata.topic_by_id(&topic.topic_id)
        } else {
            broker.metadata.topic(topic.topic.as_str())
        };
        let name = log_topic.as_ref().map_or(topic.topic.as_str(), |t| t.name.as_str());
        // A follower is authorized by CLUSTER_ACTION alone, as in Kafka.
        let refusal = if replica.is_none() && !allowed(broker, ctx, Operation::Read, ResourceType::Topic, name) {
            Some(ResponseError::TopicAuthorizationFailed.code())
        } else if by_id && log_topic.is_none() {
            Some(ResponseError::UnknownTopicId.code())
        } else {
            None
        };
        let log_topic = log_topic.filter(|_| refusal.is_none());
        let mut tr = FetchableTopicResponse::default();
        tr.topic = topic.topic.clone();
        tr.topic_id = topic.topic_id;
        for fp in &topic.partitions {
            if !seen.insert((topic.topic.clone(), topic.topic_id, fp.partition)) {
                continue;
            }
            // A partition this broker leads (or, for consumers from v11, holds
            // a replica of), at the leader epoch the client names (v9+; −1
            // before): otherwise NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH or
            // UNKNOWN_LEADER_EPOCH, and the client refreshes its metadata.
            let epoch = fp.current_leader_epoch;
            let (log, refusal) = match &log_topic {
                None => (None, refusal),
                Some(t) => match broker.replicas.readable_log(&t.name, fp.partition, epoch, followers_too) {
                    Ok(log) => (Some(log), None),
                    Err(Error::UnknownTopicOrPartition { .. }) => (None, None),
                    Err(e) => (None, Some(e.wire_code())),
                },
            };
            refused.push(refusal);
            let preferred_read_replica = log.as_ref().filter(|_| select).and_then(|log| {
                let listener = ctx.listener.name.as_str();
                let rack_of = |id| broker.metadata.node(id, listener).map(|n| n.rack);
                let (leader, followers) = broker.replicas.read_replicas(log, fp.fetch_offset, rack_of)?;
                selector::rack_aware(rack, &leader, &followers)
            });
            wanted.push(FetchPartition {
                topic: log_topic.as_ref().map_or_else(|| topic.topic.to_string(), |t| t.name.clone()),
                partition: fp.partition,
                fetch_offset: fp.fetch_offset,
                max_bytes: fp.partition_max_bytes,
                last_fetched_epoch: if ctx.api_version >= 12 { fp.last_fetched_epoch } else { -1 },
                log_start_offset: if ctx.api_version >= 5 { fp.log_start_offset } else { -1 },
                preferred_read_replica,
                log,
            });
            let mut pd = PartitionData::default();
            pd.partition_index = fp.partition;
            tr.partitions.push(pd);
        }
        if !tr.partitions.is_empty() {
            response.responses.push(tr);
        }
    }
    let params = FetchParams {
        max_wait: Duration::from_millis(request.max_wait_ms.max(0) as u64),
        min_bytes: request.min_bytes.max(0) as usize,
        // The broker's fetch.max.bytes caps what a client may ask for.
        max_bytes: (request.max_bytes.max(0) as usize).min(broker.config.fetch_max_bytes),
        // isolation_level (v4+): 1 is read_committed.
        read_committed: request.isolation_level == 1,
        replica,
    };
    let read = broker.replicas.fetch_messages(params, &wanted).await;
    // Fetch v0–3 clients read message sets of magic 0 (v0–1) or 1 (v2–3): the
    // records are converted in memory for them, as Kafka did.
    let old_magic = match ctx.wire_version {
        0 | 1 => Some(0),
        2 | 3 => Some(1),
        _ => None,
    };
    // Converted, records can be far larger than what was read (a compressed batch
    // may hold megabytes of zeros): each partition gets what it asked for, from
    // a budget of the broker's fetch.max.bytes for the whole response, and never
    // less than what was read (one message at least).
    let mut conversion_budget = broker.config.fetch_max_bytes;
    let mut splices = Splices::default();
    let mut hints = super::leader_hints::LeaderHints::new(broker, ctx);
    let partitions = response.responses.iter_mut().flat_map(|t| t.partitions.iter_mut());
    for (pd, ((data, w), refusal)) in partitions.zip(read.into_iter().zip(&wanted).zip(refused)) {
        pd.high_watermark = data.high_watermark;
        pd.last_stable_offset = data.last_stable_offset;
        pd.log_start_offset = data.log_start_offset;
        pd.preferred_read_replica = BrokerId(w.preferred_read_replica.unwrap_or(-1));
        if let Some((epoch, end_offset)) = data.diverging {
            pd.diverging_epoch.epoch = epoch;
            pd.diverging_epoch.end_offset = end_offset;
        }
        // read_committed gets a list (maybe empty), read_uncommitted none: some
        // clients tell the two apart.
        pd.aborted_transactions = data.aborted.map(|aborted| {
            aborted
                .into_iter()
                .map(|a| {
                    let mut t = AbortedTransaction::default();
                    t.producer_id = ProducerId(a.producer_id);
                    t.first_offset = a.first_offset;
                    t
                })
                .collect()
        });
        let records = data.records.and_then(|slice| match (slice, old_magic) {
            (None, _) => Ok(Default::default()),
            (Some(s), None) => Ok(splices.stand_in(s)?),
            // A topic with message.downconversion.enable=false serves no old
            // fetcher (Kafka 3.x: UNSUPPORTED_VERSION).
            (Some(_), Some(_)) if w.log.as_ref().is_some_and(|l| !l.config().message_downconversion_enable) => {
                Err(Error::UnsupportedVersion {
                    api_key: 1,
                    version: ctx.wire_version,
                })
            }
            (Some(s), Some(magic)) => {
                let limit = s.len.max((w.max_bytes.max(0) as usize).min(conversion_budget));
                let converted = legacy::down_convert(&s.read()?, magic, w.fetch_offset, limit)?;
                conversion_budget = conversion_budget.saturating_sub(converted.len());
                Ok(converted)
            }
        });
        // Bytes out to consumers (Kafka's BytesOutPerSec) leave out what
        // followers copy (ReplicationBytesOutPerSec).
        let bytes = records.as_ref().map_or(0, |r| r.len() as u64);
        if replica.is_some() {
            broker.metrics.replicated_out(bytes);
        }
        broker.metrics.fetched(PartitionTraffic {
            topic: &w.topic,
            bytes: if replica.is_some() { 0 } else { bytes },
            records: 0,
            failed: records.is_err(),
            known: w.log.is_some(),
        });
        match records {
            Ok(records) => pd.records = Some(records),
            Err(e) => {
                let expected = refusal.is_some()
                    || matches!(
                    e,
                    Error::OffsetOutOfRange { .. }
                        | Error::UnknownTopicOrPartition { .. }
                        | Error::UnsupportedVersion { .. }
                        | Error::NotLeaderOrFollower { .. }
                );
                if !expected {
                    tracing::error!(topic = %w.topic, partition = w.partition, error = %e, "fetch read failed");
                }
                pd.error_code = refusal.unwrap_or_else(|| e.wire_code());
                if let Some((leader, epoch)) = hints.hint(pd.error_code, &w.topic, w.partition) {
                    pd.current_leader.leader_id = BrokerId(leader);
                    pd.current_leader.leader_epoch = epoch;
                }
                pd.high_watermark = -1;
                pd.last_stable_offset = -1;
                pd.log_start_offset = -1;
            }
        }
    }
    let bytes: usize = response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    response.node_endpoints = hints.fetch_endpoints();
    response.throttle_time_ms = super::charge(broker, ctx, crate::quota::Kind::Fetch, bytes as f64);
    Spliced {
        message: response,
        splices,
    }
}
