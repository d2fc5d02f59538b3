//! WriteTxnMarkers (27): between a cluster's brokers, a transaction
//! coordinator has the leader of a partition its transaction wrote to append
//! the COMMIT or ABORT marker there (brokers only: CLUSTER_ACTION). The answer
//! for a partition comes once its in-sync replicas have the marker;
//! NOT_LEADER_OR_FOLLOWER sends the coordinator to the new leader. A marker
//! in `__consumer_offsets` also completes the offsets the transaction
//! committed.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use super::{allowed, RequestContext, CLUSTER};
use crate::broker::Broker;
use crate::record::control::{Marker, MarkerType};
use crate::security::acl::{Operation, ResourceType};

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let permitted = allowed(broker, ctx, Operation::ClusterAction, ResourceType::Cluster, CLUSTER);
    let mut response = WriteTxnMarkersResponse::default();
    for m in request.markers {
        let marker = Marker {
            kind: match m.transaction_result {
                true => MarkerType::Commit,
                false => MarkerType::Abort,
            },
            coordinator_epoch: m.coordinator_epoch,
        };
        let mut result = WritableTxnMarkerResult::default();
        result.producer_id = m.producer_id;
        for t in m.topics {
            let mut tr = WritableTxnMarkerTopicResult::default();
            for p in t.partition_indexes {
                let mut pr = WritableTxnMarkerPartitionResult::default();
                pr.partition_index = p;
                pr.error_code = if !permitted {
                    ResponseError::ClusterAuthorizationFailed.code()
                } else {
                    let (b, partition) = (broker.clone(), (t.name.to_string(), p));
                    let (pid, epoch) = (m.producer_id.0, m.producer_epoch);
                    let written = crate::util::fs::blocking(move || {
                        b.markers().write_local(&partition, pid, epoch, marker)
                    })
                    .await;
                    match written {
                        Ok(()) => 0,
                        Err(e) => {
                            tracing::debug!(topic = %t.name.as_str(), partition = p, error = %e, "marker not written");
                            e.wire_code()
                        }
                    }
                };
                tr.partitions.push(pr);
            }
            tr.name = t.name;
            result.topics.push(tr);
        }
        response.markers.push(result);
    }
    response
}
