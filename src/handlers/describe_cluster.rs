//! DescribeCluster (60): this broker, the cluster id, the controller.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    if !super::allowed(broker, ctx, Operation::Describe, ResourceType::Cluster, super::CLUSTER) {
        response.error_code = kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    let metadata = &broker.metadata;
    response.cluster_id = StrBytes::from_string(metadata.cluster_id().to_string());
    response.controller_id = BrokerId(metadata.controller_id());
    response.cluster_authorized_operations = match request.include_cluster_authorized_operations {
        true => broker.authorizer.authorized_operations(
            &ctx.principal,
            ctx.peer.ip(),
            ResourceType::Cluster,
            super::CLUSTER,
            &super::metadata::CLUSTER_OPERATIONS,
        ),
        false => i32::MIN,
    };
    response.brokers = metadata
        .alive_brokers(&ctx.listener.name)
        .into_iter()
        .map(|node| {
            let mut b = DescribeClusterBroker::default();
            b.broker_id = BrokerId(node.id);
            b.host = StrBytes::from_string(node.host);
            b.port = node.port;
            b.rack = node.rack.map(StrBytes::from_string);
            b
        })
        .collect();
    // v1: endpoint type 1 (brokers) is the only one a broker answers.
    response.endpoint_type = 1;
    response
}
