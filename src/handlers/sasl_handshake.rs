//! SaslHandshake (17) reaching the handlers: on a listener without SASL, or on a
//! connection already logged in (a login in progress is `server::sasl`'s).
//! Kafka answers ILLEGAL_SASL_STATE with no mechanisms, and the connection stays.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(_: &Arc<Broker>, _: &RequestContext, _: SaslHandshakeRequest) -> SaslHandshakeResponse {
    let mut response = SaslHandshakeResponse::default();
    response.error_code = ResponseError::IllegalSaslState.code();
    response
}
