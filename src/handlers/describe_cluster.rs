//! DescribeCluster (60): this broker, the cluster id, the controller.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    response.cluster_id = StrBytes::from_string(broker.identity.cluster_id.clone());
    response.controller_id = BrokerId(broker.node_id());
    response.cluster_authorized_operations = i32::MIN;
    let mut b = DescribeClusterBroker::default();
    b.broker_id = BrokerId(broker.node_id());
    b.host = StrBytes::from_string(ctx.listener.advertised_host.clone());
    b.port = ctx.listener.advertised_port;
    response.brokers = vec![b];
    // v1: endpoint type 1 (brokers) is the only one a broker answers.
    response.endpoint_type = 1;
    response
}
