//! Request handlers, one file per Kafka API, and THE registry of what this broker
//! implements. ApiVersions answers from the registry, and dispatch refuses what is
//! not in it, so the two can never disagree.

mod api_versions;
mod create_topics;
mod delete_topics;
mod fetch;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod produce;

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::task::JoinHandle;

use crate::broker::{Broker, ListenerInfo};
use crate::protocol::header::{encode_response_header, Request};

/// An implemented API and the versions it is advertised and served with.
#[derive(Debug, Clone, Copy)]
pub struct ApiSpec {
    pub key: ApiKey,
    /// Lowest version advertised in ApiVersions.
    pub advertised_min: i16,
    /// Lowest version actually served; versions below it (but advertised) are
    /// answered with UNSUPPORTED_VERSION.
    pub min: i16,
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> ApiSpec {
    ApiSpec {
        key,
        advertised_min: min,
        min,
        max,
    }
}

/// Every API strom implements, with the versions it serves.
pub const APIS: &[ApiSpec] = &[
    // Produce is advertised from v0 as Kafka 4 does: librdkafka before 2.11.1
    // disables compression otherwise. v0–2 are answered with UNSUPPORTED_VERSION.
    ApiSpec {
        key: ApiKey::Produce,
        advertised_min: 0,
        min: 3,
        max: 10,
    },
    api(ApiKey::Fetch, 4, 16),
    api(ApiKey::ListOffsets, 1, 7),
    api(ApiKey::Metadata, 0, 12),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::InitProducerId, 0, 4),
];

pub fn spec(api_key: i16) -> Option<&'static ApiSpec> {
    APIS.iter().find(|s| s.key as i16 == api_key)
}

/// What a handler knows about the request besides its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    pub listener: Arc<ListenerInfo>,
}

/// A request body that does not decode, or (a broker bug) a response that does not
/// encode: the connection is closed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} {api:?} v{version}: {reason}")]
pub struct CodecError {
    what: &'static str,
    api: ApiKey,
    version: i16,
    reason: String,
}

/// Frame an encoded response: size, header, body.
fn frame_response<R: Encodable>(api: ApiKey, ctx: &RequestContext, response: &R) -> Result<Bytes, CodecError> {
    let version = ctx.api_version;
    let mut out = BytesMut::with_capacity(64);
    out.put_i32(0);
    encode_response_header(&mut out, ctx.correlation_id, api.response_header_version(version));
    response.encode(&mut out, version).map_err(|e| {
        tracing::error!(api = ?api, version, error = %e, "response does not encode");
        CodecError {
            what: "encode the response of",
            api,
            version,
            reason: e.to_string(),
        }
    })?;
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out.freeze())
}

/// The answer to a request this broker does not serve: the correlation id and
/// UNSUPPORTED_VERSION (35) as the first field, which is where most responses
/// carry their error code. Clients that read ApiVersions first never see it.
fn unsupported(ctx: &RequestContext) -> Bytes {
    let mut out = BytesMut::with_capacity(10);
    out.put_i32(6);
    out.put_i32(ctx.correlation_id);
    out.put_i16(kafka_protocol::error::ResponseError::UnsupportedVersion.code());
    out.freeze()
}

/// What the connection sends back for one request, in request order.
pub enum Reply {
    /// Nothing at all (acks=0 produce).
    Nothing,
    Now(Bytes),
    /// A response still being produced (a long poll, a rebalance, an fsync). The
    /// connection goes on reading and handling later requests meanwhile, and writes
    /// this one in its turn.
    Later(JoinHandle<Result<Option<Bytes>, CodecError>>),
}

fn decode<R: Decodable>(api: ApiKey, ctx: &RequestContext, mut body: Bytes) -> Result<R, CodecError> {
    R::decode(&mut body, ctx.api_version).map_err(|e| CodecError {
        what: "decode",
        api,
        version: ctx.api_version,
        reason: e.to_string(),
    })
}

/// Decode, run the handler to completion, frame its response.
macro_rules! now {
    ($broker:expr, $ctx:expr, $body:expr, $key:expr, $handler:path) => {{
        let request = decode($key, $ctx, $body)?;
        let response = $handler($broker, $ctx, request).await;
        Ok(Reply::Now(frame_response($key, $ctx, &response)?))
    }};
}

/// Decode now (a bad body closes the connection at once), run the handler in its
/// own task: for requests that may wait.
macro_rules! later {
    ($broker:expr, $ctx:expr, $body:expr, $key:expr, $handler:path) => {{
        let request = decode($key, $ctx, $body)?;
        let (broker, ctx) = ($broker.clone(), $ctx.clone());
        Ok(Reply::Later(tokio::spawn(async move {
            let response = $handler(&broker, &ctx, request).await;
            frame_response($key, &ctx, &response).map(Some)
        })))
    }};
}

/// Decode and handle one request.
pub async fn dispatch(broker: &Arc<Broker>, ctx: &RequestContext, request: Request) -> Result<Reply, CodecError> {
    let served = spec(request.api_key).filter(|s| (s.min..=s.max).contains(&request.api_version));
    let Some(spec) = served else {
        tracing::info!(
            api_key = request.api_key,
            api_version = request.api_version,
            client_id = ?ctx.client_id,
            "unsupported API or version"
        );
        if request.api_key == ApiKey::ApiVersions as i16 {
            // KIP-511: answer in the v0 layout with the full table.
            let v0 = RequestContext {
                api_version: 0,
                ..ctx.clone()
            };
            let response = api_versions::table(kafka_protocol::error::ResponseError::UnsupportedVersion.code());
            return Ok(Reply::Now(frame_response(ApiKey::ApiVersions, &v0, &response)?));
        }
        return Ok(Reply::Now(unsupported(ctx)));
    };
    let (key, body) = (spec.key, request.body);
    match key {
        ApiKey::ApiVersions => now!(broker, ctx, body, key, api_versions::handle),
        ApiKey::Metadata => now!(broker, ctx, body, key, metadata::handle),
        ApiKey::Fetch => later!(broker, ctx, body, key, fetch::handle),
        ApiKey::ListOffsets => now!(broker, ctx, body, key, list_offsets::handle),
        ApiKey::CreateTopics => now!(broker, ctx, body, key, create_topics::handle),
        ApiKey::DeleteTopics => now!(broker, ctx, body, key, delete_topics::handle),
        ApiKey::InitProducerId => now!(broker, ctx, body, key, init_producer_id::handle),
        ApiKey::Produce => {
            // Appends happen here, in request order; only the wait for the fsync
            // (acks=-1) is deferred, so pipelined requests share group commits.
            let request: ProduceRequest = decode(key, ctx, body)?;
            let acks = request.acks;
            let appended = produce::append(broker, ctx, request);
            if acks == 0 {
                return Ok(Reply::Nothing);
            }
            if appended.is_complete() {
                return Ok(Reply::Now(frame_response(key, ctx, &appended.response)?));
            }
            let ctx = ctx.clone();
            Ok(Reply::Later(tokio::spawn(async move {
                let response = appended.durable().await;
                frame_response(key, &ctx, &response).map(Some)
            })))
        }
        _ => Ok(Reply::Now(unsupported(ctx))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_within_what_the_codec_can_encode() {
        for s in APIS {
            let codec = s.key.valid_versions();
            assert!(s.min >= codec.min && s.max <= codec.max, "{:?}", s.key);
            assert!(s.advertised_min <= s.min);
        }
    }

    #[test]
    fn produce_is_advertised_from_v0_but_served_from_v3() {
        let p = spec(0).unwrap();
        assert_eq!((p.advertised_min, p.min, p.max), (0, 3, 10));
        assert!(spec(9999).is_none());
    }
}
