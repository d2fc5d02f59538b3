//! SaslAuthenticate (36) reaching the handlers: no login is in progress on this
//! connection (see `sasl_handshake`), so ILLEGAL_SASL_STATE, as Kafka answers.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};

use super::{str_bytes, RequestContext};
use crate::broker::Broker;

pub async fn handle(_: &Arc<Broker>, _: &RequestContext, _: SaslAuthenticateRequest) -> SaslAuthenticateResponse {
    let mut response = SaslAuthenticateResponse::default();
    response.error_code = ResponseError::IllegalSaslState.code();
    response.error_message = Some(str_bytes(
        "SaslAuthenticate request received after successful authentication",
    ));
    response
}
