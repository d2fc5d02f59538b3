//! Request handlers, one file per Kafka API, and THE registry of what this broker
//! implements. ApiVersions answers from the registry, and dispatch refuses what is
//! not in it, so the two can never disagree.

mod alter_configs;
mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod produce;
mod sync_group;

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use std::future::Future;
use std::task::{Context, Poll, Waker};

use tokio::task::JoinHandle;

use crate::broker::{Broker, ListenerInfo};
use crate::protocol::header::{encode_response_header, Request};
use crate::server::response::{ResponseFrame, SpliceBuf, Splices};

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
    api(ApiKey::FindCoordinator, 0, 4),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::OffsetCommit, 2, 9),
    api(ApiKey::OffsetFetch, 1, 9),
    api(ApiKey::DescribeGroups, 0, 5),
    api(ApiKey::ListGroups, 0, 4),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::OffsetDelete, 0, 0),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::DescribeCluster, 0, 1),
    api(ApiKey::DescribeLogDirs, 1, 4),
];

pub fn spec(api_key: i16) -> Option<&'static ApiSpec> {
    APIS.iter().find(|s| s.key as i16 == api_key)
}

/// What a handler knows about the request besides its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub peer: std::net::SocketAddr,
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
fn frame_response<R: Encodable>(api: ApiKey, ctx: &RequestContext, response: &R) -> Result<ResponseFrame, CodecError> {
    frame_spliced(api, ctx, response, Splices::default())
}

/// Frame a response whose record fields may be stand-ins for file ranges.
fn frame_spliced<R: Encodable>(
    api: ApiKey,
    ctx: &RequestContext,
    response: &R,
    splices: Splices,
) -> Result<ResponseFrame, CodecError> {
    let version = ctx.api_version;
    let mut out = SpliceBuf::new(splices, 256);
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
    out.finish().ok_or_else(|| {
        tracing::error!(api = ?api, version, "response larger than a frame can be");
        CodecError {
            what: "frame the response of",
            api,
            version,
            reason: "larger than 2 GiB".into(),
        }
    })
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
    Now(ResponseFrame),
    /// A response still being produced (a long poll, a rebalance, an fsync). The
    /// connection goes on reading and handling later requests meanwhile, and writes
    /// this one in its turn.
    Later(JoinHandle<Result<Option<ResponseFrame>, CodecError>>),
}

fn decode<R: Decodable>(api: ApiKey, ctx: &RequestContext, mut body: Bytes) -> Result<R, CodecError> {
    R::decode(&mut body, ctx.api_version).map_err(|e| CodecError {
        what: "decode",
        api,
        version: ctx.api_version,
        reason: e.to_string(),
    })
}

/// Run a handler up to its first wait, right here, in request order: everything it
/// does before waiting (appending, joining a group, committing) happens before the
/// next request of the connection is looked at. If it then has to wait, it goes on
/// in its own task and the connection moves on.
fn run<F>(handler: F) -> Result<Reply, CodecError>
where
    F: Future<Output = Result<Option<ResponseFrame>, CodecError>> + Send + 'static,
{
    let mut handler = Box::pin(handler);
    // Polling with a no-op waker is sound: tokio's futures register the waker of
    // their latest poll, which will be the task's once spawned.
    match handler.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(Some(bytes))) => Ok(Reply::Now(bytes)),
        Poll::Ready(Ok(None)) => Ok(Reply::Nothing),
        Poll::Ready(Err(e)) => Err(e),
        Poll::Pending => Ok(Reply::Later(tokio::spawn(handler))),
    }
}

/// Decode the body (a bad one closes the connection at once) and run `$handler`;
/// no response when `$silent(&request)`.
macro_rules! serve {
    ($broker:expr, $ctx:expr, $body:expr, $key:expr, $handler:path) => {
        serve!($broker, $ctx, $body, $key, $handler, |_| false)
    };
    ($broker:expr, $ctx:expr, $body:expr, $key:expr, $handler:path, $silent:expr) => {{
        let request = decode($key, $ctx, $body)?;
        let silent = $silent(&request);
        let (broker, ctx) = ($broker.clone(), $ctx.clone());
        run(async move {
            let response = $handler(&broker, &ctx, request).await;
            if silent {
                Ok(None)
            } else {
                frame_response($key, &ctx, &response).map(Some)
            }
        })
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
        return Ok(Reply::Now(unsupported(ctx).into()));
    };
    let (key, body) = (spec.key, request.body);
    match key {
        ApiKey::ApiVersions => serve!(broker, ctx, body, key, api_versions::handle),
        ApiKey::Metadata => serve!(broker, ctx, body, key, metadata::handle),
        // acks=0: the client expects no response at all.
        ApiKey::Produce => serve!(broker, ctx, body, key, produce::handle, |r: &ProduceRequest| r.acks
            == 0),
        ApiKey::Fetch => {
            // Record data stays in the segment files until the writer sends it.
            let request = decode(key, ctx, body)?;
            let (broker, ctx) = (broker.clone(), ctx.clone());
            run(async move {
                let (response, splices) = fetch::handle(&broker, &ctx, request).await;
                frame_spliced(key, &ctx, &response, splices).map(Some)
            })
        }
        ApiKey::ListOffsets => serve!(broker, ctx, body, key, list_offsets::handle),
        ApiKey::CreateTopics => serve!(broker, ctx, body, key, create_topics::handle),
        ApiKey::DeleteTopics => serve!(broker, ctx, body, key, delete_topics::handle),
        ApiKey::InitProducerId => serve!(broker, ctx, body, key, init_producer_id::handle),
        ApiKey::FindCoordinator => serve!(broker, ctx, body, key, find_coordinator::handle),
        ApiKey::JoinGroup => serve!(broker, ctx, body, key, join_group::handle),
        ApiKey::SyncGroup => serve!(broker, ctx, body, key, sync_group::handle),
        ApiKey::Heartbeat => serve!(broker, ctx, body, key, heartbeat::handle),
        ApiKey::LeaveGroup => serve!(broker, ctx, body, key, leave_group::handle),
        ApiKey::OffsetCommit => serve!(broker, ctx, body, key, offset_commit::handle),
        ApiKey::OffsetFetch => serve!(broker, ctx, body, key, offset_fetch::handle),
        ApiKey::DescribeGroups => serve!(broker, ctx, body, key, describe_groups::handle),
        ApiKey::ListGroups => serve!(broker, ctx, body, key, list_groups::handle),
        ApiKey::DeleteGroups => serve!(broker, ctx, body, key, delete_groups::handle),
        ApiKey::OffsetDelete => serve!(broker, ctx, body, key, offset_delete::handle),
        ApiKey::DescribeConfigs => serve!(broker, ctx, body, key, describe_configs::handle),
        ApiKey::AlterConfigs => serve!(broker, ctx, body, key, alter_configs::handle),
        ApiKey::IncrementalAlterConfigs => serve!(broker, ctx, body, key, alter_configs::handle_incremental),
        ApiKey::CreatePartitions => serve!(broker, ctx, body, key, create_partitions::handle),
        ApiKey::DeleteRecords => serve!(broker, ctx, body, key, delete_records::handle),
        ApiKey::DescribeCluster => serve!(broker, ctx, body, key, describe_cluster::handle),
        ApiKey::DescribeLogDirs => serve!(broker, ctx, body, key, describe_log_dirs::handle),
        _ => Ok(Reply::Now(unsupported(ctx).into())),
    }
}

/// Wait for `fut`, unless the broker shuts down first: then NOT_COORDINATOR, which
/// sends the client looking for a coordinator again (after the restart).
pub async fn unless_shutting_down<T>(
    broker: &Broker,
    fut: impl Future<Output = crate::error::Result<T>>,
) -> crate::error::Result<T> {
    let mut shutdown = broker.shutting_down.clone();
    tokio::select! {
        r = fut => r,
        _ = shutdown.wait_for(|stop| *stop) => Err(crate::error::Error::NotCoordinator),
    }
}

/// A response string from a Rust one.
pub fn str_bytes(s: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.to_string())
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
