//! ConsumerGroupHeartbeat (68, KIP-848): one request joins, heartbeats,
//! acknowledges revocations and leaves; its answer carries the member's epoch
//! and, when it has news, its assignment (topic ids and partitions).
//!
//! The request's own checks are here, in Kafka's order; the group's are in
//! `group::consumer`.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

use super::{unless_shutting_down, RequestContext};
use crate::broker::Broker;
use crate::error::Error;
use crate::group::consumer::assignor::Assignment as Partitions;
use crate::group::consumer::group::HeartbeatArgs;
use crate::group::consumer::topics;
use crate::security::acl::{Operation, ResourceType};
use crate::util::clock::now_ms;

/// Strings Kafka refuses when present but blank.
fn blank(s: &Option<StrBytes>) -> bool {
    s.as_ref().is_some_and(|s| s.trim().is_empty())
}

/// Kafka's request checks (GroupCoordinatorService), first failure wins.
fn check(broker: &Broker, version: i16, r: &ConsumerGroupHeartbeatRequest) -> Result<(), Error> {
    let invalid = |m: &str| Err(Error::InvalidRequest(m.to_string()));
    if (version >= 1 || r.member_epoch > 0 || r.member_epoch == -1) && r.member_id.trim().is_empty() {
        return invalid("MemberId can't be empty.");
    }
    if r.group_id.trim().is_empty() {
        return invalid("GroupId can't be empty.");
    }
    // Ids go into `__consumer_offsets` keys as int16-length strings.
    let too_long = |s: Option<&str>| s.is_some_and(|s| s.len() > i16::MAX as usize);
    if too_long(Some(&r.group_id)) || too_long(Some(&r.member_id)) || too_long(r.instance_id.as_deref()) {
        return invalid("GroupId, MemberId and InstanceId are at most 32767 bytes.");
    }
    if blank(&r.instance_id) {
        return invalid("InstanceId can't be empty.");
    }
    if blank(&r.rack_id) {
        return invalid("RackId can't be empty.");
    }
    match r.member_epoch {
        0 => {
            if r.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if r.topic_partitions.as_ref().is_none_or(|t| !t.is_empty()) {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            if r.subscribed_topic_names.is_none() && r.subscribed_topic_regex.is_none() {
                return invalid("Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.");
            }
        }
        -2 if r.instance_id.is_none() => return invalid("InstanceId can't be null."),
        e if e < -2 => return invalid("MemberEpoch is invalid."),
        _ => {}
    }
    if let Some(a) = &r.server_assignor {
        if !broker.groups.consumer_config().assignors.iter().any(|n| n == a.as_str()) {
            return Err(Error::UnsupportedAssignor(a.to_string()));
        }
    }
    if let Some(re) = r.subscribed_topic_regex.as_ref().filter(|re| !re.is_empty()) {
        topics::check(re)?;
    }
    Ok(())
}

fn refused(e: &Error) -> ConsumerGroupHeartbeatResponse {
    let mut response = ConsumerGroupHeartbeatResponse::default();
    response.error_code = e.wire_code();
    response.error_message = Some(StrBytes::from_string(e.to_string()));
    response
}

#[tracing::instrument(level = "trace", skip_all, fields(group = %request.group_id.as_str(), client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    if !broker.groups.consumer_config().enabled {
        return refused(&Error::UnsupportedVersion {
            api_key: 68,
            version: ctx.api_version,
        });
    }
    if !super::allowed(broker, ctx, Operation::Read, ResourceType::Group, request.group_id.as_str()) {
        return refused(&Error::GroupAuthorizationFailed(request.group_id.to_string()));
    }
    if let Some(names) = &request.subscribed_topic_names {
        if let Some(t) = names
            .iter()
            .find(|t| !super::allowed(broker, ctx, Operation::Describe, ResourceType::Topic, t.as_str()))
        {
            return refused(&Error::TopicAuthorizationFailed(t.to_string()));
        }
    }
    if let Err(e) = check(broker, ctx.api_version, &request) {
        return refused(&e);
    }
    // v0 lets the broker name a joining member.
    let member_id = match request.member_id.is_empty() {
        true => crate::util::uuid::to_base64(&uuid::Uuid::new_v4()),
        false => request.member_id.to_string(),
    };
    let args = HeartbeatArgs {
        member_id,
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.map(|s| s.to_string()),
        rack_id: request.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .map(|names| names.iter().map(|n| n.to_string()).collect()),
        subscribed_topic_regex: request.subscribed_topic_regex.map(|s| s.to_string()),
        server_assignor: request.server_assignor.map(|s| s.to_string()),
        owned: request.topic_partitions.map(|tps| {
            let mut owned = Partitions::new();
            for tp in tps {
                owned.entry(tp.topic_id).or_default().extend(tp.partitions);
            }
            owned
        }),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
    };
    let group_id = request.group_id.to_string();
    let result = match broker.groups.shard(&group_id) {
        Ok(shard) => unless_shutting_down(broker, shard.consumer_heartbeat(&group_id, args, now_ms())).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(r) => {
            let mut response = ConsumerGroupHeartbeatResponse::default();
            response.member_id = Some(StrBytes::from_string(r.member_id));
            response.member_epoch = r.member_epoch;
            response.heartbeat_interval_ms = r.heartbeat_interval_ms;
            response.assignment = r.assignment.map(|a| {
                let mut assignment = Assignment::default();
                assignment.topic_partitions = a
                    .into_iter()
                    .map(|(topic_id, ps)| {
                        let mut tp = TopicPartitions::default();
                        tp.topic_id = topic_id;
                        tp.partitions = ps.into_iter().collect();
                        tp
                    })
                    .collect();
                assignment
            });
            response
        }
        Err(e) => {
            tracing::debug!(error = %e, "consumer group heartbeat refused");
            refused(&e)
        }
    }
}
