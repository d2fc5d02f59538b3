//! ConsumerGroupDescribe (69, KIP-848): a consumer-protocol group with its epochs,
//! assignor and members, each with its current and target assignment. A classic
//! group or an unknown id answers GROUP_ID_NOT_FOUND, as in Kafka.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::error::Error;
use crate::group::coordinator::{GroupType, NamedAssignment};
use crate::security::acl::{Operation, ResourceType};

fn assignment(a: NamedAssignment) -> Assignment {
    let mut out = Assignment::default();
    // Kafka leaves out topics its metadata no longer has.
    out.topic_partitions = a
        .into_iter()
        .filter(|(_, name, _)| !name.is_empty())
        .map(|(id, name, partitions)| {
            let mut tp = TopicPartitions::default();
            tp.topic_id = id;
            tp.topic_name = TopicName(StrBytes::from_string(name));
            tp.partitions = partitions;
            tp
        })
        .collect();
    out
}

fn failed(g: &mut DescribedGroup, e: Error) {
    g.error_code = e.wire_code();
    g.error_message = Some(StrBytes::from_string(e.to_string()));
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let mut response = ConsumerGroupDescribeResponse::default();
    for id in request.group_ids {
        let mut g = DescribedGroup::default();
        g.authorized_operations = i32::MIN;
        if !super::allowed(broker, ctx, Operation::Describe, ResourceType::Group, id.as_str()) {
            failed(&mut g, Error::GroupAuthorizationFailed(id.to_string()));
            g.group_id = id;
            response.groups.push(g);
            continue;
        }
        let shard = match broker.groups.shard(id.as_str()) {
            Ok(shard) => shard,
            Err(e) => {
                failed(&mut g, e);
                g.group_id = id;
                response.groups.push(g);
                continue;
            }
        };
        let Some(d) = shard.describe_consumer(id.as_str()) else {
            let e = match shard.group_type(id.as_str()) {
                Some(GroupType::Classic) => format!("Group {} is not a consumer group.", id.as_str()),
                _ => format!("Group {} not found.", id.as_str()),
            };
            failed(&mut g, Error::GroupIdNotFound(id.to_string()));
            g.error_message = Some(StrBytes::from_string(e));
            g.group_id = id;
            response.groups.push(g);
            continue;
        };
        g.group_state = StrBytes::from_static_str(d.state);
        g.group_epoch = d.group_epoch;
        g.assignment_epoch = d.assignment_epoch;
        g.assignor_name = StrBytes::from_string(d.assignor);
        if request.include_authorized_operations {
            g.authorized_operations = broker.authorizer.authorized_operations(
                &ctx.principal,
                ctx.peer.ip(),
                ResourceType::Group,
                id.as_str(),
                &[Operation::Read, Operation::Describe, Operation::Delete],
            );
        }
        g.members = d
            .members
            .into_iter()
            .map(|m| {
                let mut dm = Member::default();
                dm.member_id = StrBytes::from_string(m.member_id);
                dm.instance_id = m.instance_id.map(StrBytes::from_string);
                dm.rack_id = m.rack_id.map(StrBytes::from_string);
                dm.member_epoch = m.member_epoch;
                dm.client_id = StrBytes::from_string(m.client_id);
                dm.client_host = StrBytes::from_string(m.client_host);
                dm.subscribed_topic_names = m
                    .subscribed_topic_names
                    .into_iter()
                    .map(|n| TopicName(StrBytes::from_string(n)))
                    .collect();
                dm.subscribed_topic_regex = m.subscribed_topic_regex.map(StrBytes::from_string);
                dm.assignment = assignment(m.assignment);
                dm.target_assignment = assignment(m.target);
                // KIP-1099: 0 classic, 1 consumer.
                dm.member_type = if m.classic { 0 } else { 1 };
                dm
            })
            .collect();
        g.group_id = id;
        response.groups.push(g);
    }
    response
}
