//! FindCoordinator (10): this broker coordinates every group. Transaction
//! coordinators do not exist yet.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::error::Error;

const GROUP_KEY: i8 = 0;

/// (node, error) for one key.
fn locate(broker: &Broker, key_type: i8, key: &str) -> Result<i32, Error> {
    match key_type {
        GROUP_KEY if key.is_empty() => Err(Error::InvalidGroupId(key.to_string())),
        GROUP_KEY => Ok(broker.node_id()),
        _ => Err(Error::CoordinatorNotAvailable("this key type (transactions are not supported yet)")),
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(client = ?ctx.client_id))]
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let host = StrBytes::from_string(ctx.listener.advertised_host.clone());
    let port = ctx.listener.advertised_port;
    let mut response = FindCoordinatorResponse::default();
    if ctx.api_version >= 4 {
        // v4+: a batch of keys, one coordinator entry each.
        for key in request.coordinator_keys {
            let mut c = Coordinator::default();
            match locate(broker, request.key_type, key.as_str()) {
                Ok(node) => {
                    c.node_id = BrokerId(node);
                    c.host = host.clone();
                    c.port = port;
                }
                Err(e) => {
                    c.node_id = BrokerId(-1);
                    c.port = -1;
                    (c.error_code, c.error_message) = super::error_message(&e);
                }
            }
            c.key = key;
            response.coordinators.push(c);
        }
        return response;
    }
    match locate(broker, request.key_type, request.key.as_str()) {
        Ok(node) => {
            response.node_id = BrokerId(node);
            response.host = host;
            response.port = port;
        }
        Err(e) => {
            response.node_id = BrokerId(-1);
            response.port = -1;
            (response.error_code, response.error_message) = super::error_message(&e);
        }
    }
    response
}
