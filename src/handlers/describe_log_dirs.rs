//! DescribeLogDirs (35): the data directory, the size of each partition in it, and
//! (v4) the file system's total and usable bytes.

use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    if !super::allowed(broker, ctx, Operation::Describe, ResourceType::Cluster, super::CLUSTER) {
        let mut response = DescribeLogDirsResponse::default();
        response.error_code = kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    let mut result = DescribeLogDirsResult::default();
    let dir = broker
        .config
        .data_dir
        .canonicalize()
        .unwrap_or(broker.config.data_dir.clone());
    result.log_dir = StrBytes::from_string(dir.display().to_string());
    let (total, usable) = crate::util::fs::disk_space(&dir).unwrap_or((-1, -1));
    result.total_bytes = total;
    result.usable_bytes = usable;
    for topic in broker.logs.topics() {
        let wanted: Option<Vec<i32>> = match &request.topics {
            None => None,
            Some(ts) => match ts.iter().find(|t| t.topic.as_str() == topic.name) {
                Some(t) => Some(t.partitions.clone()),
                None => continue,
            },
        };
        let mut t = DescribeLogDirsTopic::default();
        t.name = TopicName(StrBytes::from_string(topic.name.clone()));
        for p in &topic.partitions {
            if wanted.as_ref().is_some_and(|w| !w.contains(&p.index)) {
                continue;
            }
            let mut dp = DescribeLogDirsPartition::default();
            dp.partition_index = p.index;
            dp.partition_size = p.size_bytes() as i64;
            t.partitions.push(dp);
        }
        result.topics.push(t);
    }
    let mut response = DescribeLogDirsResponse::default();
    response.results = vec![result];
    response
}
